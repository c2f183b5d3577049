#include "peerlink/peer_id.hpp"

namespace peerlink {
namespace {

bool scheme_char(char c, bool first) {
  if (c >= 'a' && c <= 'z') return true;
  if (first) return false;
  return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

// What is wrong with text as a peer id, or nullptr.
const char* problem(std::string_view text, size_t colon) {
  if (colon == std::string_view::npos) return "a peer id is \"<scheme>:<name>\" (no ':' found)";
  if (colon == 0 || colon > 32) return "a peer id's scheme must be 1 to 32 characters";
  for (size_t i = 0; i < colon; ++i)
    if (!scheme_char(text[i], i == 0))
      return "a peer id's scheme is lower-case letters, digits, '+', '-' and '.', from a letter";
  size_t name = text.size() - colon - 1;
  if (name == 0) return "a peer id's name (after the ':') is empty";
  if (name > 1000) return "a peer id's name is longer than 1000 bytes";
  for (size_t i = colon + 1; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) return "a peer id contains a control character";
  }
  return nullptr;
}

}  // namespace

Result<PeerId> PeerId::parse(std::string_view text) {
  const size_t colon = text.find(':');
  if (const char* why = problem(text, colon)) return Error{ErrorCode::kInvalidArgument, why};
  PeerId id;
  id.text_.assign(text.data(), text.size());
  id.colon_ = colon;
  return id;
}

}  // namespace peerlink
