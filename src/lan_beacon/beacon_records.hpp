// What a peer announces on one interface, as DNS-SD records (RFC 6763), and the checks a record set must
// pass before anyone believes it. Pure code, no I/O.
//
//   _<service>._udp.local.                PTR  <instance>._<service>._udp.local.
//   <instance>._<service>._udp.local.     SRV  0 0 <port> <host>.local.
//   <instance>._<service>._udp.local.     TXT  "v=1" "k=<32-byte X25519 key>" "q=<serial>" "n=<display name>"
//                                              "a=<alias PeerId>"... ["m=<network key MAC>"] "s=<signature>"
//                                              ["pm=<MAC>"] "p=<signature>" (version 2's, below)
//   <host>.local.                         A / AAAA  the interface's addresses
//
// <instance> is "<display name> [<first 9 characters of the fingerprint>]" (what avahi-browse shows),
// <host> the fingerprint with its dashes ("pl1-abcd-..."). The signature (identity_signature.hpp) is by the
// key in "k" over everything else that is announced: service, instance, host, port, serial, name, aliases
// and addresses, so a record cannot be altered, moved to another address or re-signed by another key. The
// serial (milliseconds since the epoch at signing) only grows: a receiver ignores one older than the
// newest it has seen from that key (a replay; the receiver keeps that). A goodbye (TTL 0) is signed as
// such, so a genuine record cannot be replayed as one. With a network key, "m" is an HMAC-SHA-256 (first 16
// bytes) under it over the same bytes: without the key no record is accepted, and ours are ignored by
// strangers.
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dns_message.hpp"
#include "peerlink/identity.hpp"

namespace peerlink::lan {

using Key = PublicKey;

struct Announcement {
  Key key{};  // the peer's X25519 identity public key
  std::string display_name;
  uint16_t port = 0;  // where its rendezvous socket listens
  uint64_t serial = 0;
  std::vector<std::string> aliases;  // other PeerIds it answers to ("xmpp:bob@example.org")
  std::vector<in_addr> ipv4;
  std::vector<in6_addr> ipv6;
  uint32_t ttl = 120;  // of every record: a peer that vanishes without a goodbye is forgotten this soon
};

inline constexpr size_t kMaxDisplayName = 40;
inline constexpr size_t kMaxAliases = 4;
// A display name as a beacon announces one (LanOptions::display_name): UTF-8 without control characters.
// A record whose name is not is malformed: names reach logs and users' screens.
bool valid_display_text(const std::string& s);
// The TTLs a beacon announces (LanOptions::ttl_seconds); a record heard with a TTL outside them, other than
// a goodbye's 0, is taken as the nearest bound. The TTL is not signed: a replayed record with TTL 1 would
// otherwise lose its peer at once, and one with 2^32-1 keep it for 136 years.
inline constexpr uint32_t kMinTtlSeconds = 10;
inline constexpr uint32_t kMaxTtlSeconds = 4500;
// Instances of the service read from one message; more are ignored (each costs a signature check).
inline constexpr size_t kMaxInstancesPerMessage = 8;

// "_<service>._udp.local"; the service name is 1-15 letters, digits and hyphens (RFC 6335 §5.1).
std::optional<dns::Name> service_name(const std::string& service);

// The records (answers: PTR; additionals: SRV, TXT, A, AAAA), signed with `private_key` (the X25519
// private key whose public half is a.key) and, with a network key, MACed. nullopt if a field cannot be
// written (a display name over kMaxDisplayName bytes, more than kMaxAliases, an empty service name).
// With goodbye, every TTL is 0 (RFC 6762 §10.1).
std::optional<dns::Message> announce(const dns::Name& service, const Announcement& a, const Key& private_key,
                                     const std::vector<uint8_t>& network_key, bool goodbye = false);

enum class Verdict {
  kOk,
  kMalformed,        // missing or badly formed records or fields
  kBadSignature,     // unsigned, or the signature does not verify under the key it names
  kWrongNetworkKey,  // no MAC, or one under another network key (only when we have one)
};

struct Heard {
  Verdict verdict = Verdict::kMalformed;
  Announcement announcement;  // filled when kOk
  bool goodbye = false;       // every record had TTL 0
  int version = 0;            // 1: everything signed; 2: a system responder's, host and addresses unsigned
  std::string instance;
};

// The last records verified per key (the signed bytes and the signature): the same records heard again (a
// query's and an answer's copies, refreshes) are not verified again. Bounded.
struct VerifiedCache {
  std::map<Key, std::vector<uint8_t>> last;
};

// Every announcement of `service` in a response, checked, once per instance and at most
// kMaxInstancesPerMessage of them. Records of other services are skipped. Version 2 records (a system
// responder's, below) are read too: their host name and addresses are not signed, and their goodbye is the
// announcement's own signed TXT with TTL 0 (the responder removing it), so a replayed genuine record can
// be one: the engine takes such a goodbye only at the serial it knows (mdns_engine.hpp).
std::vector<Heard> read_announcements(const dns::Name& service, const dns::Message& response,
                                      const std::vector<uint8_t>& network_key,
                                      VerifiedCache* cache = nullptr);

}  // namespace peerlink::lan

namespace peerlink::lan {

// Through a system responder (avahi-daemon), which owns the instance name (it may rename it on a
// collision), the host name and the addresses, a peer publishes only the TXT strings, version 2 ("v=2"):
// signed over the key, service, port, serial, display name and aliases. The addresses a resolver gives are
// not signed: they only say where to send rendezvous datagrams, which are authenticated themselves.
std::string instance_name(const Announcement& a);  // "<display name> [<9 characters of fingerprint>]"
std::optional<std::vector<std::string>> portable_txt(const dns::Name& service, const Announcement& a,
                                                     const Key& private_key,
                                                     const std::vector<uint8_t>& network_key);
// Checks TXT strings a resolver gave for an instance of `service` on `port`: version 2 ones, and version 1
// ones (the beacon's own responder's) by the version 2 signature and MAC they also carry ("p", "pm").
Heard read_portable(const dns::Name& service, uint16_t port, const std::vector<std::string>& txt,
                    const std::vector<uint8_t>& network_key, VerifiedCache* cache = nullptr);

}  // namespace peerlink::lan
