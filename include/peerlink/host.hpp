// Host: one identity, its sockets and all its connections, served by one background thread.
//
//   // Server: accepts everyone, echoes every message.
//   peerlink::Host server;
//   server.set_connection_callback([&](const peerlink::ConnectionEvent& e) {
//     if (e.kind == peerlink::ConnectionEventKind::kClosed) server.close(e.info.handle);  // release it
//   });
//   server.listen(7777);
//   std::vector<peerlink::Message> in;
//   for (;;) {
//     server.wait(std::chrono::seconds(1));
//     server.run_callbacks();
//     server.receive_all(in);
//     for (auto& m : in) server.send(m.connection(), m.data(), m.size());
//     in.clear();
//   }
//
//   // Client: connects, sends (reliable by default; queued until connected).
//   peerlink::Host client;
//   auto conn = client.connect(*peerlink::Address::parse("192.0.2.1:7777"));
//   client.send(conn, "hello", 5);
//
// Connections: connect() starts one; with ListenOptions::auto_accept (the default) a listen socket accepts
// every peer that completes the handshake. Messages are reliable and ordered per lane, or unreliable
// (send_flags). Every connection is encrypted and authenticated: ConnectionInfo::remote_key is the peer's
// proven static key, and ConnectOptions::expected_key pins it.
//
// Events (incoming requests, connected, closed) go to the callback set with set_connection_callback(). By
// default they are queued and delivered by run_callbacks() on the thread that calls it; with
// HostConfig::callback_thread = kService they run on the service thread as they happen. Either way no
// library lock is held while a callback runs, and a callback may call any method of the Host (but must not
// destroy it, and must not throw).
//
// Handles: a connection handle stays valid until the application calls close() on it, also after the
// connection ended on its own (kClosed event): the messages it received before stay readable until then.
//
// Thread-safety: every method may be called from any thread at any time, concurrently, except that the
// destructor must not race with other calls. Calls are short: they take a per-Host lock for a few
// microseconds or queue work for the service thread; none waits for the network except wait().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peerlink/address.hpp"
#include "peerlink/connection.hpp"
#include "peerlink/end_reason.hpp"
#include "peerlink/ice.hpp"
#include "peerlink/identity.hpp"
#include "peerlink/log.hpp"
#include "peerlink/message.hpp"
#include "peerlink/network_simulation.hpp"
#include "peerlink/signaling.hpp"

namespace peerlink {

using ListenSocketHandle = uint32_t;  // 0 is never valid
using PollGroupHandle = uint32_t;     // 0 is never valid
inline constexpr ListenSocketHandle kInvalidListenSocket = 0;
inline constexpr PollGroupHandle kInvalidPollGroup = 0;

enum class CallbackThread : uint8_t {
  kApplication,  // queued; run_callbacks() delivers them on the caller's thread
  kService,      // called on the Host's service thread as they happen; keep them short
};

struct HostConfig {
  // Who this Host is. Default: a new random identity (peers cannot pin it across runs; use
  // Identity::load_or_create for a stable one).
  Identity identity = Identity::generate();

  // The local address of the socket connect() uses. Unspecified (the default) = every interface, IPv4 and
  // IPv6, an ephemeral port.
  Address bind_address;

  std::chrono::milliseconds connect_timeout{10000};  // handshake must complete within this
  std::chrono::milliseconds idle_timeout{20000};     // silence after which a connection is declared dead
  std::chrono::milliseconds keepalive_interval{5000};
  std::chrono::milliseconds linger_timeout{10000};  // a close(linger = true) gives up after this

  size_t send_buffer_bytes = 96u << 20;     // per connection: beyond this send() returns kLimitExceeded
  size_t receive_buffer_bytes = 96u << 20;  // per connection: unread bytes before the peer is slowed down
  size_t max_message_size = 64u << 20;      // reliable; unreliable messages are limited to 64 KiB
  size_t max_connections = 100000;          // beyond this, requests are refused (kRemoteBusy at the peer)
  // Before keeping any state for a peer, make it prove its address with a stateless cookie (one extra round
  // trip on connect). Turning it off saves that round trip on trusted networks; the 3x anti-amplification
  // limit still applies.
  bool address_validation = true;

