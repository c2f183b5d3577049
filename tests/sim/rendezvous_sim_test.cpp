// Seeded simulations of the rendezvous (signaling) state machine: two sides, a lossy, duplicating and
// reordering signaling channel, and a model of ICE that connects a pair of streams once each side holds the
// other's current credentials and a candidate. Thousands of symmetric-connect races must each end with
// exactly one connection that both sides hold as connected. Failures print the seed; RZ_TRACE=1 in the
// environment prints every action and received blob (narrow the seed range by hand to follow one race).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include <map>
#include <queue>
#include <set>

#include "peerlink/end_reason.hpp"
#include "transport/crypto/random.hpp"
#include "transport/rendezvous/rendezvous.hpp"

namespace peerlink::rendezvous {
namespace {

using namespace std::chrono_literals;

class SeededRng final : public crypto::RandomSource {
 public:
  explicit SeededRng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  void fill(uint8_t* out, size_t n) override {
    for (size_t i = 0; i < n; ++i)
      out[i] = uint8_t(next() >> 56);
  }
  uint64_t next() {  // splitmix64
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  bool chance(double p) { return double(next() >> 11) / double(1ull << 53) < p; }

 private:
  uint64_t state_;
};

struct Channel {
  double loss = 0, duplicate = 0;
  Duration min_delay = 1ms, max_delay = 20ms;
};

struct Stream {
  Role role = Role::kOfferer;
  std::string ufrag, pwd;
  std::string remote_ufrag;
  bool remote_has_candidate = false;
  bool connected = false;
  int gathered = 0;
};

struct Side {
  Side(const char* name, uint64_t seed, const RendezvousConfig& config)
      : id(*PeerId::parse(std::string("sim:") + name)), rng(seed) {
    rng.fill(key.data(), key.size());
    rz = std::make_unique<Rendezvous>(config, key, rng, [this] { return next_handle++; });
    rz->set_listening(0, true);
  }
  PeerId id;
  SeededRng rng;
  PublicKey key{};
  std::unique_ptr<Rendezvous> rz;
  Handle next_handle = 100;
  std::map<Handle, Stream> streams;
  std::set<Handle> failed;
  std::map<Handle, uint32_t> fail_reason;
  std::vector<Handle> app_handles;  // what connect() returned
  std::set<Handle> requests;
  uint64_t blobs = 0;
  int restarts = 0;  // kRestartIce actions
  bool auto_accept = true;
};

struct Event {
  Instant at;
  uint64_t order;
  int kind;  // 0 deliver blob, 1 gather step, 2 connect call, 3 ICE restart call (if connected)
  int side;
  Handle handle = 0;
  std::vector<uint8_t> blob;
  bool operator>(const Event& o) const { return at != o.at ? at > o.at : order > o.order; }
};

class Sim {
 public:
  Sim(uint64_t seed, Channel channel, RendezvousConfig config = {})
      : rng_(seed), channel_(channel), a_("a", seed * 3 + 1, config), b_("b", seed * 3 + 2, config) {}

  Side& side(int i) { return i == 0 ? a_ : b_; }
  void connect_at(Instant at, int side_index) { push(Event{at, 0, 2, side_index, 0, {}}); }
  // What a Host does when its connected path goes silent (once: not after a restart of its own or the
  // peer's).
  void restart_at(Instant at, int side_index) { push(Event{at, 0, 3, side_index, 0, {}}); }

  void run(Instant until) {
    while (true) {
      Instant t = until;
      if (!events_.empty() && events_.top().at < t) t = events_.top().at;
      for (int i = 0; i < 2; ++i)
        t = std::min(t, side(i).rz->next_timeout());
      if (t >= until) break;
      now_ = std::max(now_, t);
      for (int i = 0; i < 2; ++i)
        if (side(i).rz->next_timeout() <= now_) side(i).rz->handle_timeout(now_);
      while (!events_.empty() && events_.top().at <= now_) {
        Event e = events_.top();
        events_.pop();
        apply(e);
      }
      for (int i = 0; i < 2; ++i)
        drain(i);
      ice_step();
      for (int i = 0; i < 2; ++i)
        drain(i);
    }
  }

  Instant now() const { return now_; }

 private:
  void push(Event e) {
    e.order = order_++;
    events_.push(std::move(e));
  }

