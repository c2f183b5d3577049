// PeerId: a peer's name in some signaling system, "<scheme>:<name>" ("xmpp:alice@example.org/laptop",
// "lan:pl1-abcd-...", or a scheme of the application's own plugin). Host::connect(PeerId) picks the
// signaling plugin by the scheme (see signaling.hpp).
//
//   auto bob = peerlink::PeerId::parse("xmpp:bob@example.org");
//   if (!bob) { std::cerr << bob.error().message << "\n"; return 1; }
//   std::cout << bob->scheme() << " / " << bob->name();   // "xmpp / bob@example.org"
//
// Thread-safety: a plain value; copies may be used from any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "peerlink/error.hpp"

namespace peerlink {

// A peer's name in some signaling system: "<scheme>:<name>". The scheme is 1–32 characters of lower-case
// letters, digits, '+', '-' and '.', starting with a letter; the name is 1–1000 bytes of anything but
// control characters. Compared byte for byte.
class PeerId {
 public:
  PeerId() = default;  // empty: not a valid id
  // Fails with ErrorCode::kInvalidArgument, saying why, when text is not "<scheme>:<name>" as above.
  static Result<PeerId> parse(std::string_view text);

  bool empty() const { return text_.empty(); }
  const std::string& str() const { return text_; }
  std::string_view scheme() const { return std::string_view(text_).substr(0, colon_); }
  std::string_view name() const { return std::string_view(text_).substr(colon_ + 1); }

  bool operator==(const PeerId& o) const { return text_ == o.text_; }
  bool operator!=(const PeerId& o) const { return text_ != o.text_; }
  bool operator<(const PeerId& o) const { return text_ < o.text_; }

 private:
  std::string text_;
  size_t colon_ = 0;
};

}  // namespace peerlink

template <>
struct std::hash<peerlink::PeerId> {
  size_t operator()(const peerlink::PeerId& id) const { return std::hash<std::string>()(id.str()); }
};
