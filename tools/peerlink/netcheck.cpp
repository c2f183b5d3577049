// peerlink netcheck: what the network between this machine and the internet does to peer-to-peer traffic,
// in the terms ICE cares about (like `tailscale netcheck`):
//   - the local addresses (getifaddrs);
//   - per STUN server, the address it sees us at (XOR-MAPPED-ADDRESS), all from one socket;
//   - UDP blocked: no server answered over UDP (a finding, exit status 0);
//   - NAT mapping (RFC 4787 terms) by the RFC 5780 §4.3 tests when a server gives OTHER-ADDRESS, else by
//     comparing the mappings of several servers; NAT filtering by the RFC 5780 §4.4 CHANGE-REQUEST tests;
//   - per TURN server, whether it answers an Allocate (a 401 challenge), and with credentials a real
//     allocation (long-term credentials), freed again at once;
//   - with --xmpp, the XEP-0215 STUN/TURN services the account's server offers, then tested as above.
// The STUN/TURN codec here is the tool's own (RFC 5389, 5766, 5780; IPv4 and IPv6): the tool uses the
// public API alone.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cli_util.hpp"
#include "commands.hpp"
#include "peerlink/identity.hpp"
#include "peerlink/signaling.hpp"
#include "peerlink/xmpp.hpp"

namespace {

using namespace peerlink::cli;
using Clock = std::chrono::steady_clock;
using Bytes = std::vector<uint8_t>;
using std::chrono::milliseconds;

const char kNetcheckUsage[] =
    "usage: peerlink netcheck [--stun HOST:PORT]... [--turn HOST:PORT]... [--turn-user U --turn-password P "
    "|\n"
    "                         --turn-secret S] [--xmpp JID --password-file F [--server HOST:PORT]\n"
    "                         [--ca-file F] [--insecure-tls-for-tests]] [--interface IF] [--timeout S] "
    "[--json]\n"
    "  Tells what the network does to peer-to-peer traffic: local addresses, the address STUN servers see,\n"
    "  whether UDP gets out at all, the NAT's mapping and filtering behaviour (RFC 4787 / RFC 5780), "
    "whether\n"
    "  TURN servers answer (and relay, given credentials), and the STUN/TURN services an XMPP server "
    "offers.\n"
    "  --stun HOST:PORT      a STUN server (repeatable; the port defaults to 3478). One that gives\n"
    "                        OTHER-ADDRESS (RFC 5780, coturn with two IPs) tells mapping and filtering;\n"
    "                        otherwise two or more servers tell whether the mapping varies by destination\n"
    "  --turn HOST:PORT      a TURN server (repeatable): does it answer an Allocate over UDP?\n"
    "  --turn-user U --turn-password P   long-term credentials for --turn: allocate a relay, then free it\n"
    "  --turn-secret S       the TURN REST shared secret instead (username \"<expiry>:netcheck\", or\n"
    "                        \"<expiry>:U\" with --turn-user)\n"
    "  --xmpp JID            log in to this XMPP account and test the STUN/TURN servers it offers "
    "(XEP-0215)\n"
    "  --password-file F     the account's password (the file's first line)\n"
    "  --server HOST:PORT    the XMPP server (default: the JID's domain through DNS SRV)\n"
    "  --ca-file F           CA certificates (PEM) for the XMPP server's certificate\n"
    "  --insecure-tls-for-tests  accept any XMPP server certificate (tests only)\n"
    "  --interface IF        only this interface: its addresses, and the tests' sockets bound to it\n"
    "  --timeout S           seconds for the tests (default 5; --xmpp has as long again to log in)\n"
    "  --json                one JSON object with all of it\n"
    "  Exit status: 0 tested (\"UDP blocked\" is a finding, not a failure); 1 nothing could be tested (no\n"
    "  server given or resolving, XMPP login failed); 2 bad usage.\n";

constexpr int kTries = 3;                 // sends per STUN transaction
constexpr milliseconds kRetransmit{300};  // between them; no answer after kTries of these is "no answer"
constexpr uint16_t kDefaultStunPort = 3478;

// ---------------------------------------------------------------------------------------------------------
// Addresses

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;

  int family() const { return ss.ss_family; }
  uint16_t port() const {
    if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
  }
  void set_port(uint16_t port) {
    if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
    if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
  }
  std::string ip() const {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (family() == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    else if (family() == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    return buf;
  }
  std::string str() const {
    return (family() == AF_INET6 ? "[" + ip() + "]" : ip()) + ":" + std::to_string(port());
  }
  bool same_ip(const SockAddr& o) const {
    if (family() != o.family()) return false;
    if (family() == AF_INET)
      return reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr ==
             reinterpret_cast<const sockaddr_in*>(&o.ss)->sin_addr.s_addr;
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&o.ss)->sin6_addr, 16) == 0;
  }
  bool operator==(const SockAddr& o) const { return same_ip(o) && port() == o.port(); }
  bool operator!=(const SockAddr& o) const { return !(*this == o); }

  static SockAddr from(const sockaddr* sa, socklen_t len) {
    SockAddr a;
    a.len = std::min<socklen_t>(len, sizeof a.ss);
    std::memcpy(&a.ss, sa, a.len);
    return a;
  }
  // The raw address bytes (4 or 16) and the port make one.
  static SockAddr from_bytes(int family, const uint8_t* ip, uint16_t port) {
    SockAddr a;
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&a.ss);
      in->sin_family = AF_INET;
      std::memcpy(&in->sin_addr, ip, 4);
      a.len = sizeof(sockaddr_in);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
      in6->sin6_family = AF_INET6;
      std::memcpy(&in6->sin6_addr, ip, 16);
      a.len = sizeof(sockaddr_in6);
    }
    a.set_port(port);
    return a;
  }
};

struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string str() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

// "host:port", "[v6]:port", or a host alone (the port is then `default_port`). Nullopt for anything else:
// an empty host, a port that is not 1..65535, spaces or control characters.
std::optional<HostPort> parse_host_port(const std::string& text, uint16_t default_port) {
  HostPort hp;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) return std::nullopt;
    hp.host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return std::nullopt;
      port = text.substr(close + 2);
      if (port.empty()) return std::nullopt;
    }
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    hp.host = text;  // a bare IPv6 address
  } else if (const size_t colon = text.find(':'); colon != std::string::npos) {
    hp.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) return std::nullopt;
  } else {
    hp.host = text;
  }
  if (hp.host.empty() || hp.host.size() > 253) return std::nullopt;
  for (unsigned char c : hp.host)
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == '@') return std::nullopt;
  hp.port = default_port;
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    const long p = std::strtol(port.c_str(), nullptr, 10);
    if (p < 1 || p > 65535) return std::nullopt;
    hp.port = static_cast<uint16_t>(p);
  }
  return hp;
}

// Name resolution bounded in time: getaddrinfo() has no timeout of its own (a resolver that does not
// answer holds it for tens of seconds), so each name is resolved on a thread of its own and given up at
// the deadline. A thread still inside getaddrinfo() then is left behind (see run_netcheck's end).
struct Resolution {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::vector<SockAddr> addresses;
  std::string error;
};

std::shared_ptr<Resolution> start_resolution(const HostPort& hp, bool* left_threads) {
  auto r = std::make_shared<Resolution>();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(hp.port);
  auto take = [](Resolution& into, addrinfo* list) {
    for (addrinfo* ai = list; ai; ai = ai->ai_next)
      if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
        into.addresses.push_back(SockAddr::from(ai->ai_addr, ai->ai_addrlen));
  };
  if (getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res) == 0) {  // a literal: no thread needed
    take(*r, res);
    freeaddrinfo(res);
    r->done = true;
    return r;
  }
  *left_threads = true;
  std::thread([r, host = hp.host, port, take] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
    std::lock_guard<std::mutex> lock(r->mutex);
    if (rc == 0) {
      take(*r, res);
      freeaddrinfo(res);
    } else {
      r->error = gai_strerror(rc);
    }
    r->done = true;
    r->done_cv.notify_all();
  }).detach();
  return r;
}

