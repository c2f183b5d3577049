// The LAN beacon's own mDNS querier and responder for one service, without I/O: datagrams and time go in,
// datagrams to send and discovery events come out (the caller owns the sockets, mdns_socket.hpp, and the
// clock). Deterministic, so its timing rules are tested without waiting.
//
// What it does, per interface and address family:
//   - on interface_up: a query at once (QU, from the caller's own port: answers by unicast), repeated at 1,
//     2 and 4 s (QM, from port 5353: answers by multicast), each carrying this peer's own signed records as
//     additionals, so whoever hears the query learns this peer in the same packet; and two announcements,
//     at once and 1 s later (RFC 6762 §8.3);
//   - a peer not heard again by 85% of its records' TTL (one published through a system responder, which
//     answers queries but does not re-announce) is asked for again (QM), and again at 92% (RFC 6762 §5.2);
//   - re-announcements at 80% of the TTL (the records never lapse while running: 120 s TTL, so ≤ 2 packets
//     a minute per interface and family), a goodbye (TTL 0) on goodbye();
//   - answers a query for the service: by unicast to the querier when it asked from a port of its own (a
//     unicast datagram to port 5353, which several responders may share, reaches only one of them), the
//     answer is no larger than the query was (nobody gets more bytes than they sent) and the source has not
//     had one in the last second; else by multicast, at most once a second per interface (RFC 6762 §6);
//     queries not for the service get nothing;
//   - believes only on-link datagrams (hop limit 255, RFC 6762 §11) whose records verify
//     (beacon_records.hpp); a serial older than the newest seen from that key is a replay and is ignored,
//     and so is a version 2 record of the serial a version 1 record had (its addresses are not signed); a
//     record of the newest serial heard again cannot shorten its peer's expiry (the TTL is not signed),
//     and a version 2 goodbye (not signed as one) is taken only at the newest serial and does not raise it;
//   - takes at most kSourceRate datagrams a second from one source address, whatever its port (a burst of
//     kSourceBurst), and at most kMaxPeers peers: a flood costs bounded CPU (signature checks) and memory;
//   - forgets a peer's interface when its records expire or on its goodbye; a peer is lost when it is
//     on no interface any more.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "beacon_records.hpp"
#include "mdns_socket.hpp"
#include "source_budget.hpp"

namespace peerlink::lan {

struct EngineConfig {
  dns::Name service;                 // service_name("...")
  Announcement self;                 // key, display name, port, aliases, ttl; addresses are per interface
  Key private_key{};                 // the X25519 private key of self.key
  std::vector<uint8_t> network_key;  // empty: none
  bool ipv4 = true, ipv6 = true;
  uint64_t first_serial = 0;       // e.g. milliseconds since the epoch at start
  uint16_t mdns_port = kMdnsPort;  // the shared port (a query from another port is from a querier's own)
};

struct Outgoing {
  int family = 0;           // AF_INET or AF_INET6
  int interface_index = 0;  // for multicast
  bool multicast = true;
  // One of our queries: best sent from a port of our own rather than 5353. Unicast answers then come back
  // to us alone: a unicast datagram to a port 5353 that several responders share reaches only one of them.
  bool query = false;
  SocketAddress to;  // for unicast
  std::vector<uint8_t> bytes;
};

struct PeerSighting {
  int interface_index = 0;
  SocketAddress source;        // where its last datagram came from
  std::vector<in_addr> ipv4;   // its addresses on this link, as it announced them
  std::vector<in6_addr> ipv6;  // (link-local ones are reached with scope id = interface_index)
  std::chrono::steady_clock::time_point last_seen{}, expires{};
  uint8_t refresh_queries = 0;  // asked for since last heard (at 85% and 92% of the TTL)
};

struct DiscoveredPeer {
  Announcement announcement;
  std::vector<PeerSighting> interfaces;
};

struct PeerEvent {
  enum Kind { kFound, kUpdated, kLost } kind = kFound;
  Key key{};
  DiscoveredPeer peer;  // as it is after the event (as it was, for kLost)
};

struct EngineCounters {
  uint64_t datagrams = 0;
  uint64_t malformed = 0;          // not a DNS message
  uint64_t off_link = 0;           // hop limit not 255
  uint64_t bad_signature = 0;      // forged, unsigned, altered
  uint64_t wrong_network_key = 0;  // strangers, or a closed group we are not in
  uint64_t bad_records = 0;        // our service's records, badly formed
  uint64_t replayed = 0;           // older serial than one seen
  uint64_t queries_answered_unicast = 0;
  uint64_t queries_answered_multicast = 0;
  uint64_t answers_rate_limited = 0;  // nothing sent: multicast answered less than a second ago
  uint64_t multicast_sent = 0;
  uint64_t source_rate_limited = 0;  // datagrams dropped: their source sent more than kSourceRate a second
  uint64_t peers_refused = 0;        // new peers not taken: kMaxPeers are known already
};

inline constexpr size_t kMaxPeers = 1024;    // peers remembered at once
inline constexpr double kSourceRate = 20;    // datagrams a second one source may send us (sustained) ...
inline constexpr double kSourceBurst = 60;   // ... and at once
inline constexpr size_t kMaxSources = 1024;  // source addresses whose budget is remembered

class MdnsEngine {
 public:
  using Clock = std::chrono::steady_clock;

