#include "mdns_engine.hpp"

#include "lan_interfaces.hpp"

#include <algorithm>
#include <cstring>

namespace peerlink::lan {
namespace {

using namespace std::chrono_literals;

constexpr auto kMulticastAnswerInterval = 1s;  // RFC 6762 §6
constexpr auto kUnicastAnswerInterval = 1s;    // per source
constexpr size_t kMaxRateLimited = 1024;       // sources remembered for the unicast rate limit
constexpr size_t kMaxSerials = 4096;           // keys whose newest serial is remembered

bool same_announcement(const Announcement& a, const Announcement& b) {
  return a.display_name == b.display_name && a.port == b.port && a.aliases == b.aliases;
}

}  // namespace

MdnsEngine::MdnsEngine(EngineConfig config) : config_(std::move(config)), serial_(config_.first_serial) {}

std::optional<dns::Message> MdnsEngine::signed_records(const Interface& i, bool goodbye) const {
  Announcement a = config_.self;
  a.ipv4 = config_.ipv4 ? i.ipv4 : std::vector<in_addr>{};
  a.ipv6 = config_.ipv6 ? i.ipv6 : std::vector<in6_addr>{};
  a.serial = serial_;
  return announce(config_.service, a, config_.private_key, config_.network_key, goodbye);
}

void MdnsEngine::sign(Interface& i) {
  auto bytes = [](const std::optional<dns::Message>& m) {
    std::optional<std::vector<uint8_t>> wire = m ? dns::serialize(*m) : std::nullopt;
    return wire ? *wire : std::vector<uint8_t>{};
  };
  const std::optional<dns::Message> records = signed_records(i, false);
  i.wire = bytes(records);
  // The queries carry our own records: whoever hears one learns us from it.
  for (bool unicast_response : {true, false}) {
    std::optional<dns::Message> q(std::in_place);
    q->questions.push_back(dns::Question{config_.service, static_cast<uint16_t>(dns::Type::kPtr),
                                         dns::kClassIn, unicast_response});
    if (records) {
      for (const std::vector<dns::Record>* section : {&records->answers, &records->additionals})
        q->additionals.insert(q->additionals.end(), section->begin(), section->end());
    }
    (unicast_response ? i.query_qu : i.query_qm) = bytes(q);
  }
}

void MdnsEngine::multicast(int index, const std::vector<uint8_t>& bytes, bool query) {
  if (bytes.empty()) return;
  for (int family : {AF_INET, AF_INET6}) {
    if ((family == AF_INET && !config_.ipv4) || (family == AF_INET6 && !config_.ipv6)) continue;
    Outgoing o;
    o.family = family;
    o.interface_index = index;
    o.query = query;
    o.bytes = bytes;
    outgoing_.push_back(std::move(o));
    ++counters_.multicast_sent;
  }
}

void MdnsEngine::interface_up(int index, const std::vector<in_addr>& ipv4, const std::vector<in6_addr>& ipv6,
                              Clock::time_point now) {
  const bool known = interfaces_.count(index) != 0;
  Interface& i = interfaces_[index];
  if (known && same_addresses(i.ipv4, ipv4) && same_addresses(i.ipv6, ipv6)) return;
  i.ipv4 = ipv4;
  i.ipv6 = ipv6;
  if (known) {
    // A change is a newer announcement, on every interface: a receiver on two of our links must not take
    // the other link's records for a replay.
    ++serial_;
    for (auto& [other, j] : interfaces_)
      sign(j);
  } else {
    sign(i);
  }
  if (said_goodbye_) return;
  if (!known) i.queries = {{now, true}, {now + 1s, false}, {now + 2s, false}, {now + 4s, false}};
  i.announcements = {now, now + 1s};
  i.refresh = now + std::chrono::milliseconds(uint64_t{config_.self.ttl} * 800);
  tick(now);
}

void MdnsEngine::interface_down(int index) {
  interfaces_.erase(index);
  std::vector<Key> keys;
  for (const auto& [key, peer] : peers_)
    keys.push_back(key);
  for (const Key& key : keys)
    drop_sighting(key, index);
}

void MdnsEngine::tick(Clock::time_point now) {
  for (auto& [index, i] : interfaces_) {
    if (said_goodbye_) break;
    for (auto it = i.queries.begin(); it != i.queries.end();) {
      if (it->first > now) {
        ++it;
        continue;
      }
      multicast(index, it->second ? i.query_qu : i.query_qm, it->second);  // QU from our own port
      it = i.queries.erase(it);
    }
    for (auto it = i.announcements.begin(); it != i.announcements.end();) {
      if (*it > now) {
        ++it;
        continue;
      }
      multicast(index, i.wire);
      it = i.announcements.erase(it);
    }
    if (now >= i.refresh) {
      multicast(index, i.wire);
      i.refresh = now + std::chrono::milliseconds(uint64_t{config_.self.ttl} * 800);
    }
  }
  std::vector<std::pair<Key, int>> expired;
  std::vector<int> refresh;  // interfaces to ask again on
  for (auto& [key, peer] : peers_) {
    for (PeerSighting& s : peer.interfaces) {
      if (s.expires <= now) {
        expired.emplace_back(key, s.interface_index);
      } else if (refresh_time(s) <= now) {
        ++s.refresh_queries;
        refresh.push_back(s.interface_index);
      }
    }
  }
  for (int index : refresh) {
    auto i = interfaces_.find(index);
    if (said_goodbye_ || i == interfaces_.end() || now - i->second.last_refresh_query < 1s) continue;
    i->second.last_refresh_query = now;
    multicast(index, i->second.query_qm);
  }
  for (const auto& [key, index] : expired)
    drop_sighting(key, index);
  for (auto it = unicast_answered_.begin(); it != unicast_answered_.end();)
    it = now - it->second >= kUnicastAnswerInterval ? unicast_answered_.erase(it) : std::next(it);
}

MdnsEngine::Clock::time_point MdnsEngine::next_timer() const {
  Clock::time_point next = Clock::time_point::max();
  for (const auto& [index, i] : interfaces_) {
    if (said_goodbye_) break;
    for (const auto& q : i.queries)
      next = std::min(next, q.first);
    for (const auto& a : i.announcements)
      next = std::min(next, a);
    next = std::min(next, i.refresh);
  }
  for (const auto& [key, peer] : peers_)
    for (const PeerSighting& s : peer.interfaces)
      next = std::min({next, s.expires, refresh_time(s)});
  return next;
}

MdnsEngine::Clock::time_point MdnsEngine::refresh_time(const PeerSighting& s) {
  if (s.refresh_queries >= 2) return Clock::time_point::max();
  return s.last_seen + (s.expires - s.last_seen) * (s.refresh_queries == 0 ? 85 : 92) / 100;
}

void MdnsEngine::goodbye() {
  if (said_goodbye_) return;
  said_goodbye_ = true;
  ++serial_;
  for (auto& [index, i] : interfaces_) {
    if (std::optional<dns::Message> bye = signed_records(i, true))
      if (std::optional<std::vector<uint8_t>> wire = dns::serialize(*bye)) multicast(index, *wire);
    i.queries.clear();
    i.announcements.clear();
  }
}

void MdnsEngine::receive(const Datagram& d, Clock::time_point now) {
  ++counters_.datagrams;
  auto served = interfaces_.find(d.interface_index);
  if (served == interfaces_.end()) return;
  if (d.hop_limit != 255) {  // RFC 6762 §11: only what was sent on this link
    ++counters_.off_link;
    return;
  }
  const std::string source = d.source.str();
  if (!sources_.take(d.source.host(), now)) {  // per address: another port is no other budget
    ++counters_.source_rate_limited;
    return;
  }
  std::optional<dns::Message> m = dns::parse(d.bytes.data(), d.bytes.size());
  if (!m || m->opcode != 0 || m->rcode != 0) {
    ++counters_.malformed;
    return;
  }
  const bool ours = learn(*m, d, now);
  if (m->response || ours) return;  // our own query, looped back: not answered
  for (const dns::Question& q : m->questions) {
    if ((q.type == static_cast<uint16_t>(dns::Type::kPtr) ||
         q.type == static_cast<uint16_t>(dns::Type::kAny)) &&
        dns::same_name(q.name, config_.service)) {
      answer(served->second, d, source, now);
      return;
    }
  }
}

void MdnsEngine::answer(Interface& i, const Datagram& d, const std::string& source, Clock::time_point now) {
  if (said_goodbye_ || i.wire.empty()) return;
  const int index = d.interface_index;
  auto last = unicast_answered_.find(source);
  const bool unicast_allowed =
      d.source.port() != config_.mdns_port && i.wire.size() <= d.bytes.size() &&
      (last == unicast_answered_.end() || now - last->second >= kUnicastAnswerInterval);
  if (unicast_allowed) {
    if (unicast_answered_.size() >= kMaxRateLimited) unicast_answered_.clear();
    unicast_answered_[source] = now;
    Outgoing o;
    o.family = d.source.family();
    o.interface_index = index;
    o.multicast = false;
    o.to = d.source;
    o.bytes = i.wire;
    outgoing_.push_back(std::move(o));
    ++counters_.queries_answered_unicast;
    return;
  }
  const int f = d.source.family() == AF_INET ? 0 : 1;
  if (i.last_multicast_answer[f] != Clock::time_point{} &&
      now - i.last_multicast_answer[f] < kMulticastAnswerInterval) {
    ++counters_.answers_rate_limited;
    return;
  }
  i.last_multicast_answer[f] = now;
  Outgoing o;
  o.family = d.source.family();
  o.interface_index = index;
  o.bytes = i.wire;
  outgoing_.push_back(std::move(o));
  ++counters_.multicast_sent;
  ++counters_.queries_answered_multicast;
}

bool MdnsEngine::learn(const dns::Message& m, const Datagram& d, Clock::time_point now) {
  bool ours = false;
  for (Heard& h : read_announcements(config_.service, m, config_.network_key, &verified_)) {
    switch (h.verdict) {
      case Verdict::kMalformed:
        ++counters_.bad_records;
        continue;
      case Verdict::kBadSignature:
        ++counters_.bad_signature;
        continue;
      case Verdict::kWrongNetworkKey:
        ++counters_.wrong_network_key;
        continue;
      case Verdict::kOk:
        break;
    }
    const Announcement& a = h.announcement;
    if (a.key == config_.self.key) {  // our own, looped back
      ours = true;
      continue;
    }
    if (newest_serial_.size() >= kMaxSerials && !newest_serial_.count(a.key)) {
      for (auto it = newest_serial_.begin(); it != newest_serial_.end();)
        it = peers_.count(it->first) ? std::next(it) : newest_serial_.erase(it);
    }
    Newest& newest = newest_serial_[a.key];
    const bool same_serial = a.serial == newest.serial;
    // Older than the newest; or a version 2 copy of a version 1 record, which would move the addresses;
    // or a version 2 goodbye, which is the record's signed TXT with TTL 0 (a replay can be one), for a
    // serial other than the one known: it could otherwise end that key's records for good.
    if (a.serial < newest.serial || (h.version == 2 && same_serial && newest.version1) ||
        (h.version == 2 && h.goodbye && !same_serial)) {
      ++counters_.replayed;
      continue;
    }
    if (h.goodbye) {
      if (h.version == 1) newest = {a.serial, true};  // signed as a goodbye: its records stay replays
      drop_sighting(a.key, d.interface_index);
      continue;
    }
    newest = {a.serial, h.version == 1 || (same_serial && newest.version1)};
    auto found = peers_.find(a.key);
    const bool is_new = found == peers_.end();
    if (is_new && peers_.size() >= kMaxPeers) {
      ++counters_.peers_refused;
      continue;
    }
    DiscoveredPeer& peer = peers_[a.key];
    bool changed = !is_new && !same_announcement(peer.announcement, a);
    peer.announcement = a;
    auto s = std::find_if(peer.interfaces.begin(), peer.interfaces.end(),
                          [&](const PeerSighting& x) { return x.interface_index == d.interface_index; });
    if (s == peer.interfaces.end()) {
      peer.interfaces.push_back(PeerSighting{});
      s = std::prev(peer.interfaces.end());
      s->interface_index = d.interface_index;
      changed = true;
    } else if (!same_addresses(s->ipv4, a.ipv4) || !same_addresses(s->ipv6, a.ipv6)) {
      changed = true;
    }
    s->source = d.source;
    s->ipv4 = a.ipv4;
    s->ipv6 = a.ipv6;
    const Clock::time_point expires = now + std::chrono::seconds(a.ttl);
    // The same records again (a refresh, a query's copy) may extend the sighting, not shorten it: the TTL
    // is not signed, so a replayed copy could carry any. A newer serial says what it says.
    s->expires = !changed && same_serial ? std::max(s->expires, expires) : expires;
    s->last_seen = now;
    s->refresh_queries = 0;
    if (is_new || changed)
      events_.push_back(PeerEvent{is_new ? PeerEvent::kFound : PeerEvent::kUpdated, a.key, peer});
  }
  return ours;
}

void MdnsEngine::drop_sighting(const Key& key, int index) {
  auto p = peers_.find(key);
  if (p == peers_.end()) return;
  std::vector<PeerSighting>& v = p->second.interfaces;
  const size_t before = v.size();
  v.erase(
      std::remove_if(v.begin(), v.end(), [&](const PeerSighting& s) { return s.interface_index == index; }),
      v.end());
  if (v.size() == before) return;
  if (v.empty()) {
    events_.push_back(PeerEvent{PeerEvent::kLost, key, p->second});
    peers_.erase(p);
  } else {
    events_.push_back(PeerEvent{PeerEvent::kUpdated, key, p->second});
  }
}

std::vector<Outgoing> MdnsEngine::take_outgoing() {
  std::vector<Outgoing> out;
  out.swap(outgoing_);
  return out;
}

std::vector<PeerEvent> MdnsEngine::take_events() {
  std::vector<PeerEvent> out;
  out.swap(events_);
  return out;
}

}  // namespace peerlink::lan