// The first IPv4 address (IPv6 when there is none), or the reason there is none.
std::optional<SockAddr> finish_resolution(Resolution& r, Clock::time_point deadline, std::string* error) {
  std::unique_lock<std::mutex> lock(r.mutex);
  if (!r.done_cv.wait_until(lock, deadline, [&] { return r.done; })) {
    *error = "does not resolve (no answer from the name resolver in time)";
    return std::nullopt;
  }
  if (!r.error.empty()) {
    *error = "does not resolve (" + r.error + ")";
    return std::nullopt;
  }
  for (int family : {AF_INET, AF_INET6})
    for (const SockAddr& a : r.addresses)
      if (a.family() == family) return a;
  *error = "does not resolve to an IP address";
  return std::nullopt;
}

struct LocalAddress {
  std::string interface;
  SockAddr address;
};

std::vector<LocalAddress> local_addresses(const std::string& only_interface) {
  std::vector<LocalAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    const int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    if (only_interface.empty() ? (i->ifa_flags & IFF_LOOPBACK) != 0 : only_interface != i->ifa_name) continue;
    out.push_back({i->ifa_name, SockAddr::from(i->ifa_addr, family == AF_INET ? sizeof(sockaddr_in)
                                                                              : sizeof(sockaddr_in6))});
  }
  freeifaddrs(list);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// STUN (RFC 5389), TURN (RFC 5766) and NAT behaviour discovery (RFC 5780): the messages this tool sends
// and the attributes it reads.

constexpr uint32_t kMagicCookie = 0x2112A442;
constexpr size_t kHeaderSize = 20;

enum : uint16_t {
  kBindingRequest = 0x0001,
  kBindingSuccess = 0x0101,
  kAllocateRequest = 0x0003,
  kAllocateSuccess = 0x0103,
  kAllocateError = 0x0113,
  kRefreshRequest = 0x0004,
  kRefreshSuccess = 0x0104,
  kRefreshError = 0x0114,
};

enum : uint16_t {
  kAttrMappedAddress = 0x0001,
  kAttrChangeRequest = 0x0003,
  kAttrChangedAddress = 0x0005,  // RFC 3489's OTHER-ADDRESS
  kAttrUsername = 0x0006,
  kAttrMessageIntegrity = 0x0008,
  kAttrErrorCode = 0x0009,
  kAttrLifetime = 0x000D,
  kAttrRealm = 0x0014,
  kAttrNonce = 0x0015,
  kAttrXorRelayedAddress = 0x0016,
  kAttrRequestedAddressFamily = 0x0017,  // RFC 6156: an IPv6 relay (IPv4 is the default)
  kAttrRequestedTransport = 0x0019,
  kAttrXorMappedAddress = 0x0020,
  kAttrSoftware = 0x8022,
  kAttrResponseOrigin = 0x802B,
  kAttrOtherAddress = 0x802C,
};

constexpr uint32_t kChangeIp = 0x04, kChangePort = 0x02;

using TxId = std::array<uint8_t, 12>;

struct StunMessage {
  uint16_t type = 0;
  TxId txid{};
  std::vector<std::pair<uint16_t, Bytes>> attributes;

  const Bytes* find(uint16_t attr) const {
    for (const auto& a : attributes)
      if (a.first == attr) return &a.second;
    return nullptr;
  }
  std::string text(uint16_t attr) const {
    const Bytes* v = find(attr);
    return v ? std::string(v->begin(), v->end()) : std::string();
  }
  void add(uint16_t attr, Bytes value) { attributes.emplace_back(attr, std::move(value)); }
  void add(uint16_t attr, const std::string& value) { add(attr, Bytes(value.begin(), value.end())); }
  void add_u32(uint16_t attr, uint32_t v) {
    add(attr, Bytes{static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                    static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)});
  }
};

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

Bytes hmac_sha1(const Bytes& key, const uint8_t* data, size_t size) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (!HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), data, size, out.data(), &len)) return {};
  out.resize(len);
  return out;
}

TxId random_txid() {
  TxId id{};
  if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) {
    for (uint8_t& b : id)  // RAND_bytes does not fail on Linux; a transaction id need not be secret anyway
      b = static_cast<uint8_t>(std::rand());
  }
  return id;
}

// Header and attributes (each padded to 4 bytes); with a key, MESSAGE-INTEGRITY last (HMAC-SHA1 over the
// message whose length field already counts that attribute).
Bytes encode(const StunMessage& m, const Bytes* integrity_key = nullptr) {
  Bytes b;
  put16(b, m.type);
  put16(b, 0);
  for (int shift = 24; shift >= 0; shift -= 8)
    b.push_back(static_cast<uint8_t>(kMagicCookie >> shift));
  b.insert(b.end(), m.txid.begin(), m.txid.end());
  for (const auto& [type, value] : m.attributes) {
    put16(b, type);
    put16(b, static_cast<uint16_t>(value.size()));
    b.insert(b.end(), value.begin(), value.end());
    while (b.size() % 4 != 0)
      b.push_back(0);
  }
  auto set_length = [&b](size_t length) {
    b[2] = static_cast<uint8_t>(length >> 8);
    b[3] = static_cast<uint8_t>(length);
  };
  if (integrity_key) {
    set_length(b.size() - kHeaderSize + 24);
    const Bytes mac = hmac_sha1(*integrity_key, b.data(), b.size());
    put16(b, kAttrMessageIntegrity);
    put16(b, 20);
    b.insert(b.end(), mac.begin(), mac.end());
  }
  set_length(b.size() - kHeaderSize);
  return b;
}

// A STUN message of RFC 5389 (magic cookie, consistent lengths, attributes within bounds), or nullopt.
std::optional<StunMessage> decode(const uint8_t* p, size_t size) {
  if (size < kHeaderSize || (p[0] & 0xC0) != 0 || get32(p + 4) != kMagicCookie) return std::nullopt;
  const size_t length = get16(p + 2);
  if (length % 4 != 0 || kHeaderSize + length != size) return std::nullopt;
  StunMessage m;
  m.type = get16(p);
  std::copy(p + 8, p + 20, m.txid.begin());
  for (size_t at = kHeaderSize; at < size;) {
    if (size - at < 4) return std::nullopt;
    const uint16_t type = get16(p + at), len = get16(p + at + 2);
    if (len > size - at - 4) return std::nullopt;
    m.add(type, Bytes(p + at + 4, p + at + 4 + len));
    at += 4 + ((len + 3u) & ~3u);
  }
  return m;
}

// Whether raw's MESSAGE-INTEGRITY is right for key (RFC 5389 §15.4: HMAC over the message up to the
// attribute, its length field counting up to the attribute's end).
bool integrity_ok(const uint8_t* raw, size_t size, const Bytes& key) {
  for (size_t at = kHeaderSize; at + 4 <= size;) {
    const uint16_t type = get16(raw + at), len = get16(raw + at + 2);
    if (type == kAttrMessageIntegrity) {
      if (len != 20 || at + 24 > size) return false;
      Bytes copy(raw, raw + at);
      const size_t length = at + 24 - kHeaderSize;
      copy[2] = static_cast<uint8_t>(length >> 8);
      copy[3] = static_cast<uint8_t>(length);
      const Bytes mac = hmac_sha1(key, copy.data(), copy.size());
      return mac.size() == 20 && std::memcmp(mac.data(), raw + at + 4, 20) == 0;
    }
    at += 4 + ((len + 3u) & ~3u);
  }
  return false;
}

