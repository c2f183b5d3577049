// The rendezvous server's line protocol, shared by the server (rendezvous_server.cpp) and the plugin
// (line_signaling.cpp): limits, the name rule, a strict base64 codec and a field splitter.
//
// Every message is one line of text ending in '\n' (a '\r' before it is tolerated), fields separated by one
// space:
//   client -> server   HELLO <name>                   once, first
//                      SEND <to-name> <base64 blob>
//   server -> client   FROM <from-name> <base64 blob>
//                      UNREACHABLE <to-name> <reason text>
//                      ERROR <text>                   then the server closes the connection
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace line_protocol {

// Longest line (without its '\n') either side accepts. A 1200-byte blob is 1600 base64 characters, so every
// valid SEND or FROM line fits with room to spare.
inline constexpr size_t kMaxLine = 4096;
inline constexpr size_t kMaxName = 64;

// Names are 1-64 characters of ASCII letters, digits, '.', '_' and '-'.
inline bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxName) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Standard base64 (RFC 4648 section 4) with '=' padding.
inline std::string base64_encode(const void* data, size_t size) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | p[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (size - i == 1) {
    uint32_t v = uint32_t(p[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (size - i == 2) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

inline int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict: a non-empty multiple of 4 characters, padding only at the end, unused bits zero. False (and out
// unspecified) otherwise.
inline bool base64_decode(std::string_view text, std::vector<uint8_t>& out) {
  out.clear();
  if (text.empty() || text.size() % 4 != 0) return false;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;  // a character after '='
      v[k] = base64_value(c);
      if (v[k] < 0) return false;
    }
    uint32_t bits = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    if (pad == 2 && (bits & 0xffff) != 0) return false;  // non-canonical: unused bits set
    if (pad == 1 && (bits & 0xff) != 0) return false;
    out.push_back(uint8_t(bits >> 16));
    if (pad < 2) out.push_back(uint8_t(bits >> 8));
    if (pad < 1) out.push_back(uint8_t(bits));
  }
  return true;
}

// Splits off the first space-separated field: returns it and leaves the rest (after that one space) in
// `rest`. Without a space, the whole text is the field and rest is empty.
inline std::string_view next_field(std::string_view& rest) {
  size_t space = rest.find(' ');
  std::string_view field = rest.substr(0, space);
  rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  return field;
}

}  // namespace line_protocol
