#include "transport/protocol/endpoint.hpp"

#include <algorithm>
#include <unordered_set>

#include "transport/crypto/hash.hpp"
#include "transport/crypto/x25519.hpp"
#include "transport/protocol/handshake_context.hpp"
#include "transport/protocol/packet.hpp"

namespace peerlink::protocol {

namespace {
constexpr size_t kMaxStatelessQueue = 256;
constexpr size_t kCookieMacSize = kCookieSize - 4;

uint32_t seconds_of(Instant t) {
  return uint32_t(std::chrono::duration_cast<seconds>(t.time_since_epoch()).count());
}
}  // namespace

Endpoint::Endpoint(const EndpointConfig& config, const Identity& identity, crypto::RandomSource& rng)
    : config_(config), rng_(rng) {
  identity_.private_key = identity.private_key();
  identity_.public_key = identity.public_key();
  identity_object_ = crypto::X25519Local(identity_.private_key);
  rng_.fill(cookie_secret_.data(), cookie_secret_.size());
}

Endpoint::~Endpoint() {
  for (auto& [key, dh] : static_dh_)
    crypto::wipe(dh);
  if (spare_ephemeral_) crypto::wipe(*spare_ephemeral_);
}

void Endpoint::give_ephemeral(const crypto::X25519KeyPair& key_pair) {
  if (spare_ephemeral_) crypto::wipe(*spare_ephemeral_);
  spare_ephemeral_ = key_pair;
}

std::optional<crypto::X25519KeyPair> Endpoint::take_ephemeral() {
  keep_spare_ = true;
  std::optional<crypto::X25519KeyPair> kp;
  kp.swap(spare_ephemeral_);
  return kp;
}

std::optional<crypto::Key32> Endpoint::static_dh(const PublicKey& peer_key) {
  auto it = static_dh_.find(peer_key);
  if (it != static_dh_.end()) return it->second;
  crypto::Key32 dh;
  if (!crypto::x25519(identity_object_, crypto::X25519Remote(peer_key), dh))
    return std::nullopt;  // the handshake fails
  if (static_dh_.size() >= kStaticDhCacheSize) {
    // Full: forget one at random (an order of use would cost more bookkeeping than it saves).
    auto victim = std::next(static_dh_.begin(), long(rng_.next_u64() % static_dh_.size()));
    crypto::wipe(victim->second);
    static_dh_.erase(victim);
  }
  const auto added = static_dh_.emplace(peer_key, dh).first;
  crypto::wipe(dh);
  return added->second;
}

Endpoint::Slot* Endpoint::find(ConnectionId id) {
  if (found_ && found_id_ == id) return found_;
  auto it = slots_.find(id);
  if (it == slots_.end()) return nullptr;
  found_id_ = id;
  found_ = &it->second;
  return found_;
}

const Endpoint::Slot* Endpoint::find(ConnectionId id) const {
  if (found_ && found_id_ == id) return found_;
  auto it = slots_.find(id);
  return it == slots_.end() ? nullptr : &it->second;
}

ConnectionId Endpoint::new_connection_id() {
  for (;;) {
    ConnectionId id = rng_.next_u32();
    if (id != 0 && slots_.find(id) == slots_.end() && !reserved_.count(id)) return id;
  }
}

ConnectionId Endpoint::reserve_id() {
  ConnectionId id = new_connection_id();
  reserved_.insert(id);
  return id;
}

void Endpoint::touch(ConnectionId id, Slot& s) {
  Connection& c = *s.conn;
  if (c.finished()) {
    if (s.deadline != kNever) timers_.erase({s.deadline, id});
    if (s.has_initiation_key) initiations_.erase(s.initiation_key);
    if (found_id_ == id) found_ = nullptr;
    slots_.erase(id);  // ready_/readable_ entries for it are skipped when met
    return;
  }
  if (s.unproven && c.address_validated()) {
    s.unproven = false;
    unproven_tokens_ = std::min(unproven_tokens_ + 1, double(config_.unproven_initiations_per_second));
  }
  if (c.wants_transmit() && !s.ready) {
    s.ready = true;
    ready_.push_back(id);
  }
  if (c.pending_messages() > 0 && !s.readable) {
    s.readable = true;
    std::deque<ConnectionId>& queue = readable_[s.group];
    queue.push_back(id);
    // Entries of connections that have gone stay until a receive_group meets them; an application that
    // only reads connection by connection never does, so drop them before they outnumber the living.
    if (queue.size() > 2 * slots_.size() + 64) compact_readable(s.group);
  }
  // Timers are re-armed lazily: a deadline that moved later (the probe timer moves with every packet sent)
  // keeps its earlier entry, which fires harmlessly and re-arms then. Only an earlier deadline costs a
  // set update here, which keeps the per-packet cost off the tree.
  Instant d = c.next_deadline();
  if (d < s.deadline) {
    if (s.deadline != kNever) timers_.erase({s.deadline, id});
    timers_.insert({d, id});
    s.deadline = d;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Network side

void Endpoint::handle_datagram(Instant now, const PathAddress& from, uint8_t* data, size_t len,
                               bool accept_initiations) {
  ++counters_.datagrams_received;
  PacketKind kind = peek_packet_kind(data, len);
  auto route = [&](uint32_t receiver_id, bool check_source) -> Slot* {
    Slot* s = find(receiver_id);
    if (!s) {
      ++counters_.unknown_connection;
      return nullptr;
    }
    if (check_source && s->conn->peer_address() != from) {
      ++counters_.wrong_source;
      return nullptr;
    }
    return s;
  };
  switch (kind) {
    case PacketKind::kData: {
      DataHeader h;
      if (!decode_data_header(data, len, h)) break;
      if (Slot* s = route(h.receiver_id, false)) {
        size_t pending = s->conn->pending_messages();
        s->conn->on_data_packet(now, from, h, data, len);
        if (s->conn->pending_messages() > pending)
          messages_delivered_ += s->conn->pending_messages() - pending;
        touch(h.receiver_id, *s);
      }
      return;
    }
    case PacketKind::kInitiation:
      handle_initiation(now, from, data, len, accept_initiations);
      return;
    case PacketKind::kResponse: {
      ResponsePacket p;
      if (!decode_response(data, len, p)) break;
      if (Slot* s = route(p.receiver_id, true)) {
        s->conn->on_response(now, p);
        touch(p.receiver_id, *s);
      }
      return;
    }
    case PacketKind::kFinish: {
      FinishPacket p;
      if (!decode_finish(data, len, p)) break;
      if (Slot* s = route(p.receiver_id, true)) {
        if (s->conn->peer_id() != p.sender_id) {
          ++counters_.wrong_source;
          return;
        }
        s->conn->on_finish(now, p);
        touch(p.receiver_id, *s);
      }
      return;
    }
    case PacketKind::kRetry: {
      RetryPacket p;
      if (!decode_retry(data, len, p)) break;
      if (Slot* s = route(p.receiver_id, true)) {
        s->conn->on_retry(now, p);
        touch(p.receiver_id, *s);
      }
      return;
    }
    case PacketKind::kReject: {
      RejectPacket p;
      if (!decode_reject(data, len, p)) break;
      if (Slot* s = route(p.receiver_id, true)) {
        s->conn->on_reject(now, p);
        touch(p.receiver_id, *s);
      }
      return;
    }
    case PacketKind::kInvalid:
      break;
  }
  ++counters_.invalid_datagrams;
}

void Endpoint::handle_initiation(Instant now, const PathAddress& from, const uint8_t* data, size_t len,
                                 bool accepting) {
  InitiationPacket p;
  if (!decode_initiation(data, len, p)) {
    ++counters_.invalid_datagrams;
    return;
  }
  if (p.version != kProtocolVersion) {
    queue_reject(from, p.sender_id, EndReason::kRemoteBadProtocolVersion);
    return;
  }
  InitiationKey key{from, p.sender_id};
  if (auto it = initiations_.find(key); it != initiations_.end()) {
    // A retransmission: the Response was lost or is slow.
    if (Slot* s = find(it->second)) {
      s->conn->on_initiation_repeat(now);
      touch(it->second, *s);
    }
    return;
  }
  auto expected = expected_.find(from);
  bool proven = expected != expected_.end();
  if (!proven && (!config_.accept_incoming || !accepting)) {
    queue_reject(from, p.sender_id, EndReason::kRemoteRejected);
    return;
  }
  if (!proven && (p.cookie || wants_cookie(now))) {
    if (!p.cookie) {
      // Prove the address before keeping any state for it (QUIC Retry, WireGuard cookies).
      std::vector<uint8_t> pkt(64);
      RetryPacket r;
      r.receiver_id = p.sender_id;
      uint8_t cookie[kCookieSize];
      make_cookie(now, from, p.sender_id, cookie);
      r.cookie = cookie;
      pkt.resize(encode_retry(r, pkt.data(), pkt.size()));
      ++counters_.retries_sent;
      queue_stateless(from, std::move(pkt));
      return;
    }
    if (!check_cookie(now, from, p.sender_id, p.cookie)) {
      ++counters_.bad_cookies;
      return;
    }
  }
  if (slots_.size() >= config_.max_connections) {
    queue_reject(from, p.sender_id, EndReason::kRemoteBusy);
    return;
  }
  crypto::HandshakeConfig hc;
  hc.pattern = p.pattern == HandshakePattern::kIK ? crypto::NoisePattern::kIK : crypto::NoisePattern::kXX;
  hc.cipher = to_aead(p.suite);
  hc.initiator = false;
  hc.prologue = handshake_prologue(p.suite, p.pattern);
  hc.local_static = identity_;
  hc.local_static_object = identity_object_;
  auto hs = std::make_unique<HandshakeContext>(hc, rng_);
  hs->pattern = p.pattern;
  hs->suite = p.suite;
  crypto::HandshakeError err = hs->noise->read_message(p.noise, p.noise_length, hs->peer_params);
  if (err != crypto::HandshakeError::kNone) {
    ++counters_.handshake_failures;
    // In IK the initiator encrypted its static key to the key it expects us to hold: failure to decrypt
    // means it expects someone else.
    if (p.pattern == HandshakePattern::kIK && err == crypto::HandshakeError::kDecryptFailed) {
      queue_reject(from, p.sender_id, EndReason::kRemoteKeyMismatch);
    }
    return;
  }
  // Only an Initiation that read correctly gets here, so garbage cannot use up the spare ephemeral key.
  if (std::optional<crypto::X25519KeyPair> spare = take_ephemeral()) {
    hs->noise->use_ephemeral(*spare);
    crypto::wipe(*spare);
  }
  ConnectionId id = proven ? expected->second : new_connection_id();
  if (proven) {
    expected_.erase(expected);
    reserved_.erase(id);
  }
  auto conn = std::make_unique<Connection>(id, from, config_.connection, std::move(hs), rng_, &events_, now);
  conn->set_peer_id(p.sender_id);
  // A cookie (checked above) proves the address as well as a connect() of ours does; without one, the 3x
  // limit applies.
  const bool unproven = !proven && !p.cookie;
  if (unproven) ++counters_.unproven_initiations;
  conn->set_address_validated(unproven ? len : 0);
  Slot& s = slots_[id];
  s.unproven = unproven && config_.retry == RetryPolicy::kUnderLoad;
  s.conn = std::move(conn);
  s.has_initiation_key = true;
  s.initiation_key = key;
  initiations_[key] = id;
  touch(id, s);
}

bool Endpoint::wants_cookie(Instant now) {
  switch (config_.retry) {
    case RetryPolicy::kAlways:
      return true;
    case RetryPolicy::kNever:
      return false;
    case RetryPolicy::kUnderLoad:
      break;
  }
  const double rate = double(config_.unproven_initiations_per_second);
  if (unproven_refilled_ == kNever) {
    unproven_tokens_ = rate;
  } else if (now > unproven_refilled_) {
    unproven_tokens_ = std::min(
        rate, unproven_tokens_ + rate * std::chrono::duration<double>(now - unproven_refilled_).count());
  }
  unproven_refilled_ = now;
  if (unproven_tokens_ < 1) return true;
  unproven_tokens_ -= 1;
  return false;
}

void Endpoint::make_cookie(Instant now, const PathAddress& from, uint32_t sender_id, uint8_t* out) const {
  uint32_t ts = seconds_of(now);
  uint8_t msg[4 + PathAddress::kMaxSize + 4];
  Writer w(msg, sizeof msg);
  w.put_u32(ts);
  w.put_bytes(from.bytes.data(), from.size);
  w.put_u32(sender_id);
  crypto::Digest mac = crypto::hmac(crypto::HashAlgorithm::kSha256, cookie_secret_.data(),
                                    cookie_secret_.size(), msg, w.size());
  Writer c(out, kCookieSize);
  c.put_u32(ts);
  c.put_bytes(mac.data(), kCookieMacSize);
}

bool Endpoint::check_cookie(Instant now, const PathAddress& from, uint32_t sender_id,
                            const uint8_t* cookie) const {
  Reader r(cookie, kCookieSize);
  uint32_t ts;
  r.get_u32(ts);
  uint8_t expected[kCookieSize];
  Instant stamped{std::chrono::duration_cast<Duration>(seconds(ts))};
  make_cookie(stamped, from, sender_id, expected);
  if (!crypto::equal_ct(expected, cookie, kCookieSize)) return false;
  uint32_t now_s = seconds_of(now);
  return ts <= now_s && seconds(now_s - ts) <= config_.cookie_lifetime;
}

void Endpoint::queue_stateless(const PathAddress& to, std::vector<uint8_t> packet) {
  if (packet.empty()) return;
  if (stateless_.size() >= kMaxStatelessQueue) {
    ++counters_.stateless_dropped;
    return;
  }
  stateless_.emplace_back(to, std::move(packet));
}

void Endpoint::queue_reject(const PathAddress& to, uint32_t receiver_id, EndReason reason) {
  std::vector<uint8_t> pkt(32);
  RejectPacket r;
  r.receiver_id = receiver_id;
  r.reason = uint16_t(reason);
  pkt.resize(encode_reject(r, pkt.data(), pkt.size()));
  ++counters_.rejects_sent;
  queue_stateless(to, std::move(pkt));
}

size_t Endpoint::poll_transmit(Instant now, uint8_t* out, size_t cap, PathAddress& to) {
  while (!stateless_.empty()) {
    auto [addr, pkt] = std::move(stateless_.front());
    stateless_.pop_front();
    if (pkt.size() > cap) continue;
    std::copy(pkt.begin(), pkt.end(), out);
    to = addr;
    return pkt.size();
  }
  while (!ready_.empty()) {
    ConnectionId id = ready_.front();
    Slot* s = find(id);
    if (!s || !s->ready) {
      ready_.pop_front();
      continue;
    }
    Connection& c = *s->conn;
    size_t n = c.poll_transmit(now, out, cap);
    if (n > 0) {
      to = c.peer_address();
      if (ready_.size() > 1) {
        // Round robin between connections, one datagram each.
        ready_.pop_front();
        ready_.push_back(id);
      }
      touch(id, *s);
      return n;
    }
    c.clear_wants_transmit();
    s->ready = false;
    ready_.pop_front();
    touch(id, *s);
  }
  return 0;
}

size_t Endpoint::lingering_count() const {
  size_t n = 0;
  for (const auto& [id, slot] : slots_)
    n += slot.conn->lingering() ? 1 : 0;
  return n;
}

Instant Endpoint::next_timeout() const {
  if (!stateless_.empty()) return Instant::min();
  return timers_.empty() ? kNever : timers_.begin()->first;
}

void Endpoint::handle_timeout(Instant now) {
  std::vector<ConnectionId> due;
  while (!timers_.empty() && timers_.begin()->first <= now) {
    due.push_back(timers_.begin()->second);
    timers_.erase(timers_.begin());
  }
  for (ConnectionId id : due) {
    if (Slot* s = find(id)) {
      s->deadline = kNever;
      Instant d = s->conn->next_deadline();
      if (d <= now) s->conn->on_timeout(now);  // else an early (lazily kept) entry: just re-arm
      touch(id, *s);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Application side

ConnectionId Endpoint::connect(Instant now, const PathAddress& to, const std::optional<PublicKey>& peer_key,
                               ConnectionId id) {
  if (id == 0 || slots_.count(id)) id = new_connection_id();
  reserved_.erase(id);
  crypto::AeadAlgorithm suite = config_.prefer_aes_gcm && crypto::cpu_has_aes()
                                    ? crypto::AeadAlgorithm::kAesGcm
                                    : crypto::AeadAlgorithm::kChaChaPoly;
  PreparedKeys prepared;
  prepared.identity_object = identity_object_;
  prepared.ephemeral = take_ephemeral();
  if (peer_key) prepared.static_static = static_dh(*peer_key);
  Slot& s = slots_[id];
  s.conn = std::make_unique<Connection>(id, to, config_.connection, identity_, peer_key, suite, rng_,
                                        &events_, now, prepared);
  if (prepared.ephemeral) crypto::wipe(*prepared.ephemeral);
  if (prepared.static_static) crypto::wipe(*prepared.static_static);
  touch(id, s);
  return id;
}

void Endpoint::accept(ConnectionId id, Instant now) {
  if (Slot* s = find(id)) {
    s->conn->accept(now);
    touch(id, *s);
  }
}

void Endpoint::path_restored(ConnectionId id, Instant now) {
  if (Slot* s = find(id)) {
    s->conn->on_path_restored(now);
    touch(id, *s);
  }
}

void Endpoint::reject(ConnectionId id, uint32_t reason, Instant now) {
  if (Slot* s = find(id)) {
    s->conn->reject(reason, now);
    touch(id, *s);
  }
}

SendResult Endpoint::send(ConnectionId id, const uint8_t* data, size_t len, uint32_t flags, uint32_t lane,
                          Instant now) {
  Slot* s = find(id);
  if (!s) return SendResult::kNoConnection;
  SendResult r = s->conn->send(data, len, flags, lane, now);
  if (r == SendResult::kOk) touch(id, *s);
  return r;
}

SendResult Endpoint::send(ConnectionId id, std::vector<uint8_t>&& message, uint32_t flags, uint32_t lane,
                          Instant now) {
  Slot* s = find(id);
  if (!s) return SendResult::kNoConnection;
  SendResult r = s->conn->send(std::move(message), flags, lane, now);
  if (r == SendResult::kOk) touch(id, *s);
  return r;
}

bool Endpoint::configure_lanes(ConnectionId id, const std::vector<LaneConfig>& lanes) {
  Slot* s = find(id);
  return s && s->conn->configure_lanes(lanes);
}

bool Endpoint::receive(ConnectionId id, ReceivedMessage& out) {
  Slot* s = find(id);
  if (!s || !s->conn->pop_message(out)) return false;
  touch(id, *s);  // reading may have opened flow-control credit to announce
  return true;
}

void Endpoint::compact_readable(uint32_t group) {
  std::deque<ConnectionId>& queue = readable_[group];
  std::unordered_set<ConnectionId> kept;
  std::deque<ConnectionId> live;
  for (ConnectionId id : queue) {
    const Slot* s = find(id);
    if (s && s->group == group && s->readable && kept.insert(id).second) live.push_back(id);
  }
  queue.swap(live);
}

void Endpoint::set_poll_group(ConnectionId id, uint32_t group) {
  Slot* s = find(id);
  if (!s || s->group == group) return;
  s->group = group;
  s->readable = false;  // its entry in the old group's queue is stale now; touch queues it in the new one
  touch(id, *s);
}

bool Endpoint::receive_group(uint32_t group, ReceivedMessage& out) {
  auto it = readable_.find(group);
  if (it == readable_.end()) return false;
  std::deque<ConnectionId>& queue = it->second;
  while (!queue.empty()) {
    ConnectionId id = queue.front();
    Slot* s = find(id);
    if (s && s->group == group && s->conn->pop_message(out)) {
      if (s->conn->pending_messages() == 0) {
        s->readable = false;
        queue.pop_front();
      }
      touch(id, *s);
      return true;
    }
    if (s && s->group == group) s->readable = false;
    queue.pop_front();
  }
  return false;
}

void Endpoint::close(ConnectionId id, uint32_t reason, const std::string& debug, bool linger, Instant now) {
  if (Slot* s = find(id)) {
    s->conn->close(reason, debug, linger, now);
    touch(id, *s);
  }
}

bool Endpoint::poll_event(Event& out) {
  if (events_.empty()) return false;
  out = std::move(events_.front());
  events_.pop_front();
  return true;
}

const Connection* Endpoint::connection(ConnectionId id) const {
  const Slot* s = find(id);
  return s ? s->conn.get() : nullptr;
}

std::optional<ConnectionStats> Endpoint::stats(ConnectionId id, Instant now) const {
  const Slot* s = find(id);
  if (!s) return std::nullopt;
  return s->conn->stats(now);
}

}  // namespace peerlink::protocol
