#include "beacon_records.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>

#include "identity_signature.hpp"
#include "peerlink/identity.hpp"

namespace peerlink::lan {
namespace {

constexpr size_t kMacBytes = 16;
constexpr size_t kMaxAlias = 200;
constexpr size_t kMaxCached = 1024;  // keys in a VerifiedCache

void put(std::vector<uint8_t>& out, const std::string& s) {
  out.push_back(static_cast<uint8_t>(s.size() >> 8));
  out.push_back(static_cast<uint8_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

std::string instance_label(const std::string& display_name, const std::string& fp) {
  return (display_name.empty() ? std::string("peerlink") : display_name) + " [" + fp.substr(4, 9) + "]";
}

// The bytes the signature and the network key's MAC cover. Version 2 (records published through a system
// responder, which owns the instance name, the host name and the addresses) leaves those three out.
std::vector<uint8_t> covered(const dns::Name& service, const std::string& instance, const std::string& host,
                             const Announcement& a, bool goodbye, bool portable = false) {
  std::vector<uint8_t> out;
  out.reserve(512);
  const char domain1[] = "peerlink-lan-v1", domain2[] = "peerlink-lan-v2";
  const char* domain = portable ? domain2 : domain1;
  out.insert(out.end(), domain, domain + sizeof domain1);
  out.insert(out.end(), a.key.begin(), a.key.end());
  put(out, dns::to_text(service));
  if (portable) {
    out.push_back(static_cast<uint8_t>(a.port >> 8));
    out.push_back(static_cast<uint8_t>(a.port));
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<uint8_t>(a.serial >> shift));
    put(out, a.display_name);
    std::vector<std::string> aliases = a.aliases;  // in any order: a responder may reorder the strings
    std::sort(aliases.begin(), aliases.end());
    out.push_back(static_cast<uint8_t>(aliases.size()));
    for (const std::string& alias : aliases)
      put(out, alias);
    return out;
  }
  put(out, instance);
  put(out, host);
  out.push_back(static_cast<uint8_t>(a.port >> 8));
  out.push_back(static_cast<uint8_t>(a.port));
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<uint8_t>(a.serial >> shift));
  out.push_back(goodbye ? 1 : 0);
  put(out, a.display_name);
  out.push_back(static_cast<uint8_t>(a.aliases.size()));
  for (const std::string& alias : a.aliases)
    put(out, alias);
  std::vector<std::array<uint8_t, 4>> v4;
  for (const in_addr& x : a.ipv4) {
    std::array<uint8_t, 4> b{};
    std::memcpy(b.data(), &x, 4);
    v4.push_back(b);
  }
  std::vector<std::array<uint8_t, 16>> v6;
  for (const in6_addr& x : a.ipv6) {
    std::array<uint8_t, 16> b{};
    std::memcpy(b.data(), &x, 16);
    v6.push_back(b);
  }
  std::sort(v4.begin(), v4.end());
  std::sort(v6.begin(), v6.end());
  out.push_back(static_cast<uint8_t>(v4.size()));
  for (const auto& b : v4)
    out.insert(out.end(), b.begin(), b.end());
  out.push_back(static_cast<uint8_t>(v6.size()));
  for (const auto& b : v6)
    out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::string mac(const std::vector<uint8_t>& network_key, const std::vector<uint8_t>& bytes) {
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!HMAC(EVP_sha256(), network_key.data(), static_cast<int>(network_key.size()), bytes.data(),
            bytes.size(), digest, &len) ||
      len < kMacBytes)
    return {};
  return std::string(reinterpret_cast<const char*>(digest), kMacBytes);
}

dns::Record record(const dns::Name& name, dns::Type type, uint32_t ttl, bool unique) {
  dns::Record r;
  r.name = name;
  r.type = static_cast<uint16_t>(type);
  r.ttl = ttl;
  r.cache_flush = unique;
  return r;
}

bool parse_serial(const std::string& text, uint64_t& out) {
  if (text.empty() || text.size() > 19) return false;
  out = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

}  // namespace

bool valid_display_text(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    if (n == 1 && (c < 0x20 || c == 0x7f)) return false;  // no control characters
    i += n;
  }
  return true;
}

std::optional<dns::Name> service_name(const std::string& service) {
  if (service.empty() || service.size() > 15) return std::nullopt;
  bool letter = false;
  for (char c : service) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alpha && !(c >= '0' && c <= '9') && c != '-') return std::nullopt;
    letter = letter || alpha;
  }
  if (!letter || service.front() == '-' || service.back() == '-' || service.find("--") != std::string::npos)
    return std::nullopt;
  return dns::Name{"_" + service, "_udp", "local"};
}

