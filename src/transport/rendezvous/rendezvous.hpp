// Rendezvous: the signaling side of peer-to-peer connection setup, as a sans-I/O state machine.
//
// It turns application commands (connect, accept, reject, close), local ICE state (credentials and
// candidates as they are gathered, path found) and received blobs into blobs to send and actions for the
// Host (start an ICE stream in a role, add the peer's candidates, report a request, fail a connection).
// It owns no socket, thread or clock, so the simulator can run thousands of seeded races through it.
//
// Reliability over a best-effort signaling channel: each side's Offer/Answer/Update is cumulative and
// numbered; the other side acknowledges the highest number it has seen, piggybacked on its own blobs or,
// after ack_delay, in a pure acknowledgement. Unacknowledged state is retransmitted with exponential
// backoff until acknowledged (also after ICE found a path from this side: that does not prove the peer
// has what it needs), or until the session ends. Local candidates are batched: the first blob waits for
// gathering to finish or for batch_delay after the first candidate, whichever comes first; later ones
// likewise.
//
// Symmetric connect (GameNetworkingSockets' semantics). A connection is symmetric when the offering side
// asked for it (connect with symmetric = true). Then:
//   1. connect(peer, symmetric) while a symmetric session with that peer is alive (either direction, not
//      yet failed or closed) returns that session's handle instead of starting another;
//   2. a symmetric Offer received while our own symmetric Offer to the same peer is outstanding (not yet
//      answered) is a race: the Offer with the larger (tie_breaker, sender key) wins, compared the same way
//      on both sides. The losing side drops its own Offer and answers the winning one with the handle its
//      application already holds; the winning side ignores the losing Offer. Tie-breakers are 64 random bits
//      drawn per session, so neither side is favoured (a key comparison only settles exact ties);
//   3. a symmetric Offer that finds a symmetric session with that peer still being set up (answered, or
//      being answered), or a connected one whose Offer beats it, is a late copy of a race already settled
//      and is ignored. (A symmetric Offer that beats a connected session's is taken as a new request: the
//      peer may have closed its side and connected again.)
// So exactly one connection results, and both sides hold it as connected.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "peerlink/identity.hpp"
#include "peerlink/peer_id.hpp"
#include "transport/crypto/random.hpp"
#include "transport/protocol/time.hpp"
#include "transport/rendezvous/blob.hpp"

namespace peerlink::rendezvous {

using Handle = uint32_t;
using protocol::Duration;
using protocol::Instant;

enum class Role : uint8_t { kOfferer, kAnswerer };

struct RendezvousConfig {
  Duration batch_delay = std::chrono::milliseconds(30);
  Duration ack_delay = std::chrono::milliseconds(200);
  Duration first_retransmit = std::chrono::milliseconds(400);
  Duration max_retransmit = std::chrono::seconds(3);
  // An incoming request the application neither accepts nor rejects is dropped after this (the offering
  // side then times out). Sessions not connected by then fail with EndReason::kMiscConnectTimeout.
  Duration setup_timeout = std::chrono::seconds(10);
};

struct Action {
  enum class Kind : uint8_t {
    kSend,              // send blob to peer
    kIncomingRequest,   // a new request from peer (handle allocated); accept() or reject() it
    kStartIce,          // (re)create handle's ICE stream in role (drop any previous one); gather
    kRemoteCandidates,  // the peer's credentials and every candidate so far (cumulative)
    kFailed,            // the session ended before connecting: reason, text; the handle is forgotten
    kRestartIce,        // ICE restart of a connection that was connected: new stream, same role; gather
  };
  Kind kind = Kind::kSend;
  Handle handle = 0;
  PeerId peer;
  std::vector<uint8_t> blob;   // kSend
  Role role = Role::kOfferer;  // kStartIce
  PublicKey peer_key{};        // kIncomingRequest, kRemoteCandidates, kStartIce (answerer)
  bool symmetric = false;      // kIncomingRequest
  uint16_t virtual_port = 0;   // kIncomingRequest
  std::string ufrag, pwd;      // kRemoteCandidates
  std::vector<Candidate> candidates;
  bool end_of_candidates = false;
  uint32_t reason = 0;  // kFailed: an EndReason or the peer's application code
  std::string text;
};

struct RendezvousCounters {
  uint64_t blobs_sent = 0, blobs_received = 0;
  uint64_t invalid = 0;          // undecodable blobs
  uint64_t unknown_session = 0;  // answers and updates for no session of ours
  uint64_t key_changed = 0;      // blobs of a session whose sender key differs from the first one
  uint64_t refused = 0;          // offers refused because nothing listens
  uint64_t races_won = 0, races_lost = 0;
};

class Rendezvous {
 public:
  // allocate: a new handle for an incoming request (never 0, never one in use).
  Rendezvous(const RendezvousConfig& config, const PublicKey& own_key, crypto::RandomSource& rng,
             std::function<Handle()> allocate);

