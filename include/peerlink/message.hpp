// A received message. The application owns it; its bytes are freed when it is destroyed (or taken with
// take_data()). Receiving moves the bytes the connection reassembled into the Message: nothing is copied.
//
//   std::vector<peerlink::Message> messages;
//   host.receive(conn, messages);
//   for (const auto& m : messages) std::cout << m.text() << " (lane " << m.lane() << ")\n";
//   messages.clear();  // releases them
//
// Thread-safety: a plain movable value; a Message may be handed to and used on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "peerlink/connection.hpp"

namespace peerlink {

class Message {
 public:
  Message() = default;
  Message(ConnectionHandle connection, uint32_t lane, bool reliable, uint64_t number, uint64_t user_data,
          std::vector<uint8_t> data)
      : data_(std::move(data)),
        number_(number),
        user_data_(user_data),
        connection_(connection),
        lane_(lane),
        reliable_(reliable) {}
  Message(Message&&) noexcept = default;
  Message& operator=(Message&&) noexcept = default;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  ConnectionHandle connection() const { return connection_; }
  uint32_t lane() const { return lane_; }
  bool reliable() const { return reliable_; }
  // Per connection, lane and kind, from 1. Reliable: the order the peer sent them (no gaps). Unreliable: the
  // order they arrived (gaps where the peer's messages were lost).
  uint64_t number() const { return number_; }
  // The connection's user data (Host::set_user_data) when the message was received.
  uint64_t connection_user_data() const { return user_data_; }

  const uint8_t* data() const { return data_.data(); }
  size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  std::string_view text() const { return {reinterpret_cast<const char*>(data_.data()), data_.size()}; }
  // Takes the bytes out without copying; the Message is empty afterwards.
  std::vector<uint8_t> take_data() { return std::move(data_); }

 private:
  std::vector<uint8_t> data_;
  uint64_t number_ = 0;
  uint64_t user_data_ = 0;
  ConnectionHandle connection_ = kInvalidConnection;
  uint32_t lane_ = 0;
  bool reliable_ = false;
};

}  // namespace peerlink