  void apply(const Event& e) {
    Side& s = side(e.side);
    if (e.kind == 0) {
      if (std::getenv("RZ_TRACE")) {
        auto b = decode(e.blob.data(), e.blob.size());
        std::fprintf(stderr, "%8.3f ms side %d receives %s session %llx seq %u ack %u\n",
                     double(protocol::to_us(now_ - Instant{})) / 1000, e.side, to_string(b->type),
                     (unsigned long long)b->session, b->seq, b->ack);
      }
      s.rz->receive(now_, side(1 - e.side).id, e.blob.data(), e.blob.size());
    } else if (e.kind == 1) {
      auto it = s.streams.find(e.handle);
      if (it == s.streams.end()) return;
      Stream& st = it->second;
      ++st.gathered;
      std::vector<Candidate> cands;
      for (int i = 0; i < st.gathered; ++i) {
        Candidate c;
        c.foundation = std::to_string(i + 1);
        c.priority = 1000 - i;
        c.address = Address::ipv4({192, 0, 2, uint8_t(e.side + 1)}, uint16_t(4000 + i));
        cands.push_back(c);
      }
      s.rz->local_candidates(now_, e.handle, st.ufrag, st.pwd, cands, st.gathered >= 2);
    } else if (e.kind == 2) {
      Handle h = s.next_handle++;
      Handle got = s.rz->connect(now_, h, side(1 - e.side).id, 0, true);
      s.app_handles.push_back(got);
    } else if (s.restarts == 0) {  // after a restart, a Host's path watch starts over: no second one here
      for (auto& [h, st] : s.streams) {
        if (st.connected) {
          EXPECT_TRUE(s.rz->restart(now_, h));
        }
      }
    }
  }

  // A new ICE stream for handle h (start or restart): fresh credentials, gathering in two steps.
  void new_stream(int i, Handle h, Role role) {
    Side& s = side(i);
    Stream st;
    st.role = role;
    st.ufrag = token(s.rng, 8);
    st.pwd = token(s.rng, 24);
    s.streams[h] = st;
    s.rz->local_candidates(now_, h, st.ufrag, st.pwd, {}, false);
    push(Event{now_ + Duration(rng_.below(uint64_t(Duration(15ms).count()))), 0, 1, i, h, {}});
    push(Event{now_ + 20ms + Duration(rng_.below(uint64_t(Duration(60ms).count()))), 0, 1, i, h, {}});
  }

  std::string token(SeededRng& r, size_t n) {
    static const char* k = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    std::string out;
    for (size_t i = 0; i < n; ++i)
      out += k[r.below(64)];
    return out;
  }

  void drain(int i) {
    Side& s = side(i);
    Action a;
    while (s.rz->poll(a)) {
      if (std::getenv("RZ_TRACE"))
        std::fprintf(stderr, "%8.3f ms side %d action %d handle %u role %d reason %u %s\n",
                     double(protocol::to_us(now_ - Instant{})) / 1000, i, int(a.kind), a.handle, int(a.role),
                     a.reason, a.text.c_str());
      switch (a.kind) {
        case Action::Kind::kSend: {
          ++s.blobs;
          if (rng_.chance(channel_.loss)) break;
          int copies = rng_.chance(channel_.duplicate) ? 2 : 1;
          for (int c = 0; c < copies; ++c) {
            Duration d = channel_.min_delay +
                         Duration(rng_.below(uint64_t((channel_.max_delay - channel_.min_delay).count())));
            push(Event{now_ + d, 0, 0, 1 - i, 0, a.blob});
          }
          break;
        }
        case Action::Kind::kIncomingRequest:
          s.requests.insert(a.handle);
          if (s.auto_accept) s.rz->accept(now_, a.handle);
          break;
        case Action::Kind::kStartIce:
          new_stream(i, a.handle, a.role);
          break;
        case Action::Kind::kRestartIce:
          ++s.restarts;
          EXPECT_TRUE(s.streams.count(a.handle)) << "restart of a stream that does not exist";
          EXPECT_EQ(s.streams[a.handle].role, a.role) << "a restart keeps the ICE role";
          new_stream(i, a.handle, a.role);
          break;
        case Action::Kind::kRemoteCandidates: {
          auto it = s.streams.find(a.handle);
          if (it == s.streams.end()) break;
          it->second.remote_ufrag = a.ufrag;
          it->second.remote_has_candidate = !a.candidates.empty();
          break;
        }
        case Action::Kind::kFailed:
          s.failed.insert(a.handle);
          s.fail_reason[a.handle] = a.reason;
          s.streams.erase(a.handle);
          break;
      }
    }
  }

