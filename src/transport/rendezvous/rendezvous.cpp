#include "transport/rendezvous/rendezvous.hpp"

#include <algorithm>
#include <cstring>

#include "peerlink/end_reason.hpp"

namespace peerlink::rendezvous {
namespace {

// Generation a is after b, modulo 256 (restarts wrap around).
bool newer(uint8_t a, uint8_t b) {
  const uint8_t d = uint8_t(a - b);
  return d != 0 && d < 128;
}

Instant earliest(Instant a, Instant b) {
  return a < b ? a : b;
}

// The symmetric tie-break: true if offer a (tie-breaker, key) beats offer b.
bool beats(uint64_t a_tie, const PublicKey& a_key, uint64_t b_tie, const PublicKey& b_key) {
  if (a_tie != b_tie) return a_tie > b_tie;
  return std::memcmp(a_key.data(), b_key.data(), a_key.size()) > 0;
}

}  // namespace

Rendezvous::Rendezvous(const RendezvousConfig& config, const PublicKey& own_key, crypto::RandomSource& rng,
                       std::function<Handle()> allocate)
    : config_(config), own_key_(own_key), rng_(rng), allocate_(std::move(allocate)) {}

Rendezvous::Session* Rendezvous::find(Handle h) {
  auto it = sessions_.find(h);
  return it == sessions_.end() ? nullptr : &it->second;
}

const Rendezvous::Session* Rendezvous::find(Handle h) const {
  auto it = sessions_.find(h);
  return it == sessions_.end() ? nullptr : &it->second;
}

Rendezvous::Session* Rendezvous::find_session(const PeerId& peer, uint64_t id) {
  auto it = by_session_.find({peer, id});
  return it == by_session_.end() ? nullptr : find(it->second);
}

bool Rendezvous::awaiting_accept(Handle h) const {
  const Session* s = find(h);
  return s && s->state == State::kAwaitingAccept;
}

std::optional<Role> Rendezvous::role(Handle h) const {
  const Session* s = find(h);
  return s ? std::optional<Role>(s->role) : std::nullopt;
}

std::optional<PublicKey> Rendezvous::peer_key(Handle h) const {
  const Session* s = find(h);
  return s && s->have_peer_key ? std::optional<PublicKey>(s->peer_key) : std::nullopt;
}

uint64_t Rendezvous::session_id(Handle h) const {
  const Session* s = find(h);
  return s ? s->id : 0;
}

void Rendezvous::set_listening(uint16_t virtual_port, bool listening) {
  timeout_known_ = false;
  if (listening)
    listening_.insert(virtual_port);
  else
    listening_.erase(virtual_port);
}

Rendezvous::Session& Rendezvous::start(Handle h, const PeerId& peer, uint16_t port, Role role, bool symmetric,
                                       uint64_t id, Instant now) {
  Session& s = sessions_[h];
  s = Session();
  s.handle = h;
  s.peer = peer;
  s.port = port;
  s.id = id;
  s.role = role;
  s.symmetric = symmetric;
  s.deadline = now + config_.setup_timeout;
  s.rto = config_.first_retransmit;
  by_session_[{peer, id}] = h;
  return s;
}

Handle Rendezvous::connect(Instant now, Handle h, const PeerId& peer, uint16_t virtual_port, bool symmetric) {
  timeout_known_ = false;
  now_ = now;
  if (symmetric) {
    for (auto& [handle, s] : sessions_) {
      if (s.peer != peer || s.port != virtual_port || !s.symmetric) continue;
      if (s.state == State::kAwaitingAccept) accept(now, handle);
      return handle;
    }
  }
  uint64_t id;
  do {
    id = rng_.next_u64();
  } while (id == 0 || by_session_.count({peer, id}) || finished_.count({peer, id}));
  Session& s = start(h, peer, virtual_port, Role::kOfferer, symmetric, id, now);
  s.tie_breaker = rng_.next_u64();
  push_stream_action(s, Action::Kind::kStartIce);
  return h;
}

void Rendezvous::begin_answer(Instant now, Session& s) {
  s.state = State::kActive;
  push_stream_action(s, Action::Kind::kStartIce);
  emit_remote(s, s.pending_offer);
  s.pending_offer = Blob();
  // The Answer acknowledges the Offer; if it is slow to come, a pure acknowledgement goes first.
  s.ack_at = earliest(s.ack_at, now + config_.ack_delay);
}

bool Rendezvous::accept(Instant now, Handle h) {
  timeout_known_ = false;
  now_ = now;
  Session* s = find(h);
  if (!s || s->state != State::kAwaitingAccept) return false;
  begin_answer(now, *s);
  return true;
}

bool Rendezvous::reject(Instant now, Handle h, uint32_t reason, const std::string& text) {
  timeout_known_ = false;
  now_ = now;
  Session* s = find(h);
  if (!s || s->state != State::kAwaitingAccept) return false;
  send_control(s->peer, BlobType::kReject, s->id, reason, text);
  erase(h);
  return true;
}

void Rendezvous::close(Instant now, Handle h, uint32_t reason) {
  timeout_known_ = false;
  now_ = now;
  Session* s = find(h);
  if (!s) return;
  if (s->state == State::kAwaitingAccept)
    send_control(s->peer, BlobType::kReject, s->id, reason, "closed");
  else if (s->state == State::kActive)
    send_control(s->peer, BlobType::kClose, s->id, reason, "closed");
  erase(h);
}

void Rendezvous::local_candidates(Instant now, Handle h, const std::string& ufrag, const std::string& pwd,
                                  const std::vector<Candidate>& candidates, bool gathering_done) {
  timeout_known_ = false;
  Session* s = find(h);
  if (!s || s->state == State::kAwaitingAccept) return;
  if (s->state == State::kConnected && s->settle_until == protocol::kNever) return;
  std::vector<Candidate> sorted = candidates;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Candidate& a, const Candidate& b) { return a.priority > b.priority; });
  if (sorted.size() > Blob::kMaxCandidates) sorted.resize(Blob::kMaxCandidates);
  bool changed = !s->have_local || s->ufrag != ufrag || s->pwd != pwd || s->candidates != sorted ||
                 s->gathering_done != gathering_done;
  if (!changed) return;
  s->have_local = true;
  s->ufrag = ufrag;
  s->pwd = pwd;
  s->candidates = std::move(sorted);
  s->gathering_done = gathering_done;
  s->dirty = true;
  if (!s->candidates.empty() && s->first_candidate_at == protocol::kNever) s->first_candidate_at = now;
  if (gathering_done) {
    s->send_at = now;
  } else if (s->seq == 0) {
    if (s->first_candidate_at != protocol::kNever)
      s->send_at = earliest(s->send_at, s->first_candidate_at + config_.batch_delay);
  } else {
    s->send_at = earliest(s->send_at, now + config_.batch_delay);
  }
}

