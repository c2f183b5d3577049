// Packet headers: the cleartext part of every datagram (docs/PROTOCOL.md §3, §4).
//
// A datagram is exactly one packet. The first byte tells the kind: top bit set = a handshake packet
// (Initiation, Response, Finish, Retry, Reject), top bits 01 = an encrypted data packet.
//
//   PacketKind kind = peek_packet_kind(datagram, len);
//   if (kind == PacketKind::kData) { DataHeader h; if (decode_data_header(datagram, len, h)) ...; }
#pragma once

#include <cstddef>
#include <cstdint>

#include "transport/protocol/buffer.hpp"

namespace peerlink::protocol {

inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kMinInitiationSize =
    1200;                                     // Initiations are padded to this (path MTU + amplification)
inline constexpr size_t kDataHeaderSize = 9;  // first byte, receiver id, truncated packet number
inline constexpr size_t kAeadTagSize = 16;
inline constexpr size_t kCookieSize = 20;  // 4-byte timestamp + 16-byte MAC
inline constexpr size_t kMaxNoiseMessageSize = 1024;

enum class PacketKind : uint8_t {
  kInvalid,
  kInitiation = 0x80,
  kResponse = 0x81,
  kFinish = 0x82,
  kRetry = 0x83,
  kReject = 0x84,
  kData = 0x40,
};

// What the first byte says; kInvalid for an empty datagram or an unknown first byte.
PacketKind peek_packet_kind(const uint8_t* data, size_t len);

enum class HandshakePattern : uint8_t { kIK = 1, kXX = 2 };
enum class CipherSuiteId : uint8_t { kChaChaPoly = 1, kAesGcm = 2 };

struct InitiationPacket {
  uint8_t version = kProtocolVersion;
  CipherSuiteId suite = CipherSuiteId::kChaChaPoly;
  HandshakePattern pattern = HandshakePattern::kIK;
  uint32_t sender_id = 0;           // the initiator's connection id
  const uint8_t* cookie = nullptr;  // kCookieSize bytes, or null
  const uint8_t* noise = nullptr;
  size_t noise_length = 0;
};

struct ResponsePacket {
  uint8_t version = kProtocolVersion;
  uint32_t receiver_id = 0;  // the initiator's connection id
  uint32_t sender_id = 0;    // the responder's connection id
  const uint8_t* noise = nullptr;
  size_t noise_length = 0;
};

struct FinishPacket {        // the third handshake message (XX)
  uint32_t receiver_id = 0;  // the responder's connection id
  uint32_t sender_id = 0;    // the initiator's connection id
  const uint8_t* noise = nullptr;
  size_t noise_length = 0;
};

struct RetryPacket {
  uint8_t version = kProtocolVersion;
  uint32_t receiver_id = 0;         // the initiator's connection id
  const uint8_t* cookie = nullptr;  // kCookieSize bytes
};

struct RejectPacket {
  uint8_t version = kProtocolVersion;
  uint32_t receiver_id = 0;  // the initiator's connection id
  uint16_t reason = 0;       // an EndReason code
};

struct DataHeader {
  bool key_phase = false;
  uint32_t receiver_id = 0;
  uint32_t truncated_pn = 0;
};

// Decoders check every length and the version byte (a version we do not speak fails the decode except for
// Initiation, whose version the caller checks so it can answer with a Reject). Payload pointers point into
// the input.
bool decode_initiation(const uint8_t* data, size_t len, InitiationPacket& out);
bool decode_response(const uint8_t* data, size_t len, ResponsePacket& out);
bool decode_finish(const uint8_t* data, size_t len, FinishPacket& out);
bool decode_retry(const uint8_t* data, size_t len, RetryPacket& out);
bool decode_reject(const uint8_t* data, size_t len, RejectPacket& out);
bool decode_data_header(const uint8_t* data, size_t len, DataHeader& out);

// Encoders return the number of bytes written, or 0 if `cap` is too small. encode_initiation pads to
// kMinInitiationSize.
size_t encode_initiation(const InitiationPacket& p, uint8_t* out, size_t cap);
size_t encode_response(const ResponsePacket& p, uint8_t* out, size_t cap);
size_t encode_finish(const FinishPacket& p, uint8_t* out, size_t cap);
size_t encode_retry(const RetryPacket& p, uint8_t* out, size_t cap);
size_t encode_reject(const RejectPacket& p, uint8_t* out, size_t cap);
void encode_data_header(const DataHeader& h, uint8_t* out);  // writes kDataHeaderSize bytes

// Packet numbers travel truncated to 32 bits; the receiver restores the full number closest to the next
// expected one (RFC 9000 Appendix A.3).
uint64_t decode_packet_number(uint64_t largest_received, uint32_t truncated);

}  // namespace peerlink::protocol