  // ICE model, as libnice behaves: the controlling side (the answerer) connects once it holds the peer's
  // credentials and a candidate of it (the peer answers checks with its own credentials only); the
  // controlled side connects once the controlling side has and it holds the controlling side's credentials
  // (its triggered check needs them). So one side may connect long before the other knows anything.
  void ice_step() {
    for (auto& [ha, sa] : a_.streams) {
      for (auto& [hb, sb] : b_.streams) {
        const bool a_knows = sa.remote_ufrag == sb.ufrag, b_knows = sb.remote_ufrag == sa.ufrag;
        if (!a_knows && !b_knows) continue;
        if (a_knows && b_knows) {
          EXPECT_NE(sa.role, sb.role) << "both sides took the same ICE role";
        }
        const bool a_controls = sa.role == Role::kAnswerer;
        Stream& ctl = a_controls ? sa : sb;
        Stream& other = a_controls ? sb : sa;
        Side& ctl_side = a_controls ? a_ : b_;
        Side& other_side = a_controls ? b_ : a_;
        const Handle ctl_h = a_controls ? ha : hb, other_h = a_controls ? hb : ha;
        if (!ctl.connected && (a_controls ? a_knows : b_knows) && ctl.remote_has_candidate) {
          ctl.connected = true;
          ctl_side.rz->connected(now_, ctl_h);
        }
        if (ctl.connected && !other.connected && (a_controls ? b_knows : a_knows)) {
          other.connected = true;
          other_side.rz->connected(now_, other_h);
        }
      }
    }
  }

  SeededRng rng_;
  Channel channel_;
  Side a_, b_;
  Instant now_{};
  uint64_t order_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
};

// One Rendezvous on its own, for tests that feed it by hand.
struct Lone {
  explicit Lone(uint64_t seed)
      : rng(seed), rz(RendezvousConfig{}, PublicKey{}, rng, [this] { return next++; }) {}
  SeededRng rng;
  Handle next = 1;
  Rendezvous rz;
};

std::vector<Handle> connected_handles(Side& s) {
  std::vector<Handle> out;
  for (auto& [h, st] : s.streams)
    if (st.connected && s.rz->has(h)) out.push_back(h);
  return out;
}

// Runs one race and checks its outcome (failures print the seed). Returns whether the two offers met (a
// tie-break was needed).
bool race(uint64_t seed, Channel channel, Duration max_stagger, bool both_connect) {
  Sim sim(seed, channel);
  SeededRng r(seed ^ 0xABCDEF);
  Instant t0 = Instant{} + 1ms;
  Duration stagger = Duration(r.below(uint64_t(max_stagger.count()) + 1));
  int first = int(r.below(2));
  sim.connect_at(t0, first);
  if (both_connect) sim.connect_at(t0 + stagger, 1 - first);
  sim.run(Instant{} + 12s);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<Handle> conns[2] = {connected_handles(sim.side(0)), connected_handles(sim.side(1))};
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(conns[i].size(), 1u) << "side " << i << " connections";
  if (conns[0].size() != 1 || conns[1].size() != 1) return false;
  for (int i = 0; i < 2; ++i) {
    Side& s = sim.side(i);
    for (Handle h : s.app_handles)
      EXPECT_EQ(h, conns[i][0]) << "side " << i << ": connect() returned another handle";
    EXPECT_EQ(s.rz->session_id(conns[i][0]), sim.side(1 - i).rz->session_id(conns[1 - i][0]));
    for (Handle h : s.failed)
      EXPECT_NE(h, conns[i][0]);
  }
  const auto& ca = sim.side(0).rz->counters();
  const auto& cb = sim.side(1).rz->counters();
  return ca.races_won + ca.races_lost + cb.races_won + cb.races_lost > 0;
}

TEST(RendezvousSim, SimultaneousSymmetricConnect_ExactlyOneConnection) {
  int raced = 0;
  for (uint64_t seed = 1; seed <= 3000; ++seed) {
    raced += race(seed, Channel{}, 0ms, true);
    if (HasFailure()) return;
  }
  EXPECT_GT(raced, 2900);  // simultaneous offers nearly always cross
}

TEST(RendezvousSim, StaggeredBy0To2Rtt_ExactlyOneConnection) {
  // The channel's round trip is 2–40 ms.
  int raced = 0;
  for (uint64_t seed = 1; seed <= 3000; ++seed) {
    raced += race(seed, Channel{}, 80ms, true);
    if (HasFailure()) return;
  }
  EXPECT_GT(raced, 300);  // some crossed, some found the other side's offer first
  EXPECT_LT(raced, 2900);
}

TEST(RendezvousSim, LossyDuplicatingReorderingSignaling_ExactlyOneConnection) {
  Channel lossy;
  lossy.loss = 0.3;
  lossy.duplicate = 0.5;
  lossy.max_delay = 60ms;  // wide spread: heavy reordering
  for (uint64_t seed = 1; seed <= 3000; ++seed) {
    race(seed, lossy, 150ms, true);
    if (HasFailure()) return;
  }
}

TEST(RendezvousSim, OneSidedConnectToSymmetricListener_Connects) {
  Channel lossy;
  lossy.loss = 0.3;
  lossy.duplicate = 0.5;
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    race(seed, lossy, 0ms, false);
    if (HasFailure()) return;
  }
}

TEST(RendezvousSim, WinnerIsUnbiased) {
  // Over many simultaneous races each side's offer wins about half the time.
  int a_offered = 0, n = 1000;
  for (uint64_t seed = 1; seed <= uint64_t(n); ++seed) {
    Sim sim(seed, Channel{});
    sim.connect_at(Instant{} + 1ms, 0);
    sim.connect_at(Instant{} + 1ms, 1);
    sim.run(Instant{} + 5s);
    auto conns = connected_handles(sim.side(0));
    ASSERT_EQ(conns.size(), 1u) << "seed " << seed;
    if (sim.side(0).rz->role(conns[0]) == Role::kOfferer) ++a_offered;
  }
  EXPECT_GT(a_offered, n * 4 / 10);
  EXPECT_LT(a_offered, n * 6 / 10);
}

TEST(RendezvousSim, CommonCaseNeedsAtMostFourBlobsPerSide) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    Sim sim(seed, Channel{});
    sim.connect_at(Instant{} + 1ms, 0);
    sim.run(Instant{} + 5s);
    ASSERT_EQ(connected_handles(sim.side(0)).size(), 1u) << "seed " << seed;
    EXPECT_LE(sim.side(0).blobs, 4u) << "seed " << seed;
    EXPECT_LE(sim.side(1).blobs, 4u) << "seed " << seed;
  }
}

