#include "text.hpp"

#include <cstdio>

namespace peerlink::app {

namespace {

// The length of the valid UTF-8 sequence at s[i] (1-4), or 0 when it is not one (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF).
size_t utf8_sequence(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(k) & 0xc0) != 0x80) return 0;
  if (c == 0xe0 && b(1) < 0xa0) return 0;  // overlong
  if (c == 0xed && b(1) > 0x9f) return 0;  // surrogates
  if (c == 0xf0 && b(1) < 0x90) return 0;  // overlong
  if (c == 0xf4 && b(1) > 0x8f) return 0;  // above U+10FFFF
  return n;
}

}  // namespace

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out += "\\ufffd";  // not UTF-8: the replacement character, so that the output stays valid JSON
      } else {
        out.append(s, i, n);
        i += n - 1;
      }
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string hex(const uint8_t* data, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

std::string human_bytes(double bytes) {
  static const char* const units[] = {"B", "kB", "MB", "GB", "TB"};
  int unit = 0;
  while (bytes >= 1000 && unit < 4) {
    bytes /= 1000;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return buf;
}

std::string progress_line(uint64_t done, uint64_t total, double bytes_per_second) {
  constexpr int kBar = 24;
  const double fraction = total ? double(done) / double(total) : 1.0;
  std::string bar(kBar, '.');
  for (int i = 0; i < int(fraction * kBar) && i < kBar; ++i)
    bar[size_t(i)] = '#';
  std::string left = "--:--";
  if (bytes_per_second > 0 && done <= total) {
    const uint64_t s = uint64_t(double(total - done) / bytes_per_second);
    char buf[32];
    if (s >= 3600)
      std::snprintf(buf, sizeof buf, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                    (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
    else
      std::snprintf(buf, sizeof buf, "%llu:%02llu", (unsigned long long)(s / 60),
                    (unsigned long long)(s % 60));
    left = buf;
  }
  char line[128];
  std::snprintf(line, sizeof line, "[%s] %3d%%  %9s/s  %s left", bar.c_str(), int(fraction * 100),
                human_bytes(bytes_per_second).c_str(), left.c_str());
  return line;
}

}  // namespace peerlink::app