  explicit MdnsEngine(EngineConfig config);

  // Starts serving an interface with this host's addresses on it (again: new addresses, re-announced).
  void interface_up(int index, const std::vector<in_addr>& ipv4, const std::vector<in6_addr>& ipv6,
                    Clock::time_point now);
  // The interface is gone: its peers' sightings go (lost events for peers seen nowhere else).
  void interface_down(int index);
  void receive(const Datagram& d, Clock::time_point now);
  // Timers: queries, announcements, refreshes, expiry.
  void tick(Clock::time_point now);
  Clock::time_point next_timer() const;
  // Goodbye on every interface (and stops announcing).
  void goodbye();

  std::vector<Outgoing> take_outgoing();
  std::vector<PeerEvent> take_events();
  const std::map<Key, DiscoveredPeer>& peers() const { return peers_; }
  const EngineCounters& counters() const { return counters_; }

 private:
  struct Interface {
    std::vector<in_addr> ipv4;
    std::vector<in6_addr> ipv6;
    std::vector<uint8_t> wire;                                // our signed announcement, serialized
    std::vector<uint8_t> query_qu, query_qm;                  // our queries (they carry the announcement)
    std::vector<std::pair<Clock::time_point, bool>> queries;  // pending: when, and whether QU
    std::vector<Clock::time_point> announcements;             // pending
    Clock::time_point refresh{};
    Clock::time_point last_multicast_answer[2]{};  // per family
    Clock::time_point last_refresh_query{};
  };
  // When a sighting is next asked for (max: never again).
  static Clock::time_point refresh_time(const PeerSighting& s);
  // Our records for an interface, signed with the current serial (a goodbye: TTL 0).
  std::optional<dns::Message> signed_records(const Interface& i, bool goodbye) const;
  // Signs the interface's announcement and makes its queries.
  void sign(Interface& i);
  void multicast(int index, const std::vector<uint8_t>& bytes, bool query = false);
  // Answers a query `d` from `source` (its address as text) on interface `i`.
  void answer(Interface& i, const Datagram& d, const std::string& source, Clock::time_point now);
  // Takes in the peers a message announces; true if it carries our own records (it is ours, looped back).
  bool learn(const dns::Message& m, const Datagram& d, Clock::time_point now);
  void drop_sighting(const Key& key, int index);

  EngineConfig config_;
  uint64_t serial_;
  bool said_goodbye_ = false;
  std::map<int, Interface> interfaces_;
  std::map<Key, DiscoveredPeer> peers_;
  VerifiedCache verified_;  // records whose signature was checked already
  // The newest serial heard per key, also of peers that left (their old records stay replays), and whether
  // a version 1 record (addresses signed) had it: a version 2 one of that serial (addresses unsigned, a
  // downgraded copy of it, perhaps) does not move the peer's addresses then.
  struct Newest {
    uint64_t serial = 0;
    bool version1 = false;
  };
  std::map<Key, Newest> newest_serial_;
  std::map<std::string, Clock::time_point> unicast_answered_;     // source -> last unicast answer
  SourceBudget sources_{kSourceRate, kSourceBurst, kMaxSources};  // per source address: its datagram budget
  std::vector<Outgoing> outgoing_;
  std::vector<PeerEvent> events_;
  EngineCounters counters_;
};

}  // namespace peerlink::lan
