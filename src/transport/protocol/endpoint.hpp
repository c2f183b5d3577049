// The Endpoint: every connection of one local identity on one set of paths, as a sans-I/O state machine.
//
// Datagrams, timeouts and application commands go in; datagrams to send, events and received messages
// come out. It demultiplexes by connection id, answers Initiations statelessly (Retry with a cookie, or
// Reject) until the peer's address is proven, and keeps the timers of all its connections in order.
//
//   Endpoint ep(config, identity, rng);
//   ConnectionId c = ep.connect(now, server_address, server_key);   // server_key: nullopt -> XX pattern
//   loop:
//     ep.handle_datagram(now, from, buf, len);                      // for each datagram received
//     if (now >= ep.next_timeout()) ep.handle_timeout(now);
//     PathAddress to; while (size_t n = ep.poll_transmit(now, out, sizeof out, to)) sendto(to, out, n);
//     Event e; while (ep.poll_event(e)) ...;                        // accept(), state changes
//     ReceivedMessage m; while (ep.receive(c, m)) ...;
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "peerlink/identity.hpp"
#include "transport/crypto/random.hpp"
#include "transport/crypto/x25519.hpp"
#include "transport/protocol/config.hpp"
#include "transport/protocol/connection.hpp"
#include "transport/protocol/connection_types.hpp"
#include "transport/protocol/path_address.hpp"

namespace peerlink::protocol {

struct EndpointCounters {
  uint64_t datagrams_received = 0;
  uint64_t invalid_datagrams = 0;   // unparseable or of an unknown kind
  uint64_t unknown_connection = 0;  // addressed to no connection of ours
  uint64_t wrong_source = 0;        // handshake packets from an address that is not the peer's
  uint64_t retries_sent = 0;
  uint64_t unproven_initiations = 0;  // connections begun without a cookie (RetryPolicy)
  uint64_t rejects_sent = 0;
  uint64_t bad_cookies = 0;         // forged, expired or for another address
  uint64_t handshake_failures = 0;  // Initiations whose Noise message did not authenticate
  uint64_t stateless_dropped = 0;   // Retry/Reject not sent because the queue was full
};

class Endpoint {
 public:
  Endpoint(const EndpointConfig& config, const Identity& identity, crypto::RandomSource& rng);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // --- network side ---
  // data is modified in place (decrypted). accept_initiations = false: connection requests arriving on this
  // path are refused at once with a stateless Reject (e.g. the socket is not a listening one), before any
  // cookie, key agreement or per-peer state.
  void handle_datagram(Instant now, const PathAddress& from, uint8_t* data, size_t len,
                       bool accept_initiations = true);
  // The next datagram to send and its destination; 0 when there is nothing to send now.
  size_t poll_transmit(Instant now, uint8_t* out, size_t cap, PathAddress& to);
  // When handle_timeout should be called next (kNever: no timer).
  Instant next_timeout() const;
  // Something may be sendable now: poll_transmit before waiting for next_timeout.
  bool wants_transmit() const { return !ready_.empty() || !stateless_.empty(); }
  void handle_timeout(Instant now);

  // --- work done ahead ---
  // An X25519 operation takes tens of microseconds, and a handshake does five on each side. Two of them
  // need not wait for the handshake:
  // - the ephemeral key pair: once it has done a handshake, the endpoint keeps one spare, made ahead (the
  //   Host makes it after 1 ms with nothing to do) and taken by the next handshake, on either side. Not
  //   before the first handshake: a new Host's first connect would race its own key making for the CPU;
  // - the initiator's static-static DH: remembered per peer key (up to kStaticDhCacheSize peers) for the
  //   next connection to the same peer. The responder never uses it: an initiation names its own static
  //   key, and a faster answer would tell its sender whether this endpoint talked to that key lately.
  static constexpr size_t kStaticDhCacheSize = 256;
  bool wants_ephemeral() const { return keep_spare_ && !spare_ephemeral_; }
  void give_ephemeral(const crypto::X25519KeyPair& key_pair);  // replaces (and wipes) an unused one

  // --- application side ---
  // Starts a connection. With peer_key the handshake is Noise IK and fails with kRemoteKeyMismatch if the
  // peer does not hold that key; without it, Noise XX learns the peer's key (see Connection::remote_key).
  // id: one from reserve_id(), or 0 for a new one.
  ConnectionId connect(Instant now, const PathAddress& to, const std::optional<PublicKey>& peer_key,
                       ConnectionId id = 0);
  // An id no connection will get until it is used (connect, expect_initiation) or released.
  ConnectionId reserve_id();
  void release_id(ConnectionId id) { reserved_.erase(id); }
  // The next connection request arriving from `from` (a path already proven by other means, such as ICE)
  // gets the reserved id, skips the address-validation cookie and is taken even on a non-accepting path.
  // It still needs accept() after its kIncomingRequest event.
  void expect_initiation(const PathAddress& from, ConnectionId id) { expected_[from] = id; }
  void cancel_expectation(const PathAddress& from) { expected_.erase(from); }
  void accept(ConnectionId id, Instant now);
  void reject(ConnectionId id, uint32_t reason, Instant now);
  // The transport below found a new path after an outage (ICE restart): see Connection::on_path_restored.
  void path_restored(ConnectionId id, Instant now);
  SendResult send(ConnectionId id, const uint8_t* data, size_t len, uint32_t flags, uint32_t lane,
                  Instant now);
  // The same, taking the buffer instead of copying it: moved from only on kOk.
  SendResult send(ConnectionId id, std::vector<uint8_t>&& message, uint32_t flags, uint32_t lane,
                  Instant now);
  bool configure_lanes(ConnectionId id, const std::vector<LaneConfig>& lanes);
  bool receive(ConnectionId id, ReceivedMessage& out);
  // Poll groups: every connection is in one group (0 unless moved). receive_group returns the next message
  // of any connection of the group; receive_any is receive_group(0).
  void set_poll_group(ConnectionId id, uint32_t group);
  bool receive_group(uint32_t group, ReceivedMessage& out);
  bool receive_any(ReceivedMessage& out) { return receive_group(0, out); }
  // Forgets a group's bookkeeping once no connection is in it any more.
  void drop_poll_group(uint32_t group) { readable_.erase(group); }
  // Messages handed to connections' receive queues so far: a change means something became readable.
  uint64_t messages_delivered() const { return messages_delivered_; }
  // Ends the connection and releases its handle (see Connection::close).
  void close(ConnectionId id, uint32_t reason, const std::string& debug, bool linger, Instant now);
  bool poll_event(Event& out);