void Rendezvous::connected(Instant now, Handle h) {
  timeout_known_ = false;
  now_ = now;
  Session* s = find(h);
  if (!s || s->state != State::kActive) return;
  s->state = State::kConnected;
  s->was_connected = true;
  s->deadline = protocol::kNever;
  s->settle_until = now + config_.setup_timeout;
  if (s->dirty) s->send_at = now;  // the peer may be waiting for our credentials to answer our checks
}

void Rendezvous::established(Handle h) {
  if (Session* s = find(h)) s->established = true;
}

bool Rendezvous::restart(Instant now, Handle h) {
  timeout_known_ = false;
  now_ = now;
  Session* s = find(h);
  if (!s || !s->was_connected) return false;
  s->generation = uint8_t(s->generation + 1);
  begin_restart(*s);
  return true;
}

void Rendezvous::begin_restart(Session& s) {
  s.state = State::kActive;
  s.deadline = s.settle_until = protocol::kNever;
  s.have_local = false;  // until the new stream's credentials come (local_candidates)
  s.dirty = false;
  s.send_at = protocol::kNever;
  s.candidates.clear();
  s.gathering_done = false;
  s.first_candidate_at = protocol::kNever;
  push_stream_action(s, Action::Kind::kRestartIce);
}

// kStartIce or kRestartIce: the session's ICE stream in its role (and, answering, with the offerer's key).
void Rendezvous::push_stream_action(const Session& s, Action::Kind kind) {
  Action a;
  a.kind = kind;
  a.handle = s.handle;
  a.peer = s.peer;
  a.role = s.role;
  a.peer_key = s.peer_key;
  actions_.push_back(std::move(a));
}

bool Rendezvous::retarget(Instant now, Handle h, const PeerId& to) {
  timeout_known_ = false;
  now_ = now;
  Session* s = find(h);
  if (!s || s->role != Role::kOfferer || s->symmetric || s->state != State::kActive || s->have_peer_key ||
      by_session_.count({to, s->id}))
    return false;
  by_session_.erase({s->peer, s->id});
  s->peer = to;
  by_session_[{to, s->id}] = h;
  s->rto = config_.first_retransmit;
  if (s->have_local) send_state(now, *s, false);  // else it goes with the first candidates
  return true;
}

