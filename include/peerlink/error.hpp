// Errors: how every call of the API that can fail says why, in one style.
//
//   peerlink::Result<peerlink::ConnectionHandle> conn = host.connect(peer);
//   if (!conn) {
//     std::cerr << conn.error().message << "\n";                          // for people
//     if (conn.error().code == peerlink::ErrorCode::kNoSignaling) ...    // for programs
//     return 1;
//   }
//   host.send(*conn, "hi", 2);
//
// The style:
//   - A call that can fail returns Result<T>: the value, or an Error (a machine-readable ErrorCode and a
//     message naming what was wrong). Result<void> when there is no value. `if (!r)` tests for failure.
//     Results are [[nodiscard]]: ignoring one is a compile warning.
//   - Calls whose only failure is "no such handle" (close, accept, set_user_data, ...) return bool.
//   - send() returns a SendResult (connection.hpp): it runs per message and never allocates.
//   - Constructors cannot return a Result: Host and Messages throw peerlink::Exception, which carries the
//     same Error (Host::create returns it as a Result instead).
// Nothing throws on network input.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace peerlink {

enum class ErrorCode : uint16_t {
  kInvalidArgument = 1,  // a malformed value: address or peer id text, port 0, unknown flag bits, ...
  kInvalidConfig,        // a configuration validate() rejects (the message says which field)
  kNotFound,             // a poll group, listen socket or connection that does not exist
  kLimitExceeded,        // too many connections or sockets
  kAddressInUse,         // the port is taken
  kUnreachable,          // no route from the socket to that address
  kNoSignaling,          // no signaling plugin for the peer id's scheme, or none at all
  kAlreadyExists,        // already listening (on that virtual port), plugin already serving a Host, ...
  kSelf,                 // a connection to this Host's own peer id
  kNameResolution,       // a host name did not resolve
  kFile,                 // a file could not be read or written, or has the wrong format or permissions
  kSystem,               // the operating system refused (socket, thread, eventfd, ...)
  kPluginFailed,         // a signaling plugin's start() threw
};
// "invalid argument", "not found", ...
const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInvalidArgument;
  std::string message;  // what was wrong, for people: "no signaling plugin for scheme 'xmpp' (...)"
};

// Thrown by constructors (Host, Messages) and by Result::value() on a failed result.
class Exception : public std::runtime_error {
 public:
  explicit Exception(Error error) : std::runtime_error(error.message), error_(std::move(error)) {}
  const Error& error() const { return error_; }

 private:
  Error error_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit on purpose
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  bool has_value() const { return ok(); }

  // The value; throws Exception on a failed result.
  T& value() & { return ok() ? std::get<0>(v_) : throw Exception(std::get<1>(v_)); }
  const T& value() const& { return ok() ? std::get<0>(v_) : throw Exception(std::get<1>(v_)); }
  T&& value() && { return ok() ? std::move(std::get<0>(v_)) : throw Exception(std::get<1>(v_)); }
  T value_or(T fallback) const { return ok() ? std::get<0>(v_) : std::move(fallback); }
  // Unchecked, like std::optional's: only on a result that is ok().
  T& operator*() & { return *std::get_if<0>(&v_); }
  const T& operator*() const& { return *std::get_if<0>(&v_); }
  T&& operator*() && { return std::move(*std::get_if<0>(&v_)); }
  T* operator->() { return std::get_if<0>(&v_); }
  const T* operator->() const { return std::get_if<0>(&v_); }

  // Only on a failed result.
  const Error& error() const { return *std::get_if<1>(&v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit on purpose

  bool ok() const { return !error_; }
  explicit operator bool() const { return ok(); }
  // Throws Exception on a failed result.
  void value() const {
    if (error_) throw Exception(*error_);
  }
  // Only on a failed result.
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

}  // namespace peerlink
