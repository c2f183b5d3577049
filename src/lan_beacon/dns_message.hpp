// DNS messages as multicast DNS uses them (RFC 1035 §4, RFC 6762, RFC 6763): the wire format read and
// written by the LAN beacon's own responder and querier. Pure code, no I/O.
//
// Reading is for hostile input: every length and count is checked against the bytes that are there,
// compression pointers must point backward (no loops), names and sections are bounded, and a message that
// breaks a rule is refused with the reason (the caller counts it). Records of types the beacon does not use
// are kept as raw RDATA, so a message reads and writes back whole.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace peerlink::lan::dns {

// A domain name as its labels, most specific first ("My Laptop", "_chat", "_udp", "local"). Labels are
// bytes: DNS-SD instance names may hold dots, spaces and UTF-8. Compared case-insensitively (ASCII).
using Name = std::vector<std::string>;

bool same_name(const Name& a, const Name& b);
// "My\ Laptop._chat._udp.local." style, dots and backslashes in labels escaped: for logs and tests.
std::string to_text(const Name& name);
// Splits "a.b.c" (no escapes; for names the project writes) into labels; empty labels are dropped.
Name name_of(std::string_view dotted);

enum class Type : uint16_t { kA = 1, kPtr = 12, kTxt = 16, kAaaa = 28, kSrv = 33, kNsec = 47, kAny = 255 };
inline constexpr uint16_t kClassIn = 1;
inline constexpr uint16_t kTopBit = 0x8000;  // questions: QU (unicast answer wanted); records: cache flush

inline constexpr size_t kMaxMessage = 9000;  // RFC 6762 §17: the largest mDNS message
inline constexpr size_t kMaxNameBytes = 255;
inline constexpr size_t kMaxLabel = 63;
inline constexpr size_t kMaxEntries = 256;  // questions + records in one message

struct Question {
  Name name;
  uint16_t type = 0;
  uint16_t klass = kClassIn;  // without the top bit
  bool unicast_response = false;
};

struct Record {
  Name name;
  uint16_t type = 0;
  uint16_t klass = kClassIn;  // without the top bit
  bool cache_flush = false;
  uint32_t ttl = 0;
  // The RDATA, decoded for the types the beacon uses; `raw` holds it for the others.
  Name target;                                  // PTR: the instance; SRV: the host
  uint16_t priority = 0, weight = 0, port = 0;  // SRV
  std::vector<std::string> strings;             // TXT: the character-strings (binary)
  std::array<uint8_t, 16> address{};            // A: the first 4 bytes; AAAA: all 16
  std::vector<uint8_t> raw;                     // any other type

  Type kind() const { return static_cast<Type>(type); }
};

struct Message {
  uint16_t id = 0;  // 0 in multicast DNS
  bool response = false;
  bool authoritative = false;
  bool truncated = false;
  uint8_t opcode = 0;
  uint8_t rcode = 0;
  std::vector<Question> questions;
  std::vector<Record> answers, authorities, additionals;
};

// Exact equality (names byte for byte), for tests and the fuzz target's round trip.
bool operator==(const Question& a, const Question& b);
bool operator==(const Record& a, const Record& b);
bool operator==(const Message& a, const Message& b);

// Reads one message; nullopt with `why` when it breaks a rule (truncated, bad pointer, too many
// entries, a label or name too long, RDATA that does not match its type, trailing bytes, ...).
std::optional<Message> parse(const uint8_t* data, size_t size, std::string* why = nullptr);

// Writes a message with name compression. Names and labels that break the limits above are refused
// (nullopt), as is a message larger than kMaxMessage.
std::optional<std::vector<uint8_t>> serialize(const Message& message);

// TXT key=value pairs (RFC 6763 §6.3): the key is the bytes before the first '=', matched without case;
// a string without '=' is a key with no value. The first occurrence of a key counts.
std::optional<std::string> txt_value(const std::vector<std::string>& strings, std::string_view key);

}  // namespace peerlink::lan::dns
