// Small text helpers of the example programs and the `peerlink` tool: JSON strings, hex, sizes and rates
// for people, and a progress line.
#pragma once

#include <cstdint>
#include <string>

namespace peerlink::app {

// A JSON string literal (quotes included): quotes, backslashes and control characters escaped; UTF-8 kept,
// and each byte that is not part of valid UTF-8 replaced by U+FFFD, so the result is always valid JSON.
std::string json_string(const std::string& s);
std::string hex(const uint8_t* data, size_t size);
// "1.5 MB", "312 kB", "12 B" (powers of 1000).
std::string human_bytes(double bytes);
// "[#########.........]  45%  12.3 MB/s  0:07 left" (width ≈ 60).
std::string progress_line(uint64_t done, uint64_t total, double bytes_per_second);

}  // namespace peerlink::app