  CallbackThread callback_thread = CallbackThread::kApplication;

  LogLevel log_level = LogLevel::kWarning;  // PEERLINK_LOG overrides
  LogSink log_sink;                         // empty: stderr

  // Peer-to-peer connections (connect(PeerId), listen_p2p()): the signaling plugins, at most one per scheme
  // (see signaling.hpp), and how ICE finds a path (see ice.hpp). Server names in ice are resolved when the
  // Host starts.
  std::vector<std::shared_ptr<SignalingPlugin>> signaling;
  IceConfig ice;

  NetworkSimulation simulation;       // off by default (applies to direct UDP sockets, not to ICE paths)
  int socket_buffer_bytes = 4 << 20;  // SO_RCVBUF / SO_SNDBUF of every socket

  // "" when the configuration is usable, else what is wrong with it.
  std::string validate() const;
};

// For listen_p2p(), no symmetric flag is needed (GameNetworkingSockets sets one on the listen socket too):
// every peer-to-peer listener honours ConnectOptions::symmetric of the requests it gets, matching a request
// with this side's own symmetric connect() to that peer, before or after it (see ConnectOptions::symmetric).
struct ListenOptions {
  Address address;          // unspecified: every interface, IPv4 and IPv6 (the port comes from listen())
  bool auto_accept = true;  // false: each request is a kIncomingRequest event to accept() or reject()
  PollGroupHandle poll_group = kInvalidPollGroup;  // accepted connections join this group
};

struct ConnectOptions {
  // The peer's static key, if known: the handshake then fails with EndReason::kRemoteKeyMismatch unless the
  // peer holds exactly this key (and it is one round trip shorter). Unset: any key, learned during the
  // handshake and shown in ConnectionInfo::remote_key.
  std::optional<PublicKey> expected_key;
  uint64_t user_data = 0;
  PollGroupHandle poll_group = kInvalidPollGroup;
  // connect(PeerId) only: GameNetworkingSockets' symmetric connect. While a symmetric connection with the
  // same peer is alive (being set up or connected, started by either side), connect() returns its handle
  // instead of starting another. When both sides connect at once, exactly one connection results: the
  // signaling compares the two requests' random tie-breakers the same way on both sides, the losing side's
  // request is dropped and its handle becomes the answering side of the winning one. Both sides then see
  // kConnected on the handle connect() returned. A symmetric request is accepted without a
  // kIncomingRequest event when this side is itself connecting to that peer, listening or not. Both sides
  // should also listen_p2p() (as in GameNetworkingSockets): a request that arrives before this side's own
  // connect() is then accepted through the listener, and the later connect() returns that connection.
  bool symmetric = false;
};

enum class ConnectionEventKind : uint8_t {
  // A peer completed the handshake through a listen socket with auto_accept off. Call accept() or reject();
  // a request left unanswered fails after connect_timeout.
  kIncomingRequest,
  kConnected,  // ready: messages flow; info.remote_key is proven
  // Ended by the peer or by the network (timeout, wrong key, rejected, ...): info.end_reason says why.
  // Not sent for connections the application closed itself. The handle stays valid until close().
  kClosed,
};
const char* to_string(ConnectionEventKind kind);

struct ConnectionEvent {
  ConnectionEventKind kind = ConnectionEventKind::kConnected;
  ConnectionInfo info;  // as of the event
};

// One message of a batched send.
struct OutgoingMessage {
  ConnectionHandle connection = kInvalidConnection;
  const void* data = nullptr;
  size_t size = 0;
  uint32_t flags = send_flags::kReliable;
  uint32_t lane = 0;
};

// What happened to datagrams that never reached a connection, and to the sockets.
struct HostCounters {
  uint64_t datagrams_received = 0, datagrams_sent = 0;
  uint64_t invalid_datagrams = 0;   // unparseable or of an unknown kind: dropped
  uint64_t unknown_connection = 0;  // for no connection of ours (stale, forged or replayed): dropped
  uint64_t wrong_source = 0;        // handshake packets from an address other than the peer's: dropped
  uint64_t bad_cookies = 0;         // forged or expired address-validation cookies: dropped
  uint64_t handshake_failures = 0;  // connection requests that did not authenticate: dropped
  uint64_t retries_sent = 0;        // address-validation challenges sent
  uint64_t rejects_sent = 0;        // requests refused (not listening, rejected, busy)
  uint64_t socket_receive_errors = 0, socket_send_errors = 0;
  uint64_t send_would_block = 0;   // the socket's send buffer was full (datagrams waited, not lost)
  uint64_t simulated_dropped = 0;  // by HostConfig::simulation (loss and rate limit)
  uint64_t events_dropped = 0;     // the oldest, beyond 4096 queued while no connection callback was set
  uint64_t signaling_sent = 0, signaling_received = 0;
  uint64_t signaling_invalid = 0;  // blobs that were malformed, for no session of ours, or with a changed key
  uint64_t signaling_dropped = 0;  // blobs dropped unread: plugins delivered faster than the Host could read
  uint64_t ice_restarts = 0;  // peer-to-peer paths that went silent and were looked for again (ICE restart)
  size_t connections = 0;     // handles currently held, plus connections still closing
};

class Host {
 public:
  // Starts the service thread. Throws std::invalid_argument if config.validate() reports a problem, and
  // std::system_error if the operating system refuses a thread or an eventfd.
  explicit Host(HostConfig config = {});
  // Closes every connection (sending the peer a close), waits for connections closed with linger to
  // finish (each bounded by linger_timeout), stops the service thread and frees everything.
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const Identity& identity() const;

