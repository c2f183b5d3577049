#include "jid.hpp"

#include <cctype>

namespace peerlink::xmpp {
namespace {

constexpr size_t kMaxPart = 1023;

std::optional<Jid> fail(std::string* why, const char* text) {
  if (why) *why = text;
  return std::nullopt;
}

bool has_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

// Characters RFC 7622 keeps out of a local part (beyond '@' and '/', which cannot reach here), and
// whitespace, which no server accepts there either.
bool valid_local(std::string_view s) {
  for (unsigned char c : s)
    if (c == '"' || c == '&' || c == '\'' || c == ':' || c == '<' || c == '>' || c == ' ') return false;
  return true;
}

bool valid_domain(std::string_view s) {
  if (s.back() == '.') s.remove_suffix(1);  // a trailing dot is allowed and dropped (RFC 7622 §3.2)
  if (s.empty()) return false;
  if (s.front() == '[') return s.back() == ']';  // an IPv6 literal
  if (s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos)
    return false;  // empty label
  for (unsigned char c : s)
    if (c == ' ' || c == '@' || c == '/' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '&')
      return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<Jid> Jid::parse(std::string_view text, std::string* why) {
  if (text.empty()) return fail(why, "an empty JID");
  if (has_control(text)) return fail(why, "control characters in a JID");
  Jid j;
  std::string_view rest = text;
  const size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    j.resource = std::string(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
    if (j.resource.empty()) return fail(why, "an empty resource after '/'");
    if (j.resource.size() > kMaxPart) return fail(why, "a resource longer than 1023 bytes");
  }
  const size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    const std::string_view local = rest.substr(0, at);
    if (local.empty()) return fail(why, "an empty local part before '@'");
    if (local.size() > kMaxPart) return fail(why, "a local part longer than 1023 bytes");
    if (!valid_local(local)) return fail(why, "a character a JID's local part may not hold");
    j.local = lower(local);
    rest = rest.substr(at + 1);
  }
  if (rest.empty()) return fail(why, "no domain");
  if (rest.size() > kMaxPart) return fail(why, "a domain longer than 1023 bytes");
  if (!valid_domain(rest)) return fail(why, "a character a domain may not hold");
  if (rest.back() == '.') rest.remove_suffix(1);
  j.domain = lower(rest);
  return j;
}

std::string Jid::bare() const {
  return local.empty() ? domain : local + "@" + domain;
}

std::string Jid::full() const {
  return resource.empty() ? bare() : bare() + "/" + resource;
}

}  // namespace peerlink::xmpp
