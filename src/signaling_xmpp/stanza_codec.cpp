#include "stanza_codec.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <tuple>

#include <openssl/evp.h>

#include "base64.hpp"

namespace peerlink::xmpp {
namespace {

constexpr size_t kMaxErrorText = 200;

std::string attr(xmpp_stanza_t* s, const char* name) {
  const char* v = xmpp_stanza_get_attribute(s, name);
  return v ? std::string(v) : std::string();
}

bool name_is(xmpp_stanza_t* s, const char* name) {
  const char* n = xmpp_stanza_get_name(s);
  return n && std::strcmp(n, name) == 0;
}

bool ns_is(xmpp_stanza_t* s, const char* ns) {
  const char* n = xmpp_stanza_get_ns(s);
  return n && std::strcmp(n, ns) == 0;
}

// The element's character data, concatenated, or nullopt once it exceeds `limit` bytes (without
// allocating more than that).
std::optional<std::string> text_of(xmpp_stanza_t* element, size_t limit) {
  std::string out;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(element); c; c = xmpp_stanza_get_next(c)) {
    if (!xmpp_stanza_is_text(c)) continue;
    const char* t = xmpp_stanza_get_text_ptr(c);
    if (!t) continue;
    const size_t n = std::strlen(t);
    if (out.size() + n > limit) return std::nullopt;
    out.append(t, n);
  }
  return out;
}

std::string iq_open(const char* type, const std::string& to, const std::string& id) {
  std::string s = "<iq type='";
  s += type;
  s += "'";
  if (!to.empty()) s += " to='" + xml_escape(to) + "'";
  s += " id='" + xml_escape(id) + "'";
  return s;
}

std::optional<uint16_t> parse_port(const std::string& text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + unsigned(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

DiscoInfo make_our_info() {
  DiscoInfo info;
  info.identities.push_back({"client", "pc", "", "peerlink"});
  info.features = {kCapsNs, kDiscoInfoNs, kPingNs, kSignalNs};
  return info;
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string signal_iq(const std::string& to, const std::string& id, const uint8_t* blob, size_t size) {
  std::string s = iq_open("set", to, id);
  s += "><signal xmlns='";
  s += kSignalNs;
  s += "'>";
  s += base64_encode(blob, size);
  s += "</signal></iq>";
  return s;
}

std::string result_iq(const std::string& to, const std::string& id) {
  return iq_open("result", to, id) + "/>";
}

std::string error_iq(const std::string& to, const std::string& id, const char* type, const char* condition) {
  std::string s = iq_open("error", to, id);
  s += "><error type='";
  s += type;
  s += "'><";
  s += condition;
  s += " xmlns='";
  s += kStanzaErrorNs;
  s += "'/></error></iq>";
  return s;
}

std::string ping_iq(const std::string& to, const std::string& id) {
  return iq_open("get", to, id) + "><ping xmlns='" + kPingNs + "'/></iq>";
}

std::string roster_get_iq(const std::string& id) {
  return iq_open("get", "", id) + "><query xmlns='" + kRosterNs + "'/></iq>";
}

std::string disco_info_get_iq(const std::string& to, const std::string& id, const std::string& node) {
  std::string s = iq_open("get", to, id) + "><query xmlns='" + kDiscoInfoNs + "'";
  if (!node.empty()) s += " node='" + xml_escape(node) + "'";
  return s + "/></iq>";
}

std::string disco_info_result_iq(const std::string& to, const std::string& id, const std::string& node) {
  const DiscoInfo& info = our_disco_info();
  std::string s = iq_open("result", to, id) + "><query xmlns='" + kDiscoInfoNs + "'";
  if (!node.empty()) s += " node='" + xml_escape(node) + "'";
  s += ">";
  for (const DiscoIdentity& i : info.identities)
    s += "<identity category='" + i.category + "' type='" + i.type + "' name='" + i.name + "'/>";
  for (const std::string& f : info.features)
    s += "<feature var='" + f + "'/>";
  return s + "</query></iq>";
}

std::string services_get_iq(const std::string& to, const std::string& id) {
  return iq_open("get", to, id) + "><services xmlns='" + kExtDiscoNs + "'/></iq>";
}

std::string credentials_get_iq(const std::string& to, const std::string& id, const std::string& type,
                               const std::string& host, uint16_t port) {
  std::string s = iq_open("get", to, id) + "><credentials xmlns='" + kExtDiscoNs + "'><service type='" +
                  xml_escape(type) + "' host='" + xml_escape(host) + "'";
  if (port) s += " port='" + std::to_string(port) + "'";
  return s + "/></credentials></iq>";
}

std::string initial_presence(int priority) {
  return "<presence><priority>" + std::to_string(priority) + "</priority><c xmlns='" + kCapsNs +
         "' hash='sha-1' node='" + kCapsNode + "' ver='" + our_caps_ver() + "'/></presence>";
}

std::string unavailable_presence() {
  return "<presence type='unavailable'/>";
}

bool DiscoInfo::has_feature(std::string_view feature) const {
  return std::find(features.begin(), features.end(), feature) != features.end();
}

std::string caps_ver(const DiscoInfo& info) {
  std::vector<DiscoIdentity> ids = info.identities;
  std::sort(ids.begin(), ids.end(), [](const DiscoIdentity& a, const DiscoIdentity& b) {
    return std::tie(a.category, a.type, a.lang, a.name) < std::tie(b.category, b.type, b.lang, b.name);
  });
  std::vector<std::string> features = info.features;
  std::sort(features.begin(), features.end());
  std::string s;
  for (const DiscoIdentity& i : ids)
    s += i.category + "/" + i.type + "/" + i.lang + "/" + i.name + "<";
  for (const std::string& f : features)
    s += f + "<";
  // OpenSSL's SHA-1, not libstrophe's: libstrophe 0.12's keeps its state in a static buffer (see
  // login_lock() in xmpp_session.cpp).
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(s.data(), s.size(), digest, &size, EVP_sha1(), nullptr) != 1) return {};
  return base64_encode(digest, size);
}

const DiscoInfo& our_disco_info() {
  static const DiscoInfo info = make_our_info();
  return info;
}

const std::string& our_caps_ver() {
  static const std::string ver = caps_ver(our_disco_info());
  return ver;
}

const char* to_string(SignalDecode d) {
  switch (d) {
    case SignalDecode::kOk:
      return "ok";
    case SignalDecode::kNotSignal:
      return "not a signaling payload";
    case SignalDecode::kEmpty:
      return "empty payload";
    case SignalDecode::kTooLarge:
      return "payload too large";
    case SignalDecode::kBadBase64:
      return "payload is not base64";
  }
  return "?";
}

SignalDecode decode_signal(xmpp_stanza_t* iq, size_t max_blob, std::vector<uint8_t>& blob) {
  xmpp_stanza_t* signal = xmpp_stanza_get_child_by_name_and_ns(iq, "signal", kSignalNs);
  if (!signal) return SignalDecode::kNotSignal;
  const size_t max_text = (max_blob + 2) / 3 * 4;
  std::optional<std::string> text = text_of(signal, max_text);
  if (!text) return SignalDecode::kTooLarge;
  if (text->empty()) return SignalDecode::kEmpty;
  std::optional<std::vector<uint8_t>> bytes = base64_decode(*text);
  if (!bytes) return SignalDecode::kBadBase64;
  if (bytes->empty()) return SignalDecode::kEmpty;
  if (bytes->size() > max_blob) return SignalDecode::kTooLarge;
  blob = std::move(*bytes);
  return SignalDecode::kOk;
}

StanzaError parse_stanza_error(xmpp_stanza_t* stanza) {
  StanzaError e;
  e.condition = "undefined-condition";
  xmpp_stanza_t* error = xmpp_stanza_get_child_by_name(stanza, "error");
  if (!error) return e;
  e.type = attr(error, "type").substr(0, 16);
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(error); c; c = xmpp_stanza_get_next(c)) {
    if (!xmpp_stanza_is_tag(c) || !ns_is(c, kStanzaErrorNs)) continue;
    const char* n = xmpp_stanza_get_name(c);
    if (!n) continue;
    if (std::strcmp(n, "text") == 0) {
      std::optional<std::string> t = text_of(c, 4096);
      if (t) e.text = t->substr(0, kMaxErrorText);
    } else if (std::strlen(n) <= 64) {
      e.condition = n;
    }
  }
  return e;
}

PresenceInfo parse_presence(xmpp_stanza_t* presence) {
  PresenceInfo p;
  const char* type = xmpp_stanza_get_type(presence);
  if (!type)
    p.kind = PresenceInfo::kAvailable;
  else if (std::strcmp(type, "unavailable") == 0)
    p.kind = PresenceInfo::kUnavailable;
  if (xmpp_stanza_t* prio = xmpp_stanza_get_child_by_name(presence, "priority")) {
    std::optional<std::string> t = text_of(prio, 8);
    if (t && !t->empty()) {
      char* end = nullptr;
      const long v = std::strtol(t->c_str(), &end, 10);
      if (end && *end == '\0') p.priority = static_cast<int>(std::clamp(v, -128L, 127L));
    }
  }
  if (xmpp_stanza_t* c = xmpp_stanza_get_child_by_name_and_ns(presence, "c", kCapsNs)) {
    p.caps_node = attr(c, "node").substr(0, 256);
    p.caps_hash = attr(c, "hash").substr(0, 16);
    p.caps_ver = attr(c, "ver").substr(0, 128);
  }
  return p;
}

std::optional<DiscoInfo> parse_disco_info(xmpp_stanza_t* iq) {
  xmpp_stanza_t* query = xmpp_stanza_get_child_by_name_and_ns(iq, "query", kDiscoInfoNs);
  if (!query) return std::nullopt;
  DiscoInfo info;
  size_t count = 0;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(query); c && count < 512; c = xmpp_stanza_get_next(c)) {
    if (!xmpp_stanza_is_tag(c)) continue;
    ++count;
    if (name_is(c, "identity")) {
      info.identities.push_back({attr(c, "category"), attr(c, "type"), attr(c, "xml:lang"), attr(c, "name")});
    } else if (name_is(c, "feature")) {
      std::string var = attr(c, "var");
      if (!var.empty()) info.features.push_back(std::move(var));
    } else if (name_is(c, "x")) {
      info.has_forms = true;
    }
  }
  return info;
}

std::optional<std::vector<RosterItem>> parse_roster(xmpp_stanza_t* iq) {
  xmpp_stanza_t* query = xmpp_stanza_get_child_by_name_and_ns(iq, "query", kRosterNs);
  if (!query) return std::nullopt;
  std::vector<RosterItem> items;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(query); c; c = xmpp_stanza_get_next(c)) {
    if (!xmpp_stanza_is_tag(c) || !name_is(c, "item")) continue;
    RosterItem item{attr(c, "jid"), attr(c, "subscription")};
    if (item.jid.empty()) continue;
    if (item.subscription.empty()) item.subscription = "none";
    items.push_back(std::move(item));
  }
  return items;
}