// An address attribute (MAPPED-ADDRESS style, or XOR-MAPPED-ADDRESS style when `xored`), IPv4 or IPv6.
std::optional<SockAddr> decode_address(const Bytes& v, bool xored, const TxId& txid) {
  if (v.size() < 8) return std::nullopt;
  const int family = v[1] == 1 ? AF_INET : v[1] == 2 ? AF_INET6 : 0;
  const size_t n = family == AF_INET ? 4 : 16;
  if (!family || v.size() != 4 + n) return std::nullopt;
  uint16_t port = get16(&v[2]);
  uint8_t ip[16];
  std::memcpy(ip, &v[4], n);
  if (xored) {
    port ^= static_cast<uint16_t>(kMagicCookie >> 16);
    uint8_t mask[16];
    for (int i = 0; i < 4; ++i)
      mask[i] = static_cast<uint8_t>(kMagicCookie >> (24 - 8 * i));
    std::copy(txid.begin(), txid.end(), mask + 4);
    for (size_t i = 0; i < n; ++i)
      ip[i] ^= mask[i];
  }
  return SockAddr::from_bytes(family, ip, port);
}

std::optional<SockAddr> address_of(const StunMessage& m, uint16_t attr, bool xored) {
  const Bytes* v = m.find(attr);
  return v ? decode_address(*v, xored, m.txid) : std::nullopt;
}

std::optional<SockAddr> mapped_of(const StunMessage& m) {
  if (auto a = address_of(m, kAttrXorMappedAddress, true)) return a;
  return address_of(m, kAttrMappedAddress, false);
}

// Text from the network made fit to print: trailing NULs (some servers count them) dropped, other control
// characters replaced.
std::string printable(std::string s) {
  while (!s.empty() && s.back() == '\0')
    s.pop_back();
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s;
}

// ERROR-CODE's number (401, 438, ...) and reason phrase (printable); 0 when there is none.
int error_code(const StunMessage& m, std::string* reason) {
  const Bytes* v = m.find(kAttrErrorCode);
  if (!v || v->size() < 4) return 0;
  if (reason) *reason = printable(std::string(v->begin() + 4, v->end()));
  return ((*v)[2] & 7) * 100 + (*v)[3];
}

// The long-term credential key, MD5(username ":" realm ":" password).
Bytes long_term_key(const std::string& user, const std::string& realm, const std::string& password) {
  const std::string s = user + ":" + realm + ":" + password;
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (EVP_Digest(s.data(), s.size(), out.data(), &len, EVP_md5(), nullptr) != 1) return {};
  out.resize(len);
  return out;
}

// TURN REST credentials: username "<expiry>:<user>", password base64(HMAC-SHA1(secret, username)).
std::pair<std::string, std::string> rest_credentials(const std::string& secret, const std::string& user) {
  const std::string username = std::to_string(static_cast<long long>(std::time(nullptr)) + 3600) + ":" + user;
  const Bytes mac = hmac_sha1(Bytes(secret.begin(), secret.end()),
                              reinterpret_cast<const uint8_t*>(username.data()), username.size());
  std::string b64(4 * ((mac.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&b64[0]), mac.data(), static_cast<int>(mac.size()));
  b64.resize(static_cast<size_t>(std::max(n, 0)));
  return {username, b64};
}

// ---------------------------------------------------------------------------------------------------------
// Sockets and transactions

class UdpProbeSocket {
 public:
  UdpProbeSocket() = default;
  ~UdpProbeSocket() {
    if (fd_ >= 0) close(fd_);
  }
  UdpProbeSocket(const UdpProbeSocket&) = delete;
  UdpProbeSocket& operator=(const UdpProbeSocket&) = delete;

  // A non-blocking UDP socket of `family`, bound to `local` (port 0) when given, else to the wildcard.
  bool open(int family, const std::optional<SockAddr>& local, std::string* error) {
    fd_ = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return *error = std::string("cannot open a UDP socket: ") + std::strerror(errno), false;
    SockAddr bind_to;
    if (local) {
      bind_to = *local;
      bind_to.set_port(0);
    } else {
      bind_to.ss.ss_family = static_cast<sa_family_t>(family);
      bind_to.len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    }
    if (bind(fd_, reinterpret_cast<const sockaddr*>(&bind_to.ss), bind_to.len) != 0)
      return *error = "cannot bind a UDP socket to " + bind_to.str() + ": " + std::strerror(errno), false;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    local_ = SockAddr::from(reinterpret_cast<sockaddr*>(&ss), len);
    return true;
  }
  int fd() const { return fd_; }
  const SockAddr& local() const { return local_; }

 private:
  int fd_ = -1;
  SockAddr local_;
};

// One request and what came of it. The response is matched by transaction id alone, from any source: the
// answers to CHANGE-REQUEST come from the server's other address, which is the point.
struct Transaction {
  const UdpProbeSocket* socket = nullptr;
  SockAddr to;
  Bytes request;
  TxId txid{};
  std::string send_error;
  Clock::time_point last_sent{};
  std::optional<StunMessage> response;
  Bytes raw;
  SockAddr from;
  double rtt_ms = 0;

  Transaction(const UdpProbeSocket* s, const SockAddr& dest, const StunMessage& m, const Bytes* key = nullptr)
      : socket(s), to(dest), request(encode(m, key)), txid(m.txid) {}
};

int ms_until(Clock::time_point t) {
  const auto left = std::chrono::duration_cast<milliseconds>(t - Clock::now()).count();
  return left > 0 ? static_cast<int>(std::min<long long>(left, 60000)) : 0;
}

// Runs the transactions side by side: each request is sent up to kTries times, kRetransmit apart, until
// its response arrives; nothing is sent after the deadline.
void run_transactions(const std::vector<Transaction*>& ts, Clock::time_point deadline) {
  auto pending = [&ts] {
    return std::any_of(ts.begin(), ts.end(), [](const Transaction* t) { return !t->response; });
  };
  for (int attempt = 0; attempt < kTries && pending() && Clock::now() < deadline; ++attempt) {
    for (Transaction* t : ts) {
      if (t->response) continue;
      if (sendto(t->socket->fd(), t->request.data(), t->request.size(), 0,
                 reinterpret_cast<const sockaddr*>(&t->to.ss), t->to.len) < 0)
        t->send_error = std::strerror(errno);  // no route, say; the retransmits try again
      t->last_sent = Clock::now();
    }
    const auto until = std::min(deadline, Clock::now() + kRetransmit);
    while (pending()) {
      std::vector<pollfd> fds;
      for (const Transaction* t : ts)
        if (!t->response &&
            std::none_of(fds.begin(), fds.end(), [t](const pollfd& p) { return p.fd == t->socket->fd(); }))
          fds.push_back({t->socket->fd(), POLLIN, 0});
      const int wait = ms_until(until);
      if (poll(fds.data(), fds.size(), wait) <= 0) break;
      for (const pollfd& p : fds) {
        if (!(p.revents & POLLIN)) continue;
        uint8_t buf[2048];
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        ssize_t n;
        while ((n = recvfrom(p.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&ss), &len)) >= 0) {
          std::optional<StunMessage> m = decode(buf, static_cast<size_t>(n));
          if (m)
            for (Transaction* t : ts)
              if (!t->response && t->socket->fd() == p.fd && t->txid == m->txid) {
                t->response = std::move(m);
                t->raw.assign(buf, buf + n);
                t->from = SockAddr::from(reinterpret_cast<sockaddr*>(&ss), len);
                t->rtt_ms = std::chrono::duration<double, std::milli>(Clock::now() - t->last_sent).count();
                break;
              }
          len = sizeof ss;
        }
      }
      if (wait == 0) break;
    }
  }
}