std::string instance_name(const Announcement& a) {
  return instance_label(a.display_name, Identity::fingerprint_of(a.key));
}

std::optional<std::vector<std::string>> portable_txt(const dns::Name& service, const Announcement& a,
                                                     const Key& private_key,
                                                     const std::vector<uint8_t>& network_key) {
  if (service.empty() || a.display_name.size() > kMaxDisplayName || a.aliases.size() > kMaxAliases)
    return std::nullopt;
  for (const std::string& alias : a.aliases)
    if (alias.empty() || alias.size() > kMaxAlias) return std::nullopt;
  const std::vector<uint8_t> bytes = covered(service, {}, {}, a, false, true);
  const std::optional<Signature> sig = sign_with_identity(private_key, bytes.data(), bytes.size());
  if (!sig) return std::nullopt;
  std::vector<std::string> txt = {"v=2", "k=" + std::string(a.key.begin(), a.key.end()),
                                  "q=" + std::to_string(a.serial), "n=" + a.display_name};
  for (const std::string& alias : a.aliases)
    txt.push_back("a=" + alias);
  if (!network_key.empty()) {
    const std::string m_value = mac(network_key, bytes);
    if (m_value.empty()) return std::nullopt;
    txt.push_back("m=" + m_value);
  }
  txt.push_back("s=" + std::string(sig->begin(), sig->end()));
  return txt;
}

std::optional<dns::Message> announce(const dns::Name& service, const Announcement& a, const Key& private_key,
                                     const std::vector<uint8_t>& network_key, bool goodbye) {
  if (service.empty() || a.display_name.size() > kMaxDisplayName || a.aliases.size() > kMaxAliases)
    return std::nullopt;
  for (const std::string& alias : a.aliases)
    if (alias.empty() || alias.size() > kMaxAlias) return std::nullopt;
  const std::string fp = Identity::fingerprint_of(a.key);
  const std::string instance = instance_label(a.display_name, fp);
  const std::string& host = fp;  // "pl1-abcd-...": letters, digits and dashes, 43 bytes, a valid host label
  const std::vector<uint8_t> bytes = covered(service, instance, host, a, goodbye);
  const std::optional<Signature> sig = sign_with_identity(private_key, bytes.data(), bytes.size());
  if (!sig) return std::nullopt;

  dns::Name instance_name = service;
  instance_name.insert(instance_name.begin(), instance);
  const dns::Name host_name = {host, "local"};
  const uint32_t ttl = goodbye ? 0 : a.ttl;

  dns::Message m;
  m.response = true;
  m.authoritative = true;
  dns::Record ptr = record(service, dns::Type::kPtr, ttl, false);
  ptr.target = instance_name;
  m.answers.push_back(ptr);
  dns::Record srv = record(instance_name, dns::Type::kSrv, ttl, true);
  srv.port = a.port;
  srv.target = host_name;
  m.additionals.push_back(srv);
  dns::Record txt = record(instance_name, dns::Type::kTxt, ttl, true);
  txt.strings = {"v=1", "k=" + std::string(a.key.begin(), a.key.end()), "q=" + std::to_string(a.serial),
                 "n=" + a.display_name};
  for (const std::string& alias : a.aliases)
    txt.strings.push_back("a=" + alias);
  if (!network_key.empty()) {
    const std::string m_value = mac(network_key, bytes);
    if (m_value.empty()) return std::nullopt;
    txt.strings.push_back("m=" + m_value);
  }
  txt.strings.push_back("s=" + std::string(sig->begin(), sig->end()));
  if (!goodbye) {
    // The version 2 signature (and MAC) too, for peers that read our records through a system responder's
    // resolver, which gives the TXT strings but not all the addresses the version 1 signature covers.
    const std::vector<uint8_t> portable = covered(service, {}, {}, a, false, true);
    const std::optional<Signature> p = sign_with_identity(private_key, portable.data(), portable.size());
    if (!p) return std::nullopt;
    if (!network_key.empty()) txt.strings.push_back("pm=" + mac(network_key, portable));
    txt.strings.push_back("p=" + std::string(p->begin(), p->end()));
  }
  m.additionals.push_back(txt);
  for (const in_addr& x : a.ipv4) {
    dns::Record r = record(host_name, dns::Type::kA, ttl, true);
    std::memcpy(r.address.data(), &x, 4);
    m.additionals.push_back(r);
  }
  for (const in6_addr& x : a.ipv6) {
    dns::Record r = record(host_name, dns::Type::kAaaa, ttl, true);
    std::memcpy(r.address.data(), &x, 16);
    m.additionals.push_back(r);
  }
  return m;
}

