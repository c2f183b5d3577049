// What the subcommands of the `peerlink` tool share: exit statuses, usage errors and JSON text.
#pragma once

#include <cstdio>
#include <string>

#include "peerlink/identity.hpp"

namespace peerlink::cli {

// The documented exit statuses: 0 done; 1 it could not be done (the message says why); 2 bad usage.
constexpr int kOk = 0, kFailed = 1, kUsage = 2;

// Prints "peerlink: <what>" and the subcommand's usage to stderr; returns kUsage.
inline int usage_error(const std::string& what, const char* usage) {
  std::fprintf(stderr, "peerlink: %s\n%s", what.c_str(), usage);
  return kUsage;
}

// A JSON string literal (quotes included) of s, escaping quotes, backslashes and control characters.
inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

inline std::string hex(const PublicKey& key) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : key) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

}  // namespace peerlink::cli