StunMessage binding_request(uint32_t change_flags = 0) {
  StunMessage m;
  m.type = kBindingRequest;
  m.txid = random_txid();
  if (change_flags) m.add_u32(kAttrChangeRequest, change_flags);
  return m;
}

// ---------------------------------------------------------------------------------------------------------
// What is tested and what came of it

struct StunProbe {
  HostPort given;
  std::string origin;  // "command line" or "xmpp"
  std::optional<SockAddr> address;
  std::string error;  // why it was not tested
  bool answered = false;
  std::optional<SockAddr> mapped;
  std::optional<SockAddr> other;  // OTHER-ADDRESS: the server does RFC 5780
  double rtt_ms = 0;
};

// A TURN server's check, as a few steps: an Allocate without credentials (the 401 challenge says a TURN
// server answers), with credentials the Allocate proper (once more on a stale nonce), then a Refresh with
// LIFETIME 0 to free the allocation.
struct TurnProbe {
  HostPort given;
  std::string origin;
  std::optional<SockAddr> address;
  std::string error;  // why it was not tested, or what failed
  std::string username, password;
  std::string transport_note;  // for servers offered over TCP: they are tested over UDP here
  std::unique_ptr<UdpProbeSocket> socket;

  enum class Step { kChallenge, kAllocate, kFree, kDone } step = Step::kChallenge;
  bool reachable = false;
  std::string challenge;  // what the server answered the Allocate without credentials
  std::string realm, nonce;
  Bytes key;
  bool authenticated = false;  // an allocation was made with the credentials
  bool integrity = false;      // and its success response carried a valid MESSAGE-INTEGRITY
  std::optional<SockAddr> relayed, mapped;
  uint32_t lifetime = 0;
  bool freed = false;
  int stale_retries = 0;
  double rtt_ms = 0;

  bool has_credentials() const { return !username.empty(); }

  std::optional<Transaction> next() const {
    if (step == Step::kDone || !socket || !address) return std::nullopt;
    StunMessage m;
    m.txid = random_txid();
    const bool signed_request = step != Step::kChallenge && !key.empty();
    if (step == Step::kFree) {
      m.type = kRefreshRequest;
      m.add_u32(kAttrLifetime, 0);
    } else {
      m.type = kAllocateRequest;
      m.add_u32(kAttrRequestedTransport, 17u << 24);  // UDP
      if (address->family() == AF_INET6) m.add_u32(kAttrRequestedAddressFamily, 2u << 24);
    }
    if (signed_request) {
      m.add(kAttrUsername, username);
      m.add(kAttrRealm, realm);
      m.add(kAttrNonce, nonce);
    }
    return Transaction(socket.get(), *address, m, signed_request ? &key : nullptr);
  }

  void on_result(const Transaction& t) {
    if (!t.response) {
      if (step == Step::kChallenge)
        error = "no answer over UDP";
      else if (step == Step::kAllocate)
        error = "no answer to the authenticated Allocate";
      else
        error = "no answer to the Refresh that frees the allocation";
      step = Step::kDone;
      return;
    }
    const StunMessage& r = *t.response;
    std::string reason;
    const int code = error_code(r, &reason);
    auto stale = [&] {
      if (code != 438 || r.text(kAttrNonce).empty() || stale_retries++ > 0) return false;
      nonce = r.text(kAttrNonce);
      return true;
    };
    switch (step) {
      case Step::kChallenge:
        rtt_ms = t.rtt_ms;
        if (r.type == kAllocateSuccess) {  // a server without authentication
          reachable = true;
          challenge = "allocated without credentials";
          relayed = address_of(r, kAttrXorRelayedAddress, true);
          mapped = mapped_of(r);
          step = Step::kFree;
        } else if (r.type == kAllocateError) {
          reachable = true;
          realm = r.text(kAttrRealm);
          nonce = r.text(kAttrNonce);
          challenge = std::to_string(code) + (reason.empty() ? "" : " " + reason);
          if (code == 401 && !realm.empty() && !nonce.empty()) {
            if (has_credentials()) {
              key = long_term_key(username, realm, password);
              step = Step::kAllocate;
              return;
            }
          } else {
            error = "answers the Allocate with " + challenge + " instead of a 401 challenge";
          }
          step = Step::kDone;
        } else {
          error = "answers the Allocate with a message of type " + std::to_string(r.type);
          step = Step::kDone;
        }
        return;
      case Step::kAllocate:
        if (r.type == kAllocateSuccess) {
          authenticated = true;
          integrity = integrity_ok(t.raw.data(), t.raw.size(), key);
          relayed = address_of(r, kAttrXorRelayedAddress, true);
          mapped = mapped_of(r);
          if (const Bytes* l = r.find(kAttrLifetime); l && l->size() == 4) lifetime = get32(l->data());
          step = Step::kFree;
        } else if (!stale()) {
          error = code == 401
                      ? "the credentials were refused (401" + (reason.empty() ? "" : " " + reason) + ")"
                      : "the Allocate failed: " + std::to_string(code) + " " + reason;
          step = Step::kDone;
        }
        return;
      case Step::kFree:
        if (r.type == kRefreshSuccess) {
          freed = true;
          step = Step::kDone;
        } else if (!stale()) {
          error = "the Refresh that frees the allocation failed: " + std::to_string(code) + " " + reason;
          step = Step::kDone;
        }
        return;
      case Step::kDone:
        return;
    }
  }
};

// The XMPP part: the plugin is given this sink instead of a Host; it only listens for offered servers.
class OfferSink final : public peerlink::SignalingSink {
 public:
  void deliver(const peerlink::PeerId&, const void*, size_t, const peerlink::PeerId&) override {}
  void peer_unreachable(const peerlink::PeerId&, const std::string&) override {}
  void offer_ice_servers(const std::vector<peerlink::StunServer>& stun,
                         const std::vector<peerlink::TurnServer>& turn) override {
    std::lock_guard<std::mutex> lock(mutex_);
    stun_ = stun;
    turn_ = turn;
    offered_ = true;
    cv_.notify_all();
  }
  const peerlink::PublicKey& local_key() const override { return key_; }
  void network_changed(const std::string&) override {}

  void no_services() {
    std::lock_guard<std::mutex> lock(mutex_);
    none_ = true;
    cv_.notify_all();
  }
  // Waits until the server offered its services (true), said it has none, or the deadline.
  // give_up() is called without the lock held: it asks the plugin, which may be calling us meanwhile.
  bool wait(Clock::time_point deadline, const std::function<bool()>& give_up) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_until(lock, std::min(deadline, Clock::now() + milliseconds(50)),
                       [this] { return offered_ || none_; });
        if (offered_ || none_ || Clock::now() >= deadline) return offered_;
      }
      if (give_up()) return false;
    }
  }
  std::vector<peerlink::StunServer> stun() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stun_;
  }
  std::vector<peerlink::TurnServer> turn() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return turn_;
  }

 private:
  const peerlink::PublicKey key_ = peerlink::Identity::generate().public_key();  // a throwaway: no Host
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool offered_ = false, none_ = false;
  std::vector<peerlink::StunServer> stun_;
  std::vector<peerlink::TurnServer> turn_;
};

struct XmppReport {
  bool tried = false;
  std::string jid;
  std::string state;
  bool online = false;
  std::string error;
  bool offered = false;  // the server answered XEP-0215
  std::vector<peerlink::StunServer> stun;
  std::vector<peerlink::TurnServer> turn;
};

struct Options {
  std::vector<HostPort> stun, turn;
  std::string turn_user, turn_password, turn_secret;
  peerlink::XmppOptions xmpp;
  std::string interface;
  double seconds = 5;
  bool json = false;
};