namespace {

// The TXT fields of an announcement into h.announcement (key, serial, name, aliases); its version (1 or 2),
// signature and MAC. False when they are not a well-formed announcement.
bool parse_txt(const std::vector<std::string>& strings, Heard& h, int& version, std::optional<std::string>& s,
               std::optional<std::string>& m) {
  Announcement& a = h.announcement;
  const std::optional<std::string> v = dns::txt_value(strings, "v");
  const std::optional<std::string> k = dns::txt_value(strings, "k");
  const std::optional<std::string> q = dns::txt_value(strings, "q");
  const std::optional<std::string> n = dns::txt_value(strings, "n");
  s = dns::txt_value(strings, "s");
  m = dns::txt_value(strings, "m");
  version = v == "1" ? 1 : v == "2" ? 2 : 0;
  if (!version || !k || k->size() != 32 || !q || !parse_serial(*q, a.serial) || !n ||
      n->size() > kMaxDisplayName || !valid_display_text(*n) || (m && m->size() != kMacBytes))
    return false;
  std::copy(k->begin(), k->end(), a.key.begin());
  a.display_name = *n;
  for (const std::string& str : strings) {
    if (str.size() > 2 && (str[0] == 'a' || str[0] == 'A') && str[1] == '=') {
      a.aliases.push_back(str.substr(2));
      if (str.size() - 2 > kMaxAlias) return false;
    }
  }
  return a.aliases.size() <= kMaxAliases;
}

// The network key's MAC, then the signature, over `bytes`: h.verdict.
void check(const std::vector<uint8_t>& bytes, const std::optional<std::string>& s,
           const std::optional<std::string>& m, const std::vector<uint8_t>& network_key, VerifiedCache* cache,
           Heard& h) {
  const Key& key = h.announcement.key;
  // The cheap check first: a stranger's record costs one HMAC, not a signature verification.
  if (!network_key.empty() || m) {
    const std::string expected = network_key.empty() ? std::string() : mac(network_key, bytes);
    if (!m || expected.empty() || CRYPTO_memcmp(expected.data(), m->data(), kMacBytes) != 0) {
      h.verdict = Verdict::kWrongNetworkKey;
      return;
    }
  }
  Signature sig{};
  if (!s || s->size() != sig.size()) {
    h.verdict = Verdict::kBadSignature;
    return;
  }
  std::copy(s->begin(), s->end(), sig.begin());
  std::vector<uint8_t> signed_bytes = bytes;
  signed_bytes.insert(signed_bytes.end(), sig.begin(), sig.end());
  if (cache) {
    auto known = cache->last.find(key);
    if (known != cache->last.end() && known->second == signed_bytes) {
      h.verdict = Verdict::kOk;  // exactly what was verified before
      return;
    }
  }
  h.verdict =
      verify_identity_signature(key, bytes.data(), bytes.size(), sig) ? Verdict::kOk : Verdict::kBadSignature;
  if (cache && h.verdict == Verdict::kOk) {
    if (cache->last.size() >= kMaxCached && !cache->last.count(key)) cache->last.clear();
    cache->last[key] = std::move(signed_bytes);
  }
}

}  // namespace

