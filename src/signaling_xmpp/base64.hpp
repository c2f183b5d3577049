// Base64 (RFC 4648, standard alphabet, '=' padding) for blobs in stanzas. Decoding is strict: padding
// required, no whitespace, no characters outside the alphabet, no stray bits in the last character.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace peerlink::xmpp {

std::string base64_encode(const uint8_t* data, size_t size);
// nullopt unless text is strict base64 as above.
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);
// Bytes that base64 text of `size` characters decodes to (at most), for size checks before decoding.
constexpr size_t base64_decoded_max(size_t size) {
  return size / 4 * 3;
}

}  // namespace peerlink::xmpp