struct Report {
  std::vector<LocalAddress> local;
  std::vector<StunProbe> stun;
  std::vector<TurnProbe> turn;
  XmppReport xmpp;
  std::optional<bool> udp;  // unset: nothing was sent over UDP
  std::optional<SockAddr> mapped;
  std::string mapping = "unknown", mapping_how;
  bool mapping_varies = false;  // without RFC 5780: servers saw different ports
  std::string filtering = "unknown", filtering_how;
};

// ---------------------------------------------------------------------------------------------------------
// Output

const char* transport_name(peerlink::TurnTransport t) {
  return t == peerlink::TurnTransport::kTcp ? "tcp" : "udp";
}

std::string json_opt(const std::optional<SockAddr>& a) {
  return a ? json_string(a->str()) : "null";
}

std::string json_bool(bool b) {
  return b ? "true" : "false";
}

std::string ms_text(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", ms);
  return buf;
}

void print_json(const Report& r) {
  std::string o = "{\"local_addresses\":[";
  for (size_t i = 0; i < r.local.size(); ++i)
    o += std::string(i ? "," : "") + "{\"interface\":" + json_string(r.local[i].interface) +
         ",\"address\":" + json_string(r.local[i].address.ip()) + "}";
  o += "],\"udp\":" + std::string(r.udp ? json_bool(*r.udp) : "null");
  o += ",\"mapped\":" + json_opt(r.mapped);
  o += ",\"mapping\":" + json_string(r.mapping) +
       ",\"mapping_varies_by_destination\":" + json_bool(r.mapping_varies) +
       ",\"mapping_test\":" + json_string(r.mapping_how);
  o += ",\"filtering\":" + json_string(r.filtering) + ",\"filtering_test\":" + json_string(r.filtering_how);
  o += ",\"stun\":[";
  for (size_t i = 0; i < r.stun.size(); ++i) {
    const StunProbe& s = r.stun[i];
    o += std::string(i ? "," : "") + "{\"server\":" + json_string(s.given.str()) +
         ",\"from\":" + json_string(s.origin) + ",\"address\":" + json_opt(s.address) +
         ",\"answered\":" + json_bool(s.answered) + ",\"mapped\":" + json_opt(s.mapped);
    if (s.answered) o += ",\"rtt_ms\":" + ms_text(s.rtt_ms);
    o += ",\"rfc5780\":" + json_bool(s.other.has_value()) + ",\"other_address\":" + json_opt(s.other);
    o += ",\"error\":" + (s.error.empty() ? std::string("null") : json_string(s.error)) + "}";
  }
  o += "],\"turn\":[";
  for (size_t i = 0; i < r.turn.size(); ++i) {
    const TurnProbe& t = r.turn[i];
    o += std::string(i ? "," : "") + "{\"server\":" + json_string(t.given.str()) +
         ",\"from\":" + json_string(t.origin) + ",\"address\":" + json_opt(t.address) +
         ",\"transport\":\"udp\",\"reachable\":" + json_bool(t.reachable);
    if (t.reachable) o += ",\"rtt_ms\":" + ms_text(t.rtt_ms) + ",\"challenge\":" + json_string(t.challenge);
    o += ",\"realm\":" + (t.realm.empty() ? std::string("null") : json_string(t.realm));
    o += ",\"credentials\":" + json_bool(t.has_credentials());
    if (t.has_credentials()) o += ",\"username\":" + json_string(t.username);
    o += ",\"authenticated\":" + json_bool(t.authenticated) + ",\"integrity\":" + json_bool(t.integrity) +
         ",\"relayed\":" + json_opt(t.relayed) + ",\"mapped\":" + json_opt(t.mapped) +
         ",\"lifetime\":" + std::to_string(t.lifetime) + ",\"freed\":" + json_bool(t.freed);
    if (!t.transport_note.empty()) o += ",\"note\":" + json_string(t.transport_note);
    o += ",\"error\":" + (t.error.empty() ? std::string("null") : json_string(t.error)) + "}";
  }
  o += "]";
  if (r.xmpp.tried) {
    const XmppReport& x = r.xmpp;
    o += ",\"xmpp\":{\"jid\":" + json_string(x.jid) + ",\"state\":" + json_string(x.state) +
         ",\"online\":" + json_bool(x.online) + ",\"offered\":" + json_bool(x.offered) + ",\"stun\":[";
    for (size_t i = 0; i < x.stun.size(); ++i)
      o += std::string(i ? "," : "") + json_string(HostPort{x.stun[i].host, x.stun[i].port}.str());
    o += "],\"turn\":[";
    for (size_t i = 0; i < x.turn.size(); ++i)
      o += std::string(i ? "," : "") +
           "{\"server\":" + json_string(HostPort{x.turn[i].host, x.turn[i].port}.str()) +
           ",\"transport\":" + json_string(transport_name(x.turn[i].transport)) +
           ",\"username\":" + json_string(x.turn[i].username) + "}";
    o += "],\"error\":" + (x.error.empty() ? std::string("null") : json_string(x.error)) + "}";
  }
  o += "}\n";
  std::fputs(o.c_str(), stdout);
}

void print_text(const Report& r) {
  std::string o = "local addresses:\n";
  if (r.local.empty()) o += "  none\n";
  for (const LocalAddress& l : r.local)
    o += "  " + l.interface + std::string(l.interface.size() < 10 ? 10 - l.interface.size() : 1, ' ') +
         l.address.ip() + "\n";
  if (!r.udp)
    o += "UDP: not tested (no STUN or TURN server to ask)\n";
  else if (*r.udp)
    o += "UDP: works\n";
  else
    o += "UDP blocked: no STUN or TURN server answered over UDP\n";
  if (r.mapped) o += "mapped address: " + r.mapped->str() + "\n";
  o += "NAT mapping: " +
       (r.mapping == "none" ? std::string("no NAT, the mapped address is this machine's own")
        : r.mapping_varies  ? std::string("varies by destination")
                            : r.mapping) +
       (r.mapping_how.empty() ? "" : " (" + r.mapping_how + ")") + "\n";
  o += "NAT filtering: " + r.filtering + (r.filtering_how.empty() ? "" : " (" + r.filtering_how + ")") + "\n";
  if (!r.stun.empty()) o += "STUN:\n";
  for (const StunProbe& s : r.stun) {
    std::string name = printable(s.given.str());
    if (s.address && s.address->str() != name) name += " (" + s.address->ip() + ")";
    o += "  " + name + "  ";
    if (!s.error.empty())
      o += printable(s.error);
    else if (!s.answered)
      o += "no answer";
    else
      o += "mapped " + (s.mapped ? s.mapped->str() : std::string("(no address in the answer)")) + ", " +
           ms_text(s.rtt_ms) + " ms";
    if (s.other) o += "; RFC 5780, other address " + s.other->str();
    if (s.origin != "command line") o += "  [from " + s.origin + "]";
    o += "\n";
  }
  if (!r.turn.empty()) o += "TURN:\n";
  for (const TurnProbe& t : r.turn) {
    std::string name = printable(t.given.str());
    if (t.address && t.address->str() != name) name += " (" + t.address->ip() + ")";
    o += "  " + name + "  ";
    if (!t.reachable) {
      o += "not reachable" + (t.error.empty() ? "" : ": " + printable(t.error));
    } else {
      o += "reachable (" + t.challenge + (t.realm.empty() ? "" : ", realm " + printable(t.realm)) + ", " +
           ms_text(t.rtt_ms) + " ms)";
      if (t.relayed)
        o += "; relay " + t.relayed->str() + " allocated" +
             (t.authenticated ? " as " + t.username : std::string()) + (t.freed ? " and freed" : "");
      if (!t.error.empty())
        o += "; " + printable(t.error);
      else if (!t.has_credentials() && !t.relayed)
        o += "; no credentials given, no allocation tried";
    }
    if (!t.transport_note.empty()) o += " (" + t.transport_note + ")";
    if (t.origin != "command line") o += "  [from " + t.origin + "]";
    o += "\n";
  }
  if (r.xmpp.tried) {
    const XmppReport& x = r.xmpp;
    o += "XMPP:\n  " + x.jid + "  " + x.state + (x.error.empty() ? "" : ": " + printable(x.error));
    if (x.online)
      o += x.offered ? "; offers " + std::to_string(x.stun.size()) + " STUN and " +
                           std::to_string(x.turn.size()) + " TURN server(s) (XEP-0215)"
                     : "; offers no STUN/TURN services (XEP-0215)";
    o += "\n";
    for (const peerlink::StunServer& s : x.stun)
      o += "    stun " + printable(HostPort{s.host, s.port}.str()) + "\n";
    for (const peerlink::TurnServer& t : x.turn)
      o += "    turn " + printable(HostPort{t.host, t.port}.str()) + " " + transport_name(t.transport) +
           " user " + printable(t.username) + "\n";
  }
  std::fputs(o.c_str(), stdout);
}