std::vector<Heard> read_announcements(const dns::Name& service, const dns::Message& response,
                                      const std::vector<uint8_t>& network_key, VerifiedCache* cache) {
  std::vector<const dns::Record*> all;
  for (const std::vector<dns::Record>* section : {&response.answers, &response.additionals})
    for (const dns::Record& r : *section)
      all.push_back(&r);
  auto find = [&](const dns::Name& name, dns::Type type) -> const dns::Record* {
    for (const dns::Record* r : all)
      if (r->kind() == type && dns::same_name(r->name, name)) return r;
    return nullptr;
  };

  std::vector<Heard> out;
  std::vector<const dns::Name*> instances;  // read already: a PTR repeated costs no second signature check
  for (const dns::Record* ptr : all) {
    if (ptr->kind() != dns::Type::kPtr || !dns::same_name(ptr->name, service)) continue;
    Heard h;
    const dns::Name& instance_name = ptr->target;
    if (instance_name.size() != service.size() + 1 ||
        !dns::same_name(dns::Name(instance_name.begin() + 1, instance_name.end()), service)) {
      out.push_back(h);  // not an instance of this service
      continue;
    }
    if (std::any_of(instances.begin(), instances.end(),
                    [&](const dns::Name* n) { return dns::same_name(*n, instance_name); }))
      continue;
    if (instances.size() == kMaxInstancesPerMessage) break;
    instances.push_back(&instance_name);
    h.instance = instance_name.front();
    const dns::Record* srv = find(instance_name, dns::Type::kSrv);
    const dns::Record* txt = find(instance_name, dns::Type::kTxt);
    int version = 0;
    std::optional<std::string> s, m;
    if (!srv || !txt || !parse_txt(txt->strings, h, version, s, m)) {
      out.push_back(h);
      continue;
    }
    Announcement& a = h.announcement;
    // Version 1 names its host after its key; version 2 (a system responder's) any host of .local.
    if ((version == 1 && (srv->target.size() != 2 || srv->target[0] != Identity::fingerprint_of(a.key))) ||
        srv->target.size() < 2 || !dns::same_name({srv->target.back()}, {"local"})) {
      out.push_back(h);
      continue;
    }
    a.port = srv->port;
    h.version = version;
    for (const dns::Record* r : all) {
      if (!dns::same_name(r->name, srv->target)) continue;
      if (r->kind() == dns::Type::kA && a.ipv4.size() < 16) {
        in_addr x{};
        std::memcpy(&x, r->address.data(), 4);
        a.ipv4.push_back(x);
      } else if (r->kind() == dns::Type::kAaaa && a.ipv6.size() < 16) {
        in6_addr x{};
        std::memcpy(&x, r->address.data(), 16);
        a.ipv6.push_back(x);
      }
    }
    h.goodbye = ptr->ttl == 0 && srv->ttl == 0 && txt->ttl == 0;
    a.ttl = h.goodbye ? 0 : std::clamp(srv->ttl, kMinTtlSeconds, kMaxTtlSeconds);
    check(covered(service, h.instance, srv->target[0], a, h.goodbye, version == 2), s, m, network_key, cache,
          h);
    out.push_back(h);
  }
  return out;
}

Heard read_portable(const dns::Name& service, uint16_t port, const std::vector<std::string>& txt,
                    const std::vector<uint8_t>& network_key, VerifiedCache* cache) {
  Heard h;
  int version = 0;
  std::optional<std::string> s, m;
  if (!parse_txt(txt, h, version, s, m)) return h;
  if (version == 1) {  // the beacon's own records: their version 2 signature and MAC
    s = dns::txt_value(txt, "p");
    m = dns::txt_value(txt, "pm");
    if (!s || (m && m->size() != kMacBytes)) return h;
  }
  h.announcement.port = port;
  h.version = version;
  check(covered(service, {}, {}, h.announcement, false, true), s, m, network_key, cache, h);
  return h;
}

}  // namespace peerlink::lan