TEST(RendezvousSim, NotListening_FailsFastWithRejected) {
  Sim sim(7, Channel{});
  sim.side(1).rz->set_listening(0, false);
  sim.connect_at(Instant{} + 1ms, 0);
  sim.run(Instant{} + 1s);
  ASSERT_EQ(sim.side(0).failed.size(), 1u);
  EXPECT_EQ(sim.side(0).fail_reason.begin()->second, uint32_t(EndReason::kRemoteRejected));
  EXPECT_EQ(sim.side(1).rz->counters().refused, 1u);
}

TEST(RendezvousSim, UnansweredRequest_TimesOutOnBothSides) {
  Sim sim(9, Channel{});
  sim.side(1).auto_accept = false;
  sim.connect_at(Instant{} + 1ms, 0);
  sim.run(Instant{} + 12s);
  EXPECT_EQ(sim.side(1).requests.size(), 1u);
  ASSERT_EQ(sim.side(0).failed.size(), 1u);
  EXPECT_EQ(sim.side(0).fail_reason.begin()->second, uint32_t(EndReason::kMiscConnectTimeout));
  EXPECT_EQ(sim.side(1).failed.size(), 1u);  // the ignored request is dropped
  EXPECT_EQ(sim.side(0).rz->size(), 0u);
  EXPECT_EQ(sim.side(1).rz->size(), 0u);
  // Retransmission backs off: a handful of offers, not one per 400 ms.
  EXPECT_LE(sim.side(0).blobs, 8u);
}