  const Connection* connection(ConnectionId id) const;
  std::optional<ConnectionStats> stats(ConnectionId id, Instant now) const;
  size_t connection_count() const { return slots_.size(); }
  // Connections closed with linger that are still delivering (see Connection::lingering).
  size_t lingering_count() const;
  const EndpointCounters& counters() const { return counters_; }
  const PublicKey& public_key() const { return identity_.public_key; }

 private:
  struct InitiationKey {
    PathAddress from;
    uint32_t sender_id;
    bool operator==(const InitiationKey& o) const { return sender_id == o.sender_id && from == o.from; }
  };
  struct InitiationKeyHash {
    size_t operator()(const InitiationKey& k) const { return PathAddressHash()(k.from) * 31 + k.sender_id; }
  };
  struct Slot {
    std::unique_ptr<Connection> conn;
    Instant deadline = kNever;
    bool ready = false;
    bool readable = false;
    bool has_initiation_key = false;
    bool unproven = false;  // begun without a cookie, address not proven yet (RetryPolicy::kUnderLoad)
    uint32_t group = 0;
    InitiationKey initiation_key;
  };

  void handle_initiation(Instant now, const PathAddress& from, const uint8_t* data, size_t len,
                         bool accepting);
  Slot* find(ConnectionId id);
  const Slot* find(ConnectionId id) const;
  // After anything touched a connection: reap it if finished, queue it to transmit, re-arm its timer.
  // slot is the connection's own (the caller has already looked it up).
  void touch(ConnectionId id, Slot& s);
  // Drops entries of gone or moved connections (and repeats) from a group's readable queue.
  void compact_readable(uint32_t group);
  ConnectionId new_connection_id();
  void make_cookie(Instant now, const PathAddress& from, uint32_t sender_id, uint8_t* out) const;
  bool check_cookie(Instant now, const PathAddress& from, uint32_t sender_id, const uint8_t* cookie) const;
  // RetryPolicy: whether an Initiation without a cookie must get a Retry (takes a token when it may run).
  bool wants_cookie(Instant now);
  void queue_stateless(const PathAddress& to, std::vector<uint8_t> packet);
  void queue_reject(const PathAddress& to, uint32_t receiver_id, EndReason reason);

  EndpointConfig config_;
  // The spare ephemeral key pair, used once (see wants_ephemeral).
  std::optional<crypto::X25519KeyPair> take_ephemeral();
  // DH(identity, peer_key), from the cache or computed and cached; nullopt for a low-order key.
  std::optional<crypto::Key32> static_dh(const PublicKey& peer_key);

  crypto::X25519KeyPair identity_;
  crypto::X25519Local identity_object_;  // OpenSSL's object for identity_'s private key, made once
  crypto::RandomSource& rng_;
  std::optional<crypto::X25519KeyPair> spare_ephemeral_;
  bool keep_spare_ = false;  // set by the first handshake
  std::map<PublicKey, crypto::Key32> static_dh_;
  std::array<uint8_t, 32> cookie_secret_{};
  // RetryPolicy::kUnderLoad: a token bucket of Initiations that may run without a cookie. It refills with
  // time, and a connection that proves its address gives its token back: connects one after another never
  // run it dry, spoofed or garbage Initiations (which never prove anything) do.
  double unproven_tokens_ = 0;
  Instant unproven_refilled_ = kNever;  // never refilled yet: the bucket starts full
  std::unordered_map<ConnectionId, Slot> slots_;
  // The slot find() returned last (an element's address survives rehashing; touch() forgets it when it
  // erases that slot). A busy connection's datagrams and calls look up the same slot over and over: the
  // hash lookup was 0.9 % of core-throughput's sending thread and 1.7 % of its receiving one.
  ConnectionId found_id_ = 0;
  Slot* found_ = nullptr;
  std::unordered_map<InitiationKey, ConnectionId, InitiationKeyHash> initiations_;
  std::unordered_set<ConnectionId> reserved_;
  std::unordered_map<PathAddress, ConnectionId, PathAddressHash> expected_;
  std::set<std::pair<Instant, ConnectionId>> timers_;
  std::deque<ConnectionId> ready_;
  std::deque<std::pair<PathAddress, std::vector<uint8_t>>> stateless_;
  std::deque<Event> events_;
  // Per poll group, connections that had messages when queued; entries of connections that have gone or
  // moved to another group are skipped when met.
  std::unordered_map<uint32_t, std::deque<ConnectionId>> readable_;
  uint64_t messages_delivered_ = 0;
  EndpointCounters counters_;
};

}  // namespace peerlink::protocol