std::optional<std::vector<ExternalService>> parse_services(xmpp_stanza_t* iq) {
  xmpp_stanza_t* list = xmpp_stanza_get_child_by_name_and_ns(iq, "services", kExtDiscoNs);
  if (!list) list = xmpp_stanza_get_child_by_name_and_ns(iq, "credentials", kExtDiscoNs);
  if (!list) return std::nullopt;
  std::vector<ExternalService> out;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(list); c && out.size() < 32; c = xmpp_stanza_get_next(c)) {
    if (!xmpp_stanza_is_tag(c) || !name_is(c, "service")) continue;
    ExternalService s;
    s.type = attr(c, "type");
    s.host = attr(c, "host");
    if (s.type.empty() || s.host.empty() || s.host.size() > 255) continue;
    s.transport = attr(c, "transport");
    const std::string port = attr(c, "port");
    if (!port.empty()) {
      std::optional<uint16_t> p = parse_port(port);
      if (!p) continue;
      s.port = *p;
    }
    s.username = attr(c, "username");
    s.password = attr(c, "password");
    if (s.username.size() > 512 || s.password.size() > 512) continue;
    const std::string restricted = attr(c, "restricted");
    s.restricted = restricted == "1" || restricted == "true";
    const std::string expires = attr(c, "expires");
    if (!expires.empty()) s.expires = parse_xmpp_datetime(expires);
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<std::chrono::system_clock::time_point> parse_xmpp_datetime(std::string_view t) {
  // YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm)
  auto digits = [&](size_t pos, size_t n, int& out) {
    if (pos + n > t.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      v = v * 10 + (t[i] - '0');
    }
    out = v;
    return true;
  };
  int y, mo, d, h, mi, s;
  if (t.size() < 20 || !digits(0, 4, y) || t[4] != '-' || !digits(5, 2, mo) || t[7] != '-' ||
      !digits(8, 2, d) || t[10] != 'T' || !digits(11, 2, h) || t[13] != ':' || !digits(14, 2, mi) ||
      t[16] != ':' || !digits(17, 2, s))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  // system_clock counts nanoseconds in 64 bits (until 2262): later dates are refused, not wrapped.
  if (y < 1970 || y > 2200) return std::nullopt;
  size_t pos = 19;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9')
      ++pos;
    if (pos == start || pos - start > 9) return std::nullopt;
  }
  int offset_minutes = 0;
  if (pos < t.size() && t[pos] == 'Z') {
    ++pos;
  } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
    int oh, om;
    if (!digits(pos + 1, 2, oh) || pos + 3 >= t.size() || t[pos + 3] != ':' || !digits(pos + 4, 2, om) ||
        oh > 23 || om > 59)
      return std::nullopt;
    offset_minutes = (oh * 60 + om) * (t[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != t.size()) return std::nullopt;
  // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
  const int yy = y - (mo <= 2);
  const int era = yy / 400;
  const int yoe = yy - era * 400;
  const int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const long long days = static_cast<long long>(era) * 146097 + doe - 719468;
  const long long seconds = days * 86400 + h * 3600 + mi * 60 + s - offset_minutes * 60LL;
  return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}

}  // namespace peerlink::xmpp