// ---------------------------------------------------------------------------------------------------------
// The run

XmppReport check_xmpp(peerlink::XmppOptions options, Clock::time_point deadline) {
  XmppReport x;
  x.tried = true;
  x.jid = options.jid;
  auto sink = std::make_shared<OfferSink>();
  std::weak_ptr<OfferSink> weak = sink;
  std::mutex log_mutex;
  std::string last_problem;
  options.external_services = true;
  options.log_level = peerlink::LogLevel::kDebug;  // its "offers no STUN/TURN services" line is a debug one
  options.log_sink = [weak, &log_mutex, &last_problem](peerlink::LogLevel level, const std::string& line) {
    if (line.find("offers no STUN/TURN") != std::string::npos)
      if (auto s = weak.lock()) s->no_services();
    if (level <= peerlink::LogLevel::kWarning) {
      std::lock_guard<std::mutex> lock(log_mutex);
      last_problem = line;
    }
  };
  std::unique_ptr<peerlink::XmppSignaling> plugin;
  try {
    plugin = std::make_unique<peerlink::XmppSignaling>(options);
  } catch (const std::exception& e) {
    x.state = "not started";
    x.error = e.what();
    return x;
  }
  plugin->start(*sink);
  x.offered = sink->wait(deadline, [&] { return plugin->status().state == peerlink::XmppState::kFailed; });
  // The services can arrive before the plugin reports itself online (it does once its session is set up):
  // wait for that too, within the same deadline.
  if (x.offered)
    plugin->wait_online(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(deadline - Clock::now(), Clock::duration::zero())));
  const peerlink::XmppStatus status = plugin->status();
  plugin->stop();
  x.online = status.state == peerlink::XmppState::kOnline;
  x.state = peerlink::to_string(status.state);
  if (!status.jid.empty()) x.jid = status.jid;
  if (!x.online) {
    std::lock_guard<std::mutex> lock(log_mutex);
    x.error = !status.reason.empty()  ? status.reason
              : !last_problem.empty() ? last_problem
                                      : "not logged in within the timeout";
  } else if (!x.offered && Clock::now() >= deadline) {
    x.error = "logged in, but the server did not answer the XEP-0215 request in time";
  }
  x.stun = sink->stun();
  x.turn = sink->turn();
  return x;
}

// The RFC 5780 §4.3 mapping tests II and III and the §4.4 filtering tests, against the server that gave
// OTHER-ADDRESS. Mapping: from the main socket (test I was its Binding). Filtering: from a fresh socket,
// so that nothing the mapping tests sent to the other address opens the NAT's filter for it.
struct Rfc5780Tests {
  std::unique_ptr<Transaction> test2, test3;      // mapping: other IP + primary port, other IP + other port
  std::unique_ptr<UdpProbeSocket> filter_socket;  // fresh
  std::unique_ptr<Transaction> control, change_both, change_port;
};

void judge_mapping(Report& r, const StunProbe& s, const Rfc5780Tests& t, const std::vector<SockAddr>& locals,
                   const SockAddr& main_local) {
  const SockAddr& x1 = *s.mapped;
  const bool local =
      std::any_of(locals.begin(), locals.end(), [&](const SockAddr& a) { return a.same_ip(x1); }) &&
      x1.port() == main_local.port();
  const std::string how = "RFC 5780 tests against " + s.address->str();
  if (local) {
    r.mapping = "none";
    r.mapping_how = how;
    return;
  }
  const std::optional<SockAddr> x2 = t.test2->response ? mapped_of(*t.test2->response) : std::nullopt;
  if (!x2) return;  // the other address does not answer: unknown by RFC 5780
  r.mapping_how = how;
  if (*x2 == x1) {
    r.mapping = "endpoint-independent";
    return;
  }
  const std::optional<SockAddr> x3 = t.test3->response ? mapped_of(*t.test3->response) : std::nullopt;
  if (!x3) {
    r.mapping_how.clear();
    return;
  }
  r.mapping = *x3 == *x2 ? "address-dependent" : "address-and-port-dependent";
}

void judge_filtering(Report& r, const StunProbe& s, const Rfc5780Tests& t) {
  if (!t.control->response) return;  // even a plain Binding from the fresh socket went unanswered: unknown
  r.filtering_how = "RFC 5780 CHANGE-REQUEST tests against " + s.address->str();
  // An answer counts only when it really came from where it should have (a server that ignores
  // CHANGE-REQUEST answers from its primary address).
  auto from_changed = [&](const Transaction& c, bool ip_changed) {
    return c.response && !(ip_changed ? c.from.same_ip(*s.address) : c.from == *s.address);
  };
  if (from_changed(*t.change_both, true))
    r.filtering = "endpoint-independent";
  else if (from_changed(*t.change_port, false))
    r.filtering = "address-dependent";
  else
    r.filtering = "address-and-port-dependent";
}