  // Incoming Offers for a virtual port become requests only while it is listened on; otherwise they are
  // refused with a Reject.
  void set_listening(uint16_t virtual_port, bool listening);

  // Starts a session to peer's virtual port under handle h. Returns h, or (symmetric) the handle of the live
  // symmetric session with that peer and port, which is then also accepted if it was waiting for that.
  Handle connect(Instant now, Handle h, const PeerId& peer, uint16_t virtual_port, bool symmetric);
  // Answers a kIncomingRequest. False if h is not a request waiting for an answer.
  bool accept(Instant now, Handle h);
  bool reject(Instant now, Handle h, uint32_t reason, const std::string& text);
  // The application closed h (connected or not): the peer is told if the setup was still going on.
  void close(Instant now, Handle h, uint32_t reason);

  // ICE: the local credentials and every local candidate so far (cumulative), and whether gathering is done.
  void local_candidates(Instant now, Handle h, const std::string& ufrag, const std::string& pwd,
                        const std::vector<Candidate>& candidates, bool gathering_done);
  // ICE found a path from this side. The peer may not have everything yet (a controlling side connects as
  // soon as the peer answers its checks, before the peer has our credentials): what we sent is still
  // retransmitted until acknowledged, for at most setup_timeout, and the peer's blobs are still
  // acknowledged. No timeout fails the session any more.
  void connected(Instant now, Handle h);
  // The data connection of h exists: once ICE is connected, it reports its own end, and a Close from the
  // peer is ignored. Until then a Close ends the session whatever ICE did (the peer gave up before its
  // handshake, or will never send one).
  void established(Handle h);
  // ICE restart of a connection that has been connected (its path failed): a kRestartIce for h now, and the
  // new credentials and candidates (local_candidates) go to the peer under the next ICE generation, which
  // makes the peer restart too. Two sides restarting at once meet in the same generation. False if h never
  // connected. No timeout: the data connection's own idle timeout decides when to give up.
  bool restart(Instant now, Handle h);
  // The offering session h goes on with another peer (the same peer reached through another signaling
  // plugin): what it sends goes there from now on, at once. False unless h is an offering, non-symmetric
  // session that has heard nothing from its peer yet.
  bool retarget(Instant now, Handle h, const PeerId& to);
  // ICE failed for h (no path): the session fails with reason (and the peer is told).
  void ice_failed(Instant now, Handle h, uint32_t reason, const std::string& text);

  // Signaling.
  void receive(Instant now, const PeerId& from, const uint8_t* data, size_t size);
  void peer_unreachable(Instant now, const PeerId& peer, const std::string& detail);

  Instant next_timeout() const;
  void handle_timeout(Instant now);
  bool poll(Action& out);

