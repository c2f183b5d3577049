// A minimal STUN/TURN client (RFC 5389 / RFC 5766), written for lab checks: Binding requests over UDP and
// TCP (XOR-MAPPED-ADDRESS), and a TURN Allocate with the long-term credential mechanism. IPv4 only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "netlab/socket.hpp"

namespace peerlink::netlab::stun {

constexpr uint32_t kMagicCookie = 0x2112A442;
constexpr size_t kHeaderSize = 20;

enum MessageType : uint16_t {
  kBindingRequest = 0x0001,
  kBindingSuccess = 0x0101,
  kBindingError = 0x0111,
  kAllocateRequest = 0x0003,
  kAllocateSuccess = 0x0103,
  kAllocateError = 0x0113,
  kChannelBindRequest = 0x0009,
  kChannelBindSuccess = 0x0109,
  kChannelBindError = 0x0119,
};

enum AttributeType : uint16_t {
  kMappedAddress = 0x0001,
  kUsername = 0x0006,
  kMessageIntegrity = 0x0008,
  kErrorCode = 0x0009,
  kChannelNumber = 0x000C,
  kLifetime = 0x000D,
  kXorPeerAddress = 0x0012,
  kRealm = 0x0014,
  kNonce = 0x0015,
  kXorRelayedAddress = 0x0016,
  kRequestedTransport = 0x0019,
  kXorMappedAddress = 0x0020,
  kSoftware = 0x8022,
  kFingerprint = 0x8028,
};

using TransactionId = std::array<uint8_t, 12>;

struct Attribute {
  uint16_t type = 0;
  Bytes value;
};

struct Message {
  uint16_t type = 0;
  TransactionId txid{};
  std::vector<Attribute> attributes;

  const Attribute* find(uint16_t attr_type) const;
  void add(uint16_t attr_type, Bytes value) { attributes.push_back({attr_type, std::move(value)}); }
  void add(uint16_t attr_type, const std::string& value) {
    add(attr_type, Bytes(value.begin(), value.end()));
  }
};

TransactionId random_transaction_id();

// Encodes header and attributes (padded to 4 bytes). With a key, appends MESSAGE-INTEGRITY
// (HMAC-SHA1 over the message with the length field already counting that attribute).
Bytes encode(const Message& m, const Bytes* integrity_key = nullptr);

// Decodes a STUN message (checks the magic cookie, the length and the attribute framing); nullopt if invalid.
std::optional<Message> decode(const Bytes& raw);

// Whether raw carries a MESSAGE-INTEGRITY attribute that is valid for key.
bool check_integrity(const Bytes& raw, const Bytes& key);

// XOR-MAPPED-ADDRESS style value (also XOR-RELAYED-ADDRESS, XOR-PEER-ADDRESS), IPv4.
Bytes encode_xor_address(const Endpoint& e);
std::optional<Endpoint> decode_xor_address(const Bytes& value);
// MAPPED-ADDRESS style value, IPv4.
std::optional<Endpoint> decode_address(const Bytes& value);

// Long-term credential key: MD5(username ":" realm ":" password).
Bytes long_term_key(const std::string& username, const std::string& realm, const std::string& password);

// Error code and reason of an ERROR-CODE attribute, or 0 when there is none.
int error_code(const Message& m, std::string* reason = nullptr);

// The source address a STUN server saw for a Binding request sent from `socket` (XOR-MAPPED-ADDRESS, or
// MAPPED-ADDRESS). Retransmits every 200 ms; nullopt when no answer arrives within `timeout`.
std::optional<Endpoint> binding(UdpSocket& socket, const Endpoint& server, std::chrono::milliseconds timeout);

// The same over a connected TCP socket (RFC 5389 framing: messages back to back).
std::optional<Endpoint> binding_tcp(TcpSocket& socket, std::chrono::milliseconds timeout);

struct Credentials {
  std::string username;
  std::string password;
};

struct AllocateResult {
  bool answered = false;  // false: no response at all within the timeout
  int error_code = 0;     // 0 on success, else the STUN error code of the final response (401, 437, ...)
  std::string reason;     // error reason phrase
  std::string realm;      // from the 401 challenge
  std::string nonce;
  std::optional<Endpoint> relayed;  // XOR-RELAYED-ADDRESS on success
  std::optional<Endpoint> mapped;   // XOR-MAPPED-ADDRESS on success
  bool integrity_ok = false;        // success response carried a valid MESSAGE-INTEGRITY
  bool ok() const { return answered && error_code == 0 && relayed.has_value(); }
};

// TURN Allocate (UDP relay) over UDP. Without credentials: one unauthenticated request, whose answer is
// expected to be a 401 challenge with REALM and NONCE. With credentials: answers the challenge (and one
// 438 stale-nonce retry) with the long-term mechanism.
AllocateResult allocate(UdpSocket& socket, const Endpoint& server, const std::optional<Credentials>& creds,
                        std::chrono::milliseconds timeout);

// TURN ChannelBind (RFC 5766 section 11) for an allocation that allocate() made from the same socket: binds
// `channel` (0x4000-0x7FFF are valid) to `peer`, which also installs a permission for the peer's address.
// Authenticated with the realm and nonce of the allocation's challenge (result.realm, result.nonce), with one
// retry on a 438 stale nonce. 0 on success, the STUN error code of the answer (400 for a bad channel
// number, ...), or -1 when nothing came back within `timeout`.
int channel_bind(UdpSocket& socket, const Endpoint& server, const Credentials& creds,
                 const std::string& realm, const std::string& nonce, uint16_t channel, const Endpoint& peer,
                 std::chrono::milliseconds timeout);

// A ChannelData message (RFC 5766 section 11.4): channel number, length, data. Over UDP no padding follows.
Bytes channel_data(uint16_t channel, const Bytes& data);

}  // namespace peerlink::netlab::stun