// The command line into `opt`; an exit status when the run ends here (help, bad usage, nothing to test).
std::optional<int> parse_options(const std::vector<std::string>& args, Options& opt) {
  bool insecure_tls = false;
  std::string server, password_file;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return std::fputs(kNetcheckUsage, stdout), kOk;
    if (a == "--json") {
      opt.json = true;
      continue;
    }
    if (a == "--insecure-tls-for-tests") {
      insecure_tls = true;
      continue;
    }
    static const char* const kWithValue[] = {
        "--stun",          "--turn",   "--turn-user", "--turn-password", "--turn-secret", "--xmpp",
        "--password-file", "--server", "--ca-file",   "--interface",     "--timeout"};
    if (std::find_if(std::begin(kWithValue), std::end(kWithValue), [&](const char* w) { return a == w; }) ==
        std::end(kWithValue))
      return usage_error("unknown option for netcheck: " + a, kNetcheckUsage);
    if (i + 1 >= args.size()) return usage_error(a + " wants a value", kNetcheckUsage);
    const std::string& v = args[++i];
    if (a == "--stun" || a == "--turn") {
      std::optional<HostPort> hp = parse_host_port(v, kDefaultStunPort);
      if (!hp)
        return usage_error(
            a + " wants HOST:PORT (a name or an address, a port from 1 to 65535), not '" + v + "'",
            kNetcheckUsage);
      (a == "--stun" ? opt.stun : opt.turn).push_back(*hp);
    } else if (a == "--turn-user") {
      opt.turn_user = v;
    } else if (a == "--turn-password") {
      opt.turn_password = v;
    } else if (a == "--turn-secret") {
      opt.turn_secret = v;
    } else if (a == "--xmpp") {
      opt.xmpp.jid = v;
    } else if (a == "--password-file") {
      password_file = v;
    } else if (a == "--server") {
      std::optional<HostPort> hp = parse_host_port(v, 5222);
      if (!hp) return usage_error("--server wants HOST:PORT, not '" + v + "'", kNetcheckUsage);
      opt.xmpp.host = hp->host;
      opt.xmpp.port = hp->port;
      server = v;
    } else if (a == "--ca-file") {
      opt.xmpp.ca_file = v;
    } else if (a == "--interface") {
      if (!opt.interface.empty()) return usage_error("--interface is given twice", kNetcheckUsage);
      opt.interface = v;
    } else if (a == "--timeout") {
      char* end = nullptr;
      opt.seconds = std::strtod(v.c_str(), &end);
      if (!end || *end || !(opt.seconds > 0) || opt.seconds > 600)
        return usage_error("--timeout wants a number of seconds from 0 to 600, not '" + v + "'",
                           kNetcheckUsage);
    }
  }
  // Combinations.
  const bool xmpp = !opt.xmpp.jid.empty();
  if (!xmpp && (!password_file.empty() || !server.empty() || !opt.xmpp.ca_file.empty() || insecure_tls))
    return usage_error("--password-file, --server, --ca-file and --insecure-tls-for-tests go with --xmpp",
                       kNetcheckUsage);
  if (xmpp && password_file.empty()) return usage_error("--xmpp wants --password-file", kNetcheckUsage);
  if (!opt.turn_secret.empty() && !opt.turn_password.empty())
    return usage_error("give --turn-password or --turn-secret, not both", kNetcheckUsage);
  if (!opt.turn_password.empty() && opt.turn_user.empty())
    return usage_error("--turn-password wants --turn-user", kNetcheckUsage);
  if (!opt.turn_user.empty() && opt.turn_password.empty() && opt.turn_secret.empty())
    return usage_error("--turn-user wants --turn-password (or --turn-secret)", kNetcheckUsage);
  if ((!opt.turn_user.empty() || !opt.turn_secret.empty()) && opt.turn.empty())
    return usage_error("TURN credentials given without --turn", kNetcheckUsage);
  if (opt.stun.empty() && opt.turn.empty() && !xmpp) {
    std::fprintf(stderr,
                 "peerlink: nothing to test: give a STUN server (--stun HOST:PORT), a TURN server (--turn "
                 "HOST:PORT) or an XMPP account (--xmpp JID)\n");
    return kFailed;
  }
  if (xmpp) {
    opt.xmpp.password_file = password_file;
    if (insecure_tls) opt.xmpp.tls = peerlink::XmppTls::kInsecureForTestsOnly;
    if (peerlink::Result<void> ok = opt.xmpp.validate(); !ok)
      return usage_error("--xmpp: " + ok.error().message, kNetcheckUsage);
  }
  return std::nullopt;
}

}  // namespace