// next_timeout() is remembered between calls (the Host asks twice a turn); each call that changes a session
// must make it look again.
TEST(RendezvousSim, NextTimeout_FollowsTheCallsThatChangeSessions) {
  RendezvousConfig config;
  Side a("a", 5, config);
  const PeerId b = *PeerId::parse("sim:b");
  const Instant t0 = Instant{} + 1s;
  EXPECT_EQ(a.rz->next_timeout(), protocol::kNever);
  ASSERT_EQ(a.rz->connect(t0, 7, b, 0, false), Handle{7});
  const Instant after_connect = a.rz->next_timeout();
  EXPECT_LE(after_connect, t0 + config.setup_timeout);
  EXPECT_EQ(a.rz->next_timeout(), after_connect);  // asked again, nothing changed
  a.rz->close(t0, 7, uint32_t(EndReason::kAppGeneric));
  EXPECT_EQ(a.rz->next_timeout(), protocol::kNever);

  // A deadline that passes ends its session: handle_timeout() must not leave the old answer behind.
  ASSERT_EQ(a.rz->connect(t0, 8, b, 0, false), Handle{8});
  Instant t = a.rz->next_timeout();
  for (int i = 0; i < 100 && a.rz->size() > 0 && t != protocol::kNever; ++i, t = a.rz->next_timeout())
    a.rz->handle_timeout(t);
  EXPECT_EQ(a.rz->size(), 0u);
  EXPECT_EQ(a.rz->next_timeout(), protocol::kNever);
}

TEST(RendezvousSim, PeerUnreachable_FailsAtOnce) {
  Lone lone(3);
  Rendezvous& rz = lone.rz;
  PeerId peer = *PeerId::parse("sim:nobody");
  Instant now{};
  rz.connect(now, 50, peer, 0, false);
  rz.peer_unreachable(now + 1ms, peer, "no such account");
  Action a;
  bool failed = false;
  while (rz.poll(a))
    if (a.kind == Action::Kind::kFailed) {
      failed = true;
      EXPECT_EQ(a.reason, uint32_t(EndReason::kMiscSignalingUnreachable));
      EXPECT_EQ(a.text, "no such account");
    }
  EXPECT_TRUE(failed);
  EXPECT_FALSE(rz.has(50));
}

// An Offer or Answer of a session, encoded (empty if it could not be).
std::vector<uint8_t> state_blob(BlobType type, uint64_t session, uint16_t seq, uint8_t generation) {
  Blob b;
  b.type = type;
  b.session = session;
  b.seq = seq;
  b.generation = generation;
  b.ufrag = "abcd";
  b.pwd = "abcdefghijklmnopqrstuv";
  std::vector<uint8_t> bytes;
  if (!encode(b, bytes)) bytes.clear();
  return bytes;
}

TEST(RendezvousSim, HostileBlobs_CountedAndHarmless) {
  Lone lone(11);
  Rendezvous& rz = lone.rz;
  SeededRng& rng = lone.rng;
  rz.set_listening(0, true);
  PeerId peer = *PeerId::parse("sim:mallory");
  Instant now{};
  std::vector<uint8_t> junk;
  for (int i = 0; i < 2000; ++i) {
    junk.resize(rng.below(300));
    rng.fill(junk.data(), junk.size());
    if (i % 2 && junk.size() > 4)
      junk[0] = 'P', junk[1] = 'L', junk[2] = 1, junk[3] = uint8_t(1 + rng.below(5));
    rz.receive(now, peer, junk.data(), junk.size());
  }
  EXPECT_EQ(rz.counters().blobs_received, 2000u);
  EXPECT_GE(rz.counters().invalid, 1990u);
  uint64_t unknown_before = rz.counters().unknown_session;
  // An Answer for no session of ours is counted, not a request.
  const std::vector<uint8_t> bytes = state_blob(BlobType::kAnswer, 42, 1, 0);
  ASSERT_FALSE(bytes.empty());
  rz.receive(now, peer, bytes.data(), bytes.size());
  EXPECT_EQ(rz.counters().unknown_session, unknown_before + 1);
}

// An ICE restart's Offer for a session that is over (the peer kept restarting after we closed): never a
// new request, and the restarting side is told at once.
TEST(RendezvousSim, RestartOfferForASessionThatIsOver_ClosedNotARequest) {
  for (BlobType type : {BlobType::kOffer, BlobType::kAnswer}) {  // the offering side's restart, the answering
    SCOPED_TRACE(to_string(type));
    Lone lone(12);
    Rendezvous& rz = lone.rz;
    rz.set_listening(0, true);
    const PeerId peer = *PeerId::parse("sim:bob");
    const std::vector<uint8_t> bytes = state_blob(type, 77, 3, 1);
    ASSERT_FALSE(bytes.empty());
    for (int copy = 0; copy < 2; ++copy) {
      rz.receive(Instant{} + std::chrono::seconds(20 * copy), peer, bytes.data(), bytes.size());
      Action a;
      bool closed = false;
      while (rz.poll(a)) {
        EXPECT_NE(a.kind, Action::Kind::kIncomingRequest);
        if (a.kind != Action::Kind::kSend) continue;
        std::optional<Blob> sent = decode(a.blob.data(), a.blob.size());
        ASSERT_TRUE(sent);
        closed |= sent->type == BlobType::kClose && sent->session == 77 && a.peer == peer;
      }
      EXPECT_TRUE(closed) << "copy " << copy;
    }
  }
}