void Rendezvous::ice_failed(Instant now, Handle h, uint32_t reason, const std::string& text) {
  timeout_known_ = false;
  now_ = now;
  Session* s = find(h);
  if (!s) return;
  if (s->state == State::kActive) send_control(s->peer, BlobType::kClose, s->id, reason, text);
  fail(*s, reason, text);
}

void Rendezvous::receive(Instant now, const PeerId& from, const uint8_t* data, size_t size) {
  timeout_known_ = false;
  now_ = now;
  ++counters_.blobs_received;
  std::optional<Blob> b = decode(data, size);
  if (!b) {
    ++counters_.invalid;
    return;
  }
  Session* s = find_session(from, b->session);
  if (!s) {
    const bool state = b->type == BlobType::kOffer || b->type == BlobType::kAnswer;
    if (state && b->generation != 0) {
      // An ICE restart (either side's) of a session that is over here, closed while its path was down and
      // its CLOSE lost: never a request, whenever it comes. The restarting side is told, else it would
      // retransmit until its connection's idle timeout.
      ++counters_.unknown_session;
      send_control(from, BlobType::kClose, b->session, uint32_t(EndReason::kRemoteRejected),
                   "no such connection any more");
    } else if (b->type == BlobType::kOffer) {
      on_offer(now, from, *b);
    } else if (!finished_.count({from, b->session})) {
      ++counters_.unknown_session;
    }
    return;
  }
  on_state(now, *s, *b);
}

void Rendezvous::on_offer(Instant now, const PeerId& from, const Blob& b) {
  if (finished_.count({from, b.session})) return;  // a late copy of a session that is over
  if (b.symmetric) {
    for (auto& [handle, s] : sessions_) {
      if (s.peer != from || s.port != b.virtual_port || !s.symmetric) continue;
      if (s.role == Role::kOfferer && s.peer_seq == 0 && s.state == State::kActive) {
        // Both sides offered at once: the larger (tie-breaker, key) wins on both sides.
        if (beats(s.tie_breaker, own_key_, b.tie_breaker, b.sender_key)) {
          ++counters_.races_won;
          remember_lost(from, b.session, now);
          // The peer is still offering, so it has not seen our Offer: send it again now rather than at the
          // next (backed-off) retransmission.
          if (s.seq > 0 && now >= s.last_sent + config_.batch_delay) send_state(now, s, false);
          return;
        }
        ++counters_.races_lost;
        remember_lost(from, s.id, now);
        by_session_.erase({from, s.id});
        Instant deadline = s.deadline;
        Session& answer = start(handle, from, b.virtual_port, Role::kAnswerer, true, b.session, now);
        answer.deadline = deadline;
        answer.tie_breaker = b.tie_breaker;
        answer.have_peer_key = true;
        answer.peer_key = b.sender_key;
        answer.peer_seq = b.seq;
        answer.pending_offer = b;
        begin_answer(now, answer);
        return;
      }
      if (s.state != State::kConnected ||
          !beats(b.tie_breaker, b.sender_key, s.tie_breaker, offerer_key(s))) {
        // The race is settled already (our answered offer, our answer in progress, or a late copy of the
        // offer that lost to the connected session's).
        remember_lost(from, b.session, now);
        return;
      }
    }
  }
  if (!listening_.count(b.virtual_port)) {
    ++counters_.refused;
    send_control(from, BlobType::kReject, b.session, uint32_t(EndReason::kRemoteRejected),
                 listening_.empty() ? "not accepting peer-to-peer connections"
                                    : "not accepting peer-to-peer connections on virtual port " +
                                          std::to_string(b.virtual_port));
    remember_lost(from, b.session, now);
    return;
  }
  Handle h = allocate_();
  Session& s = start(h, from, b.virtual_port, Role::kAnswerer, b.symmetric, b.session, now);
  s.state = State::kAwaitingAccept;
  s.tie_breaker = b.tie_breaker;
  s.have_peer_key = true;
  s.peer_key = b.sender_key;
  s.peer_seq = b.seq;
  s.pending_offer = b;
  Action a;
  a.kind = Action::Kind::kIncomingRequest;
  a.handle = h;
  a.peer = from;
  a.peer_key = b.sender_key;
  a.symmetric = b.symmetric;
  a.virtual_port = b.virtual_port;
  actions_.push_back(std::move(a));
}

const PublicKey& Rendezvous::offerer_key(const Session& s) const {
  return s.role == Role::kOfferer ? own_key_ : s.peer_key;
}