  // --- listen sockets ---
  // Accepts connections on a UDP port (0 = an ephemeral one; listen_address() tells which). Returns
  // kInvalidListenSocket and, if error is given, why (port in use, bad address, ...).
  ListenSocketHandle listen(uint16_t port, const ListenOptions& options = {}, std::string* error = nullptr);
  std::optional<Address> listen_address(ListenSocketHandle socket) const;
  // Stops accepting on it; connections that came through it go on (its port stays bound for them until the
  // Host is destroyed). False if there is no such socket.
  bool close_listen_socket(ListenSocketHandle socket);

  // Accepts peer-to-peer connection requests arriving through the signaling plugins (at most one such
  // listener per Host; close_listen_socket() stops it). Without it, requests are refused at once (the peer
  // sees EndReason::kRemoteRejected). auto_accept false: each request is a kIncomingRequest event whose
  // info.remote_peer names the peer; accept(), reject(), or ignore it (it is dropped after connect_timeout).
  ListenSocketHandle listen_p2p(const ListenOptions& options = {}, std::string* error = nullptr);
  // Replaces the STUN and TURN servers of HostConfig::ice, e.g. with fresh time-limited TURN credentials
  // (TurnServer::with_shared_secret) before the old ones expire. Connections set up from then on, and ICE
  // restarts, use them; a running relay allocation keeps the credentials it was made with, and when those
  // are refused at its next refresh the path goes silent and the connection restarts ICE with the new ones.
  // Server names are resolved here (blocking). False and, if error is given, why: invalid servers, a name
  // that does not resolve, or no signaling plugin (no peer-to-peer side).
  bool set_ice_servers(const std::vector<StunServer>& stun, const std::vector<TurnServer>& turn,
                       std::string* error = nullptr);