  bool has(Handle h) const { return sessions_.count(h) != 0; }
  bool awaiting_accept(Handle h) const;
  std::optional<Role> role(Handle h) const;
  std::optional<PublicKey> peer_key(Handle h) const;  // once the peer's first blob has been seen
  uint64_t session_id(Handle h) const;
  size_t size() const { return sessions_.size(); }
  const RendezvousCounters& counters() const { return counters_; }

 private:
  // next_timeout()'s answer, kept until the next call that may change a session: the Host asks twice a
  // turn, and looking through every session took 2.9-3.6 % of a service thread with 1,000 being set up.
  // Every public method that is not const, but poll(), starts by forgetting it.
  mutable Instant next_timeout_ = protocol::kNever;
  mutable bool timeout_known_ = false;
  enum class State : uint8_t { kAwaitingAccept, kActive, kConnected };
  struct Session {
    Handle handle = 0;
    PeerId peer;
    uint64_t id = 0;
    Role role = Role::kOfferer;
    State state = State::kActive;
    uint16_t port = 0;  // the answering side's virtual port
    bool symmetric = false;
    uint64_t tie_breaker = 0;  // ours if offerer, the peer's if answerer
    Instant deadline = protocol::kNever;
    Instant settle_until = protocol::kNever;  // kConnected: retransmissions stop then
    bool was_connected = false;               // ICE connected at least once (restarts allowed)
    bool established = false;                 // the data connection exists (established())
    uint8_t generation = 0;                   // ICE generation of our current stream (restarts)

    // What we tell the peer.
    bool have_local = false;
    std::string ufrag, pwd;
    std::vector<Candidate> candidates;
    bool gathering_done = false;
    uint16_t seq = 0;    // of the last state blob sent
    bool dirty = false;  // local state changed since it was sent
    Instant first_candidate_at = protocol::kNever;
    Instant send_at = protocol::kNever;  // batch timer for the next state blob
    uint16_t acked = 0;                  // highest of our seq the peer acknowledged
    Instant retransmit_at = protocol::kNever;
    Instant last_sent{};
    Duration rto{};

    // What the peer told us.
    bool have_peer_key = false;
    PublicKey peer_key{};
    uint16_t peer_seq = 0;
    Instant ack_at = protocol::kNever;  // a pure ack is due
    Blob pending_offer;                 // kAwaitingAccept: the Offer, replayed on accept
  };

  Session* find(Handle h);
  const Session* find(Handle h) const;
  Session* find_session(const PeerId& peer, uint64_t id);
  Session& start(Handle h, const PeerId& peer, uint16_t port, Role role, bool symmetric, uint64_t id,
                 Instant now);
  void begin_answer(Instant now, Session& s);
  void begin_restart(Session& s);
  void push_stream_action(const Session& s, Action::Kind kind);
  void on_offer(Instant now, const PeerId& from, const Blob& b);
  void on_state(Instant now, Session& s, const Blob& b);
  bool check_key(Session& s, const Blob& b);
  const PublicKey& offerer_key(const Session& s) const;
  void send_state(Instant now, Session& s, bool retransmission);
  void send_control(const PeerId& to, BlobType type, uint64_t id, uint32_t reason, const std::string& text);
  void emit_remote(Session& s, const Blob& b);
  void fail(Session& s, uint32_t reason, const std::string& text);
  void erase(Handle h);
  void remember_lost(const PeerId& peer, uint64_t id, Instant now);

  RendezvousConfig config_;
  PublicKey own_key_;
  crypto::RandomSource& rng_;
  std::function<Handle()> allocate_;
  std::set<uint16_t> listening_;  // virtual ports
  Instant now_{};                 // of the latest call that told the time
  std::unordered_map<Handle, Session> sessions_;
  std::map<std::pair<PeerId, uint64_t>, Handle> by_session_;
  // Sessions that ended or lost a race, so late duplicates of their blobs are not taken for new requests.
  std::map<std::pair<PeerId, uint64_t>, Instant> finished_;
  std::deque<Action> actions_;
  RendezvousCounters counters_;
};

}  // namespace peerlink::rendezvous