int run_netcheck(const std::vector<std::string>& args) {
  Options opt;
  if (std::optional<int> exit = parse_options(args, opt)) return *exit;
  const bool xmpp = !opt.xmpp.jid.empty();

  Report r;
  r.local = local_addresses(opt.interface);
  if (!opt.interface.empty() && r.local.empty()) {
    std::fprintf(stderr, "peerlink: no interface '%s' with an address that is up\n", opt.interface.c_str());
    return kFailed;
  }
  const auto budget = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.seconds));
  bool left_threads = false;

  // XMPP first: the servers it offers join the tests.
  if (xmpp) {
    opt.xmpp.login_timeout = std::chrono::duration_cast<milliseconds>(budget);
    r.xmpp = check_xmpp(opt.xmpp, Clock::now() + budget);
  }
  const Clock::time_point deadline = Clock::now() + budget;
  // Names get half the time at most, so that the tests keep the other half.
  const Clock::time_point resolve_deadline = Clock::now() + budget / 2;

  std::pair<std::string, std::string> rest;
  if (!opt.turn_secret.empty())
    rest = rest_credentials(opt.turn_secret, opt.turn_user.empty() ? "netcheck" : opt.turn_user);
  for (const HostPort& hp : opt.stun)
    r.stun.push_back(StunProbe{hp, "command line", {}, {}, false, {}, {}, 0});
  for (const HostPort& hp : opt.turn) {
    TurnProbe t;
    t.given = hp;
    t.origin = "command line";
    t.username = opt.turn_secret.empty() ? opt.turn_user : rest.first;
    t.password = opt.turn_secret.empty() ? opt.turn_password : rest.second;
    r.turn.push_back(std::move(t));
  }
  for (const peerlink::StunServer& s : r.xmpp.stun)
    r.stun.push_back(StunProbe{HostPort{s.host, s.port}, "xmpp", {}, {}, false, {}, {}, 0});
  for (const peerlink::TurnServer& s : r.xmpp.turn) {
    TurnProbe t;
    t.given = HostPort{s.host, s.port};
    t.origin = "xmpp";
    t.username = s.username;
    t.password = s.password;
    if (s.transport == peerlink::TurnTransport::kTcp) t.transport_note = "offered over TCP, tested over UDP";
    r.turn.push_back(std::move(t));
  }

  // Resolve every name at once.
  std::vector<std::shared_ptr<Resolution>> stun_names, turn_names;
  for (const StunProbe& s : r.stun)
    stun_names.push_back(start_resolution(s.given, &left_threads));
  for (const TurnProbe& t : r.turn)
    turn_names.push_back(start_resolution(t.given, &left_threads));
  for (size_t i = 0; i < r.stun.size(); ++i)
    r.stun[i].address = finish_resolution(*stun_names[i], resolve_deadline, &r.stun[i].error);
  for (size_t i = 0; i < r.turn.size(); ++i)
    r.turn[i].address = finish_resolution(*turn_names[i], resolve_deadline, &r.turn[i].error);

  // Sockets: one main socket per address family for every STUN Binding (mappings are compared across
  // servers and RFC 5780 tests from one socket), one per TURN server.
  auto bind_address = [&](int family) -> std::optional<SockAddr> {
    if (opt.interface.empty()) return std::nullopt;
    for (const LocalAddress& l : r.local)
      if (l.address.family() == family) return l.address;
    return std::nullopt;
  };
  auto usable_family = [&](int family, std::string* error) {
    if (!opt.interface.empty() && !bind_address(family)) {
      *error = "interface " + opt.interface + " has no " + (family == AF_INET ? "IPv4" : "IPv6") + " address";
      return false;
    }
    return true;
  };
  std::unique_ptr<UdpProbeSocket> main_socket[2];  // [0] IPv4, [1] IPv6
  auto main_for = [&](int family, std::string* error) -> UdpProbeSocket* {
    std::unique_ptr<UdpProbeSocket>& s = main_socket[family == AF_INET6];
    if (!s) {
      auto fresh = std::make_unique<UdpProbeSocket>();
      if (!usable_family(family, error) || !fresh->open(family, bind_address(family), error)) return nullptr;
      s = std::move(fresh);
    }
    return s.get();
  };

  std::vector<std::unique_ptr<Transaction>> bindings(r.stun.size());
  std::vector<Transaction*> round;
  for (size_t i = 0; i < r.stun.size(); ++i) {
    StunProbe& s = r.stun[i];
    if (!s.address) continue;
    UdpProbeSocket* sock = main_for(s.address->family(), &s.error);
    if (!sock) continue;
    bindings[i] = std::make_unique<Transaction>(sock, *s.address, binding_request());
    round.push_back(bindings[i].get());
  }
  std::vector<std::unique_ptr<Transaction>> turn_tx(r.turn.size());
  auto add_turn_steps = [&] {
    for (size_t i = 0; i < r.turn.size(); ++i) {
      std::optional<Transaction> t = r.turn[i].next();
      turn_tx[i] = t ? std::make_unique<Transaction>(std::move(*t)) : nullptr;
      if (turn_tx[i]) round.push_back(turn_tx[i].get());
    }
  };
  for (TurnProbe& t : r.turn) {
    if (!t.address) continue;
    auto sock = std::make_unique<UdpProbeSocket>();
    if (usable_family(t.address->family(), &t.error) &&
        sock->open(t.address->family(), bind_address(t.address->family()), &t.error))
      t.socket = std::move(sock);
  }
  add_turn_steps();

  const bool anything = !round.empty();
  if (!anything && !r.xmpp.online) {
    std::string why;
    for (const StunProbe& s : r.stun)
      why += "\n  STUN " + printable(s.given.str()) + ": " + printable(s.error);
    for (const TurnProbe& t : r.turn)
      why += "\n  TURN " + printable(t.given.str()) + ": " + printable(t.error);
    if (r.xmpp.tried) why += "\n  XMPP " + r.xmpp.jid + ": " + r.xmpp.state + ", " + printable(r.xmpp.error);
    if (opt.json) print_json(r);
    std::fprintf(stderr, "peerlink: nothing could be tested:%s\n", why.c_str());
    if (left_threads) {  // a resolver thread may still be inside getaddrinfo(): do not run exit handlers
      std::fflush(stdout);
      std::fflush(stderr);
      _exit(kFailed);
    }
    return kFailed;
  }

  // Round 1: a Binding to every STUN server from the main socket, the challenge of every TURN server.
  run_transactions(round, deadline);
  for (size_t i = 0; i < r.stun.size(); ++i) {
    if (!bindings[i]) continue;
    StunProbe& s = r.stun[i];
    const Transaction& t = *bindings[i];
    s.answered = t.response.has_value();
    if (!s.answered) {
      if (!t.send_error.empty()) s.error = "cannot send: " + t.send_error;
      continue;
    }
    s.rtt_ms = t.rtt_ms;
    s.mapped = mapped_of(*t.response);
    s.other = address_of(*t.response, kAttrOtherAddress, false);
    if (!s.other) s.other = address_of(*t.response, kAttrChangedAddress, false);
    // An OTHER-ADDRESS that is the server's own address, or differs from it in only one of IP and port,
    // cannot drive the tests.
    if (s.other && (s.other->family() != s.address->family() || s.other->same_ip(*s.address) ||
                    s.other->port() == s.address->port()))
      s.other.reset();
  }
  for (size_t i = 0; i < r.turn.size(); ++i)
    if (turn_tx[i]) r.turn[i].on_result(*turn_tx[i]);

  // Round 2: RFC 5780 against the first server that does it; the TURN servers' next steps.
  round.clear();
  Rfc5780Tests rfc;
  const StunProbe* rfc_server = nullptr;
  for (const StunProbe& s : r.stun)
    if (s.answered && s.mapped && s.other) {
      rfc_server = &s;
      break;
    }
  if (rfc_server) {
    UdpProbeSocket* primary = main_socket[rfc_server->address->family() == AF_INET6].get();
    SockAddr alt_primary_port = *rfc_server->other;
    alt_primary_port.set_port(rfc_server->address->port());
    rfc.test2 = std::make_unique<Transaction>(primary, alt_primary_port, binding_request());
    rfc.test3 = std::make_unique<Transaction>(primary, *rfc_server->other, binding_request());
    rfc.filter_socket = std::make_unique<UdpProbeSocket>();
    std::string ignored;
    if (rfc.filter_socket->open(rfc_server->address->family(), bind_address(rfc_server->address->family()),
                                &ignored)) {
      rfc.control =
          std::make_unique<Transaction>(rfc.filter_socket.get(), *rfc_server->address, binding_request());
      rfc.change_both = std::make_unique<Transaction>(rfc.filter_socket.get(), *rfc_server->address,
                                                      binding_request(kChangeIp | kChangePort));
      rfc.change_port = std::make_unique<Transaction>(rfc.filter_socket.get(), *rfc_server->address,
                                                      binding_request(kChangePort));
      round.insert(round.end(), {rfc.control.get(), rfc.change_both.get(), rfc.change_port.get()});
    }
    round.insert(round.end(), {rfc.test2.get(), rfc.test3.get()});
  }
  add_turn_steps();
  while (!round.empty() && Clock::now() < deadline) {
    run_transactions(round, deadline);
    for (size_t i = 0; i < r.turn.size(); ++i)
      if (turn_tx[i]) r.turn[i].on_result(*turn_tx[i]);
    round.clear();
    add_turn_steps();  // further TURN steps (a stale nonce, the Refresh) until every server is done
  }
  for (TurnProbe& t : r.turn)
    if (t.step != TurnProbe::Step::kDone && t.error.empty() && t.reachable)
      t.error = "out of time (--timeout)";

  // Findings.
  bool udp_answer = false, udp_tried = false;
  for (size_t i = 0; i < r.stun.size(); ++i) {
    udp_tried = udp_tried || bindings[i];
    udp_answer = udp_answer || r.stun[i].answered;
  }
  for (const TurnProbe& t : r.turn) {
    udp_tried = udp_tried || t.socket;
    udp_answer = udp_answer || t.reachable;
  }
  if (udp_tried) r.udp = udp_answer;
  for (const StunProbe& s : r.stun)
    if (s.mapped && !r.mapped) r.mapped = s.mapped;
  for (const TurnProbe& t : r.turn)  // without STUN, what a TURN server saw (from another socket)
    if (t.mapped && !r.mapped) r.mapped = t.mapped;
  std::vector<SockAddr> locals;
  for (const LocalAddress& l : local_addresses(""))
    locals.push_back(l.address);
  for (const LocalAddress& l : local_addresses("lo"))
    locals.push_back(l.address);
  if (rfc_server) {
    judge_mapping(r, *rfc_server, rfc, locals,
                  main_socket[rfc_server->address->family() == AF_INET6]->local());
    if (rfc.control) judge_filtering(r, *rfc_server, rfc);
  }
  // Without RFC 5780: compare what the STUN servers of the first family saw from the main socket.
  if (r.mapping == "unknown" && r.mapped) {
    std::vector<const StunProbe*> seen;
    for (const StunProbe& s : r.stun)
      if (s.mapped && s.mapped->family() == r.mapped->family()) seen.push_back(&s);
    if (!seen.empty()) {
      const SockAddr& m = *seen.front()->mapped;
      const UdpProbeSocket* primary = main_socket[m.family() == AF_INET6].get();
      const bool local =
          std::any_of(locals.begin(), locals.end(), [&](const SockAddr& a) { return a.same_ip(m); }) &&
          m.port() == primary->local().port();
      if (local) {
        r.mapping = "none";
        r.mapping_how.clear();
      } else if (seen.size() >= 2) {
        const bool same =
            std::all_of(seen.begin(), seen.end(), [&](const StunProbe* s) { return *s->mapped == m; });
        r.mapping_how =
            "compared across " + std::to_string(seen.size()) + " STUN servers, none does RFC 5780";
        if (same)
          r.mapping = "endpoint-independent";
        else
          r.mapping_varies = true;
      } else {
        r.mapping_how = "one STUN server answered and it does not do RFC 5780: give two, or one with two IPs";
      }
    }
  }
  if (r.filtering == "unknown" && r.mapped && !rfc_server)
    r.filtering_how = "needs a STUN server that does RFC 5780 (OTHER-ADDRESS)";
  if (r.udp && !*r.udp) {
    r.mapping_how = r.filtering_how = "UDP blocked";
  }

  if (opt.json)
    print_json(r);
  else
    print_text(r);
  if (left_threads) {  // a resolver thread may still be inside getaddrinfo(): do not run exit handlers
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(kOk);
  }
  return kOk;
}