  // --- connections ---
  // Starts a peer-to-peer connection: signaling through the plugin of peer's scheme, then ICE, then the
  // encrypted handshake over the path ICE found. Returns kInvalidConnection and, if error is given, why (no
  // plugin for the scheme, too many connections); otherwise the outcome is a kConnected or kClosed event
  // (EndReason::kRemoteRejected, kMiscSignalingUnreachable, kMiscNoRoute, kMiscConnectTimeout, ...), all
  // within connect_timeout. The peer's key comes from its signaling answer and is proven by the handshake;
  // options.expected_key pins it.
  ConnectionHandle connect(const PeerId& peer, const ConnectOptions& options = {},
                           std::string* error = nullptr);
  // Starts a connection to a peer's address. Returns kInvalidConnection and, if error is given, why (bad
  // address, no socket, too many connections); otherwise the outcome arrives as a kConnected or kClosed
  // event (e.g. EndReason::kMiscConnectTimeout when nobody answers).
  ConnectionHandle connect(const Address& to, const ConnectOptions& options = {},
                           std::string* error = nullptr);
  // Answers a kIncomingRequest. reject(): the peer's connection ends with EndReason::kRemoteRejected (a
  // peer-to-peer one also gets debug, in its end_debug); the handle is released.
  bool accept(ConnectionHandle connection);
  bool reject(ConnectionHandle connection, const std::string& debug = {});
  // Ends the connection and releases the handle (no more events; unread messages are freed). reason is
  // given to the peer: an application code (1000–2999) or EndReason. linger = true: reliable messages
  // already sent are still delivered first (bounded by linger_timeout); false: immediately. False if there
  // is no such connection.
  bool close(ConnectionHandle connection, uint32_t reason = uint32_t(EndReason::kAppGeneric),
             const std::string& debug = {}, bool linger = false);

  // Queues a message. Messages of up to max_message_size (reliable) or 64 KiB (unreliable) are taken whole
  // or refused whole; see SendResult. Messages may be sent while still connecting: they leave when the
  // handshake completes.
  SendResult send(ConnectionHandle connection, const void* data, size_t size,
                  uint32_t flags = send_flags::kReliable, uint32_t lane = 0);
  // Several messages under one lock, to one or many connections; results[i] (if given) is message i's.
  void send_batch(const OutgoingMessage* messages, size_t count, SendResult* results = nullptr);

  // Appends up to max received messages of one connection to out, oldest first; returns how many.
  size_t receive(ConnectionHandle connection, std::vector<Message>& out, size_t max = 256);
  // The same for every connection of a poll group.
  size_t receive_on_poll_group(PollGroupHandle group, std::vector<Message>& out, size_t max = 256);
  // The same for every connection not in a poll group.
  size_t receive_all(std::vector<Message>& out, size_t max = 256);

  PollGroupHandle create_poll_group();
  // Its connections go back to no group. False if there is no such group.
  bool destroy_poll_group(PollGroupHandle group);
  // kInvalidPollGroup takes the connection out of its group.
  bool set_poll_group(ConnectionHandle connection, PollGroupHandle group);

  // Replaces the lanes of a connection (lane i = lanes[i]; at least one). False if there is no such
  // connection or the lanes are invalid (none, more than 255, weight 0).
  bool configure_lanes(ConnectionHandle connection, const std::vector<LaneConfig>& lanes);
  bool set_user_data(ConnectionHandle connection, uint64_t user_data);
  std::optional<ConnectionInfo> connection_info(ConnectionHandle connection) const;
  std::optional<ConnectionStatus> status(ConnectionHandle connection) const;
  std::vector<ConnectionHandle> connections() const;
  HostCounters counters() const;

  // --- events ---
  using ConnectionCallback = std::function<void(const ConnectionEvent& event)>;
  void set_connection_callback(ConnectionCallback callback);
  // With CallbackThread::kService only: received messages go to this function on the service thread as soon
  // as their datagram is processed, instead of being queued for receive(). This is the lowest-latency way to
  // receive (no hand-off to another thread); a reply sent with kNoNagle from inside it leaves at once. Keep
  // it short: the service thread waits for it. An empty function goes back to queueing. Returns false (and
  // changes nothing) with CallbackThread::kApplication.
  using MessageCallback = std::function<void(Message&& message)>;
  bool set_message_callback(MessageCallback callback);
  // Delivers the queued events to the callback on this thread; returns how many. Events of a handle the
  // application has released meanwhile are skipped. Events that arrive while no callback is set are kept
  // until one is (the newest 4096; HostCounters::events_dropped counts the rest). A callback that calls
  // run_callbacks() again gets 0.
  size_t run_callbacks();
  // Blocks until there may be something to do (an event queued for run_callbacks, or a message received
  // since the last receive call) or the timeout passes. True if woken by activity.
  bool wait(std::chrono::milliseconds timeout);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace peerlink