TEST(RendezvousSim, KeyChangeWithinASession_Ignored) {
  Sim sim(21, Channel{});
  sim.side(1).auto_accept = false;
  sim.connect_at(Instant{} + 1ms, 0);
  sim.run(Instant{} + 200ms);
  ASSERT_EQ(sim.side(1).requests.size(), 1u);
  Handle h = *sim.side(1).requests.begin();
  uint64_t session = sim.side(1).rz->session_id(h);
  Blob forged;
  forged.type = BlobType::kOffer;
  forged.session = session;
  forged.seq = 9;
  forged.ufrag = "evil";
  forged.pwd = "evilevilevilevilevilev";
  forged.sender_key[0] = 0xEE;
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(encode(forged, bytes));
  sim.side(1).rz->receive(sim.now(), sim.side(0).id, bytes.data(), bytes.size());
  EXPECT_EQ(sim.side(1).rz->counters().key_changed, 1u);
  EXPECT_EQ(*sim.side(1).rz->peer_key(h), sim.side(0).key);
}

// ICE restart after a connection: one side (or both, at once or staggered by up to 2 RTT) restarts; over a
// lossy, duplicating, reordering channel both sides must end connected again on matching credentials, each
// having restarted exactly once, nothing failed.
void restart_run(uint64_t seed, Channel channel, bool both, Duration max_stagger) {
  Sim sim(seed, channel);
  SeededRng r(seed ^ 0x5157);
  sim.connect_at(Instant{} + 1ms, 0);
  sim.run(Instant{} + 8s);  // retransmissions back off to 3 s: lossy setups can take a few seconds
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(connected_handles(sim.side(i)).size(), 1u)
        << "side " << i << " not connected before the restart";
  const int first = int(r.below(2));
  sim.restart_at(Instant{} + 8s, first);
  if (both) sim.restart_at(Instant{} + 8s + Duration(r.below(uint64_t(max_stagger.count()) + 1)), 1 - first);
  sim.run(Instant{} + 25s);
  for (int i = 0; i < 2; ++i) {
    Side& s = sim.side(i);
    EXPECT_TRUE(s.failed.empty()) << "side " << i << " failed: reason " << s.fail_reason.begin()->second;
    EXPECT_EQ(s.restarts, 1) << "side " << i << " restarts";
    ASSERT_EQ(s.streams.size(), 1u);
  }
  const Stream& sa = sim.side(0).streams.begin()->second;
  const Stream& sb = sim.side(1).streams.begin()->second;
  EXPECT_TRUE(sa.connected && sb.connected) << "not connected again after the restart";
  EXPECT_EQ(sa.remote_ufrag, sb.ufrag);
  EXPECT_EQ(sb.remote_ufrag, sa.ufrag);
}

TEST(RendezvousSim, IceRestartByOneSide_BothRestartOnceAndReconnect) {
  Channel lossy;
  lossy.loss = 0.3;
  lossy.duplicate = 0.5;
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    restart_run(seed, lossy, false, 0ms);
    if (HasFailure()) return;
  }
}

TEST(RendezvousSim, IceRestartByBothSides_MeetInOneGeneration) {
  Channel lossy;
  lossy.loss = 0.3;
  lossy.duplicate = 0.5;
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    restart_run(seed, Channel{}, true, 0ms);
    restart_run(seed, lossy, true, 40ms);
    if (HasFailure()) return;
  }
}

TEST(RendezvousSim, IceRestartBeforeConnecting_Refused) {
  Sim sim(7, Channel{});
  Side& a = sim.side(0);
  sim.connect_at(Instant{} + 1ms, 0);
  sim.run(Instant{} + 2ms);
  ASSERT_EQ(a.app_handles.size(), 1u);
  EXPECT_FALSE(a.rz->restart(sim.now(), a.app_handles[0]));
  EXPECT_FALSE(a.rz->restart(sim.now(), 12345));
}

}  // namespace
}  // namespace peerlink::rendezvous