bool Rendezvous::check_key(Session& s, const Blob& b) {
  if (!s.have_peer_key) {
    s.have_peer_key = true;
    s.peer_key = b.sender_key;
    return true;
  }
  if (s.peer_key == b.sender_key) return true;
  ++counters_.key_changed;
  return false;
}

void Rendezvous::on_state(Instant now, Session& s, const Blob& b) {
  if (!check_key(s, b)) return;
  if (b.type == BlobType::kReject || b.type == BlobType::kClose) {
    if (s.state == State::kConnected && s.established) return;  // the data connection reports its own end
    std::string text =
        std::string(b.type == BlobType::kReject ? "the peer refused: " : "the peer gave up: ") +
        (b.text.empty() ? "no reason given" : b.text);
    uint32_t reason = b.type == BlobType::kReject || !is_app_reason(b.reason)
                          ? uint32_t(EndReason::kRemoteRejected)
                          : b.reason;
    fail(s, reason, text);
    return;
  }
  // An offerer hears Answers and Updates; an answerer hears Offers and Updates.
  BlobType expected = s.role == Role::kOfferer ? BlobType::kAnswer : BlobType::kOffer;
  if (b.type != expected && b.type != BlobType::kUpdate) return;
  if (b.ack > s.acked && b.ack <= s.seq) {
    s.acked = b.ack;
    if (s.acked == s.seq) {
      s.retransmit_at = protocol::kNever;
      s.rto = config_.first_retransmit;
    }
  }
  if (b.type == BlobType::kUpdate) return;  // an acknowledgement only
  if (b.seq > s.peer_seq) {
    s.peer_seq = b.seq;
    if (s.state == State::kAwaitingAccept) {
      s.pending_offer = b;
    } else if (s.was_connected && newer(b.generation, s.generation)) {
      // The peer restarted ICE: so do we, into its generation.
      s.generation = b.generation;
      begin_restart(s);
      emit_remote(s, b);
    } else if (s.state == State::kActive && b.generation == s.generation) {
      emit_remote(s, b);
    }  // else an older generation's state (the peer has not seen our restart yet), or we are connected
  }
  // Acknowledge (again, if this was a repeat: our acknowledgement may have been lost), unless a state blob
  // that carries the acknowledgement leaves before then.
  bool state_soon = s.dirty && s.send_at <= now + config_.ack_delay;
  if (!state_soon) s.ack_at = earliest(s.ack_at, now + config_.ack_delay);
}

void Rendezvous::emit_remote(Session& s, const Blob& b) {
  Action a;
  a.kind = Action::Kind::kRemoteCandidates;
  a.handle = s.handle;
  a.peer = s.peer;
  a.peer_key = b.sender_key;
  a.ufrag = b.ufrag;
  a.pwd = b.pwd;
  a.candidates = b.candidates;
  a.end_of_candidates = b.end_of_candidates;
  actions_.push_back(std::move(a));
}

void Rendezvous::send_state(Instant now, Session& s, bool retransmission) {
  if (s.dirty) {
    ++s.seq;
    s.dirty = false;
  }
  Blob b;
  b.type = s.role == Role::kOfferer ? BlobType::kOffer : BlobType::kAnswer;
  b.session = s.id;
  b.sender_key = own_key_;
  b.seq = s.seq;
  b.ack = s.peer_seq;
  b.end_of_candidates = s.gathering_done;
  b.generation = s.generation;
  b.symmetric = s.symmetric;
  b.tie_breaker = s.role == Role::kOfferer ? s.tie_breaker : 0;
  b.virtual_port = s.port;
  b.ufrag = s.ufrag;
  b.pwd = s.pwd;
  b.candidates = s.candidates;
  Action a;
  a.kind = Action::Kind::kSend;
  a.handle = s.handle;
  a.peer = s.peer;
  // Too many long candidates for one blob: the lowest-priority ones stay out.
  while (!encode(b, a.blob) && !b.candidates.empty()) {
    b.candidates.pop_back();
    b.end_of_candidates = false;
  }
  if (a.blob.empty()) return;
  ++counters_.blobs_sent;
  actions_.push_back(std::move(a));
  s.send_at = s.ack_at = protocol::kNever;
  s.last_sent = now;
  if (retransmission) s.rto = std::min(s.rto * 2, config_.max_retransmit);
  s.retransmit_at = now + s.rto;
}

void Rendezvous::send_control(const PeerId& to, BlobType type, uint64_t id, uint32_t reason,
                              const std::string& text) {
  Blob b;
  b.type = type;
  b.session = id;
  b.sender_key = own_key_;
  b.reason = reason;
  b.text = text.substr(0, Blob::kMaxReasonText);
  Action a;
  a.kind = Action::Kind::kSend;
  a.peer = to;
  if (!encode(b, a.blob)) return;
  ++counters_.blobs_sent;
  actions_.push_back(std::move(a));
}

void Rendezvous::fail(Session& s, uint32_t reason, const std::string& text) {
  Action a;
  a.kind = Action::Kind::kFailed;
  a.handle = s.handle;
  a.peer = s.peer;
  a.reason = reason;
  a.text = text;
  actions_.push_back(std::move(a));
  erase(s.handle);
}

void Rendezvous::erase(Handle h) {
  Session* s = find(h);
  if (!s) return;
  // Remembered until any copy of its blobs still in flight is surely gone.
  finished_[{s->peer, s->id}] = now_ + config_.setup_timeout;
  by_session_.erase({s->peer, s->id});
  sessions_.erase(h);
}

void Rendezvous::remember_lost(const PeerId& peer, uint64_t id, Instant now) {
  finished_[{peer, id}] = now + config_.setup_timeout;
}

void Rendezvous::peer_unreachable(Instant now, const PeerId& peer, const std::string& detail) {
  timeout_known_ = false;
  now_ = now;
  std::vector<Handle> doomed;
  for (auto& [h, s] : sessions_)
    if (s.peer == peer && s.state != State::kConnected) doomed.push_back(h);
  for (Handle h : doomed)
    fail(sessions_.at(h), uint32_t(EndReason::kMiscSignalingUnreachable), detail);
}

Instant Rendezvous::next_timeout() const {
  if (timeout_known_) return next_timeout_;
  Instant t = protocol::kNever;
  for (const auto& [h, s] : sessions_) {
    t = earliest(t, s.deadline);
    if (s.state == State::kAwaitingAccept) continue;
    t = earliest(t, s.settle_until);
    if (s.dirty) t = earliest(t, s.send_at);
    if (s.have_local) t = earliest(t, s.retransmit_at);
    t = earliest(t, s.ack_at);
  }
  next_timeout_ = t;
  timeout_known_ = true;
  return t;
}

void Rendezvous::handle_timeout(Instant now) {
  timeout_known_ = false;
  now_ = now;
  std::vector<Handle> expired;
  for (auto& [h, s] : sessions_) {
    if (s.deadline <= now) {
      expired.push_back(h);
      continue;
    }
    if (s.state == State::kAwaitingAccept) continue;
    if (s.settle_until <= now) {  // connected long enough: whatever the peer still lacks, it no longer needs
      s.dirty = false;
      s.send_at = s.retransmit_at = s.settle_until = protocol::kNever;
    }
    if (s.dirty && s.send_at <= now) {
      send_state(now, s, false);
    } else if (s.have_local && s.retransmit_at <= now && s.acked < s.seq) {
      send_state(now, s, true);
    } else if (s.have_local && s.retransmit_at <= now) {
      s.retransmit_at = protocol::kNever;
    }
    if (s.ack_at <= now) {
      Blob b;
      b.type = BlobType::kUpdate;
      b.session = s.id;
      b.sender_key = own_key_;
      b.seq = s.seq;
      b.ack = s.peer_seq;
      b.virtual_port = s.port;
      Action a;
      a.kind = Action::Kind::kSend;
      a.handle = h;
      a.peer = s.peer;
      if (encode(b, a.blob)) {
        ++counters_.blobs_sent;
        actions_.push_back(std::move(a));
      }
      s.ack_at = protocol::kNever;
    }
  }
  for (Handle h : expired) {
    Session& s = sessions_.at(h);
    bool awaiting = s.state == State::kAwaitingAccept;
    if (!awaiting)
      send_control(s.peer, BlobType::kClose, s.id, uint32_t(EndReason::kMiscConnectTimeout), "timed out");
    fail(
        s, uint32_t(EndReason::kMiscConnectTimeout),
        awaiting ? "the request was not answered in time" : "no path to the peer within the connect timeout");
  }
  for (auto it = finished_.begin(); it != finished_.end();) {
    if (it->second <= now)
      it = finished_.erase(it);
    else
      ++it;
  }
}

bool Rendezvous::poll(Action& out) {  // touches no session: next_timeout() stays known
  if (actions_.empty()) return false;
  out = std::move(actions_.front());
  actions_.pop_front();
  return true;
}

}  // namespace peerlink::rendezvous
