// Host: one identity, its sockets and all its connections, served by one background thread.
//
//   // Echo server: events and messages come from one call, service() (in the spirit of ENet).
//   peerlink::Host server;
//   auto listening = server.listen(7777);
//   if (!listening) { std::cerr << listening.error().message << "\n"; return 1; }
//   peerlink::HostEvent event;
//   for (;;) {
//     if (!server.service(event, std::chrono::seconds(1))) continue;  // nothing within a second
//     if (event.kind == peerlink::HostEventKind::kMessage)
//       server.send(event.message.connection(), event.message.data(), event.message.size());
//   }
//
//   // Client: connects, sends (reliable and ordered unless send_flags::kUnreliable; queued until
//   // connected).
//   peerlink::Host client;
//   auto conn = client.connect(*peerlink::Address::parse("192.0.2.1:7777"));
//   if (conn) client.send(*conn, "hello", 5);
//
// Connections: connect() starts one, to an address or (peer to peer, through a signaling plugin) to a
// PeerId; listen() and listen_p2p() accept them. Every connection is encrypted and authenticated: once it
// is connected, ConnectionInfo::remote_key is the peer's static key, proven by the handshake, and
// ConnectOptions::expected_key pins it.
//
// Events (incoming request, connected, closed) and messages reach the application in one of two styles
// (docs/HOST.md has both in full):
//   - service(): the next event (pending events first) or received message, on the calling thread. A
//     connection whose kClosed event service() returned is released (its handle is invalid afterwards; its
//     messages were returned before it).
//   - callbacks: set_connection_callback() (or a callback per connection or listener, in ConnectOptions /
//     ListenOptions), delivered by run_callbacks() on the calling thread (or on the service thread, with
//     HostConfig::callback_thread = kService); messages with receive() or receive_on_poll_group(). A handle
//     stays valid until close(), also after its connection ended: what it received stays readable.
// An event goes to the connection's own callback if it has one, else to the Host's, else it waits for
// service(). No library lock is held while a callback runs; a callback may call any method of the Host
// (but must not destroy it, and must not throw).
//
// Errors: calls that can fail return Result (error.hpp): the value, or a machine-readable ErrorCode with a
// message.
//
// Thread-safety: every method may be called from any thread at any time, concurrently, except that the
// destructor must not race with other calls. Calls are short: they take a per-Host lock for a few
// microseconds or queue work for the service thread; none waits for the network except service() and
// wait().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peerlink/address.hpp"
#include "peerlink/connection.hpp"
#include "peerlink/end_reason.hpp"
#include "peerlink/error.hpp"
#include "peerlink/ice.hpp"
#include "peerlink/identity.hpp"
#include "peerlink/log.hpp"
#include "peerlink/message.hpp"
#include "peerlink/network_simulation.hpp"
#include "peerlink/peer_id.hpp"
#include "peerlink/signaling.hpp"

namespace peerlink {

using ListenSocketHandle = uint32_t;  // 0 is never valid
using PollGroupHandle = uint32_t;
inline constexpr ListenSocketHandle kInvalidListenSocket = 0;
// Every connection is in exactly one poll group: this one unless put in another (ConnectOptions,
// ListenOptions, set_poll_group). receive_on_poll_group(kDefaultPollGroup, ...) reads the ones left here.
inline constexpr PollGroupHandle kDefaultPollGroup = 0;
// The virtual port of listen_p2p() and ConnectOptions when none is named.
inline constexpr uint16_t kDefaultVirtualPort = 0;

enum class CallbackThread : uint8_t {
  kApplication,  // queued; run_callbacks() (or service()) delivers them on the caller's thread
  kService,      // called on the Host's service thread as they happen; keep them short
};

// How connections decide how fast to send (docs/PROTOCOL.md, 9.2).
enum class CongestionControl : uint8_t {
  // Model-based: paces at the path's measured bottleneck bandwidth and keeps about two round trips' worth in
  // flight. Random loss (Wi-Fi, mobile) does not slow it down; a queue that keeps overflowing (more than 2 %
  // loss in a round trip) caps what it keeps in flight. The default.
  kBbr,
  kCubic,    // loss-based (RFC 9438), like most TCP stacks: 1 % random loss cuts it to a few % of the link
  kNewReno,  // loss-based (RFC 9002, section 7)
};

// When a peer that connects to this Host must first prove its address (docs/PROTOCOL.md, 4.4): it is sent a
// stateless cookie to return, which costs its connect one more round trip.
enum class AddressValidation : uint8_t {
  // Only under load: requests without a cookie run the handshake at up to 32 a second, and a connection
  // that proves its address gives its turn back. A flood from spoofed addresses costs the Host at most 32
  // handshakes a second; connects pay no extra round trip otherwise. The default, as WireGuard and QUIC
  // servers do it.
  kUnderLoad,
  kAlways,  // every request, before the Host keeps any state for the peer or does any handshake work
  kNever,   // trusted networks: state from the first packet (the 3x anti-amplification limit still applies)
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
  std::chrono::milliseconds linger_timeout{10000};  // a close(CloseMode::kAfterDelivery) gives up after this

  size_t send_buffer_bytes = 96u << 20;     // per connection: beyond this send() returns kLimitExceeded
  size_t receive_buffer_bytes = 96u << 20;  // per connection: unread bytes before the peer is slowed down
  size_t max_message_size = 64u << 20;      // reliable; unreliable messages are limited to 64 KiB
  size_t max_connections = 100000;          // beyond this, requests are refused (kRemoteBusy at the peer)
  AddressValidation address_validation = AddressValidation::kUnderLoad;

  CallbackThread callback_thread = CallbackThread::kApplication;
  // wait() and service() first spin this long before they sleep: wait() with receive_on_wait polls the
  // sockets without blocking (busy polling), otherwise they watch for a message or an event that the
  // service thread received. A reply that comes meanwhile is picked up without any thread wake-up (tens of
  // microseconds each, more at the tail and on virtual machines, where waking an idle CPU is slow). The
  // price is one busy core while a call spins, so it pays only where a thread waits for something that
  // comes soon (a game's reply loop), and only with a core to spare. 0 (the default) never spins; at most
  // 10 ms.
  std::chrono::microseconds wait_spin{0};
  // wait() on an application thread reads the Host's UDP sockets itself while it waits, and processes what
  // arrives there, instead of sleeping until the service thread has done so and wakes it: a reply then
  // costs one thread wake-up, as with a plain socket, instead of two (the service thread's, then the
  // waiter's). One thread at a time does this; others wait as usual. For direct UDP connections
  // (connect(Address) / listen()): ICE paths are read on the service thread. While no thread waits, the
  // service thread reads the sockets, taking them back within a millisecond after the last wait() returned:
  // a datagram that comes in that millisecond, while the application is busy between two wait() calls, is
  // processed when the next wait() starts or when the service thread takes the sockets back, whichever
  // comes first. false: the service thread always receives (two wake-ups per reply). No effect with
  // CallbackThread::kService (the service thread receives) or with HostConfig::simulation on.
  bool receive_on_wait = true;

  LogLevel log_level = LogLevel::kWarning;  // PEERLINK_LOG overrides
  LogSink log_sink;                         // empty: stderr

  // Peer-to-peer connections (connect(PeerId), listen_p2p()): the signaling plugins, at most one per scheme
  // (see signaling.hpp), and how ICE finds a path (see ice.hpp). Server names in ice are resolved when the
  // Host starts.
  std::vector<std::shared_ptr<SignalingPlugin>> signaling;
  IceConfig ice;
  // Static keys of peers, by PeerId, learned earlier: e.g. what known_keys() returned in the last run,
  // saved by the application. Every peer-to-peer connection adds the key its handshake proved, under the
  // PeerId the application connected to (or the request came from) and the one its signaling named.
  std::map<PeerId, PublicKey> known_keys;
  // When a connect(PeerId)'s own plugin reports the peer unreachable (its server down, say), go on through
  // another plugin that knows a peer answering to that PeerId (SignalingPlugin::find_alias: a LAN beacon's
  // peer announcing that XMPP JID), provided known_keys holds the PeerId's key: the connection then
  // continues there and only with that key (ConnectionInfo::remote_peer_exact names where it went). A peer
  // there holding another key is refused (EndReason::kRemoteKeyMismatch, saying so); with no key known the
  // connection ends unreachable as without fallback. docs/SIGNALING.md has the details.
  bool signaling_fallback = true;

  CongestionControl congestion_control = CongestionControl::kBbr;  // every connection of this Host
  NetworkSimulation simulation;       // off by default (applies to direct UDP sockets, not to ICE paths)
  int socket_buffer_bytes = 4 << 20;  // SO_RCVBUF / SO_SNDBUF of every socket

  // Fails (ErrorCode::kInvalidConfig, naming the field) if the configuration is not usable.
  Result<void> validate() const;
};

enum class ConnectionEventKind : uint8_t {
  // A peer asks to connect through a listen socket with auto_accept off: accept() or reject() it (a request
  // left unanswered fails after connect_timeout). What is known of the peer differs by kind of listener:
  //   listen():     the handshake is done; info.remote_key is proven (info.remote_key_proven).
  //   listen_p2p(): it comes at signaling time, before any handshake: info.remote_peer is the sender as the
  //                 signaling plugin authenticated it, info.remote_key the key its request carries, not yet
  //                 proven. The handshake after accept() proves it: a peer that does not hold that key
  //                 never connects (EndReason::kRemoteKeyMismatch).
  kIncomingRequest,
  kConnected,  // ready: messages flow; info.remote_key is proven
  // Ended by the peer or by the network (timeout, wrong key, rejected, ...): info.end_reason says why.
  // Not sent for connections the application closed itself.
  kClosed,
};
const char* to_string(ConnectionEventKind kind);

struct ConnectionEvent {
  ConnectionEventKind kind = ConnectionEventKind::kConnected;
  ConnectionInfo info;  // as of the event
};
using ConnectionCallback = std::function<void(const ConnectionEvent& event)>;

// What service() returns: a connection event, or a received message.
enum class HostEventKind : uint8_t { kIncomingRequest, kConnected, kClosed, kMessage };
const char* to_string(HostEventKind kind);
struct HostEvent {
  HostEventKind kind = HostEventKind::kMessage;
  ConnectionHandle connection = kInvalidConnection;
  ConnectionInfo info;  // connection events: as of the event (as in ConnectionEvent)
  Message message;      // kMessage
};

struct ListenOptions {
  bool auto_accept = true;  // false: each request is a kIncomingRequest event to accept() or reject()
  PollGroupHandle poll_group = kDefaultPollGroup;  // accepted connections join this group
  // Events of the connections accepted through this listener (kIncomingRequest too) go here instead of to
  // the Host's connection callback. Delivered like it.
  ConnectionCallback callback;
};

struct ConnectOptions {
  // The peer's static key, if known: the handshake then fails with EndReason::kRemoteKeyMismatch unless the
  // peer holds exactly this key (and it is one round trip shorter). Unset: any key, learned during the
  // handshake and shown in ConnectionInfo::remote_key.
  std::optional<PublicKey> expected_key;
  uint64_t user_data = 0;
  PollGroupHandle poll_group = kDefaultPollGroup;
  // This connection's events go here instead of to the Host's connection callback. Delivered like it.
  ConnectionCallback callback;
  // connect(PeerId) only: the peer's listen_p2p() virtual port this request is for.
  uint16_t virtual_port = kDefaultVirtualPort;
  // connect(PeerId) only: GameNetworkingSockets' symmetric connect. Either side may connect, both at once;
  // exactly one connection results (per pair of peers and virtual port), and both sides see kConnected on
  // the handle connect() returned. While such a connection is alive, connect() returns it instead of
  // starting another. Both sides should also listen_p2p() on that virtual port, so that a request arriving
  // before this side's own connect() is accepted and then returned by it. docs/SIGNALING.md has the rules.
  bool symmetric = false;
};

// One message of a batched send.
struct OutgoingMessage {
  ConnectionHandle connection = kInvalidConnection;
  const void* data = nullptr;
  size_t size = 0;
  uint32_t flags = send_flags::kReliable;
  uint32_t lane = 0;
};

// What happened to datagrams that never reached a connection, to signaling blobs, and to the sockets.
struct HostCounters {
  uint64_t datagrams_received = 0, datagrams_sent = 0;
  uint64_t invalid_datagrams = 0;     // unparseable or of an unknown kind: dropped
  uint64_t unknown_connection = 0;    // for no connection of ours (stale, forged or replayed): dropped
  uint64_t wrong_source = 0;          // handshake packets from an address other than the peer's: dropped
  uint64_t bad_cookies = 0;           // forged or expired address-validation cookies: dropped
  uint64_t handshake_failures = 0;    // connection requests that did not authenticate: dropped
  uint64_t retries_sent = 0;          // address-validation challenges sent
  uint64_t unproven_initiations = 0;  // connections begun without a cookie (AddressValidation)
  uint64_t rejects_sent = 0;          // requests refused (not listening, rejected, busy)
  uint64_t socket_receive_errors = 0, socket_send_errors = 0;
  uint64_t send_would_block = 0;   // the socket's send buffer was full (datagrams waited, not lost)
  uint64_t simulated_dropped = 0;  // by HostConfig::simulation (loss and rate limit)
  uint64_t events_dropped = 0;     // the oldest, beyond 4096 queued while nobody collected them
  // Signaling blobs. Every blob a plugin delivered counts in signaling_received, the bad and the dropped
  // ones too; the next three count those.
  uint64_t signaling_sent = 0, signaling_received = 0;
  uint64_t signaling_invalid = 0;       // malformed, empty or oversized, for no session of ours, changed key
  uint64_t signaling_wrong_scheme = 0;  // "from" outside the delivering plugin's scheme: refused
  uint64_t signaling_dropped = 0;       // unread: plugins delivered faster than the Host could read
  uint64_t ice_restarts =
      0;  // peer-to-peer paths looked for again (ICE restart): silent, or the network changed
  size_t connections = 0;  // handles currently held, plus connections still closing
};

enum class CloseMode : uint8_t {
  kNow,            // unsent and unacknowledged messages are dropped; the peer is told at once
  kAfterDelivery,  // "linger": reliable messages already sent are delivered first (bounded by
                   // HostConfig::linger_timeout), then the peer is told
};

class Host {
 public:
  // Starts the service thread and the signaling plugins. Throws peerlink::Exception: kInvalidConfig (what
  // HostConfig::validate() refuses, a scheme or a plugin instance given twice among them), or
  // kAlreadyExists (a plugin instance that already serves another Host); std::system_error when the
  // operating system refuses a thread or an eventfd; or what a plugin's start() threw. STUN/TURN server
  // names that do not resolve are logged; peer-to-peer connections then fail with kMiscNoRoute.
  explicit Host(HostConfig config = {});
  // The same, with the failure as a Result: a peerlink::Exception's Error as it is, std::system_error as
  // kSystem, anything else a plugin's start() threw as kPluginFailed.
  static Result<std::unique_ptr<Host>> create(HostConfig config = {});
  // Closes every connection (sending the peer a close, through the signaling for a peer-to-peer one still
  // being set up), waits for connections closed with CloseMode::kAfterDelivery to finish (each bounded by
  // linger_timeout), stops the service thread and the plugins, and frees everything.
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const Identity& identity() const;

  // --- listen sockets ---
  // Accepts connections on a UDP port of every interface, IPv4 and IPv6 (0 = an ephemeral one;
  // listen_address() tells which), or on one local address (its port, 0 = ephemeral). Fails with
  // kAddressInUse, kInvalidArgument, kLimitExceeded (255 sockets), kNotFound (poll group), kSystem.
  Result<ListenSocketHandle> listen(uint16_t port, const ListenOptions& options = {});
  Result<ListenSocketHandle> listen(const Address& address, const ListenOptions& options = {});
  std::optional<Address> listen_address(ListenSocketHandle socket) const;
  // Stops accepting on it; connections that came through it go on (its port stays bound for them until the
  // Host is destroyed). False if there is no such socket.
  bool close_listen_socket(ListenSocketHandle socket);

  // Accepts peer-to-peer requests for a virtual port arriving through the signaling plugins (one listener
  // per virtual port; close_listen_socket() stops it). A request for a virtual port nobody listens on is
  // refused at once (the peer sees EndReason::kRemoteRejected). Fails with kNoSignaling (no plugin),
  // kAlreadyExists, kNotFound (poll group).
  Result<ListenSocketHandle> listen_p2p(const ListenOptions& options = {});
  Result<ListenSocketHandle> listen_p2p(uint16_t virtual_port, const ListenOptions& options = {});
  // Replaces the STUN and TURN servers of HostConfig::ice, e.g. with fresh time-limited TURN credentials
  // (TurnServer::with_shared_secret) before the old ones expire. Connections set up from then on, and ICE
  // restarts, use them; a running relay allocation keeps the credentials it was made with, and when those
  // are refused at its next refresh the path goes silent and the connection restarts ICE with the new ones.
  // Server names are resolved here (blocking). Fails with kInvalidConfig, kNameResolution, kNoSignaling.
  Result<void> set_ice_servers(const std::vector<StunServer>& stun, const std::vector<TurnServer>& turn);

  // --- connections ---
  // Starts a peer-to-peer connection: signaling through the plugin of peer's scheme, then ICE, then the
  // encrypted handshake over the path ICE found. Fails at once with kInvalidArgument (empty peer),
  // kNoSignaling (no plugin for the scheme), kSelf (this Host's own peer id, as its plugin names it),
  // kLimitExceeded, kNotFound (poll group); otherwise the outcome is a kConnected or kClosed event
  // (EndReason::kRemoteRejected, kMiscSignalingUnreachable, kMiscNoRoute, kMiscConnectTimeout, ...), all
  // within connect_timeout. The peer's key comes from its signaling answer and is proven by the handshake;
  // options.expected_key pins it.
  Result<ConnectionHandle> connect(const PeerId& peer, const ConnectOptions& options = {});
  // Starts a connection to a peer's address. Fails at once with kInvalidArgument (no port, unspecified),
  // kUnreachable, kLimitExceeded, kNotFound (poll group), kSystem; otherwise the outcome arrives as a
  // kConnected or kClosed event (e.g. EndReason::kMiscConnectTimeout when nobody answers).
  Result<ConnectionHandle> connect(const Address& to, const ConnectOptions& options = {});
  // Answers a kIncomingRequest. reject(): the peer's connection ends with EndReason::kRemoteRejected (a
  // peer-to-peer one also gets debug, in its end_debug); the handle is released. False if connection is not
  // a request awaiting an answer.
  bool accept(ConnectionHandle connection);
  bool reject(ConnectionHandle connection, const std::string& debug = {});
  // Ends the connection and releases the handle (no more events; unread messages are freed). reason is
  // given to the peer: an application code (1000–2999) or an EndReason; debug is a text for its logs. False
  // if there is no such connection.
  bool close(ConnectionHandle connection, CloseMode mode = CloseMode::kNow,
             uint32_t reason = uint32_t(EndReason::kAppGeneric), const std::string& debug = {});

  // Queues a message; flags are send_flags (reliable by default). Messages of up to max_message_size
  // (reliable) or 64 KiB (unreliable) are taken whole or refused whole; see SendResult. Messages may be
  // sent while still connecting: they leave when the handshake completes.
  SendResult send(ConnectionHandle connection, const void* data, size_t size,
                  uint32_t flags = send_flags::kReliable, uint32_t lane = 0);
  // The same, taking the message's buffer instead of copying it (docs/HOST.md, "Sending"). A reliable
  // message over 16 KiB stays in this memory until acknowledged; smaller reliable ones share buffers, so
  // they are copied. On kOk message is left empty; on any other result it is left as it was.
  SendResult send(ConnectionHandle connection, std::vector<uint8_t>&& message,
                  uint32_t flags = send_flags::kReliable, uint32_t lane = 0);
  // Several messages under one lock, to one or many connections; results[i] (if given) is message i's.
  void send_batch(const OutgoingMessage* messages, size_t count, SendResult* results = nullptr);

  // The next pending event, else the next received message, oldest first, waiting up to timeout for one;
  // false if none came. Messages are those of kDefaultPollGroup (other groups are read with
  // receive_on_poll_group()). A connection's kClosed event comes after every message it still holds
  // (whatever its poll group), and releases it. Events that have a callback are delivered to it on the
  // way, on this thread (with CallbackThread::kApplication). From inside a callback it returns false at
  // once.
  bool service(HostEvent& event, std::chrono::milliseconds timeout);

  // Appends up to max received messages of one connection to out, oldest first; returns how many.
  size_t receive(ConnectionHandle connection, std::vector<Message>& out, size_t max = 256);
  // The same for every connection of a poll group (kDefaultPollGroup: those in no other group).
  size_t receive_on_poll_group(PollGroupHandle group, std::vector<Message>& out, size_t max = 256);

  PollGroupHandle create_poll_group();
  // Its connections go back to kDefaultPollGroup. False if there is no such group (or it is the default).
  bool destroy_poll_group(PollGroupHandle group);
  bool set_poll_group(ConnectionHandle connection, PollGroupHandle group);

  // Replaces the lanes of a connection (lane i = lanes[i]; at least one), also while it is still connecting
  // (a peer-to-peer one before its path is found: messages sent on its lanes meanwhile wait with them).
  // False if there is no such connection or the lanes are invalid (none, more than 255, weight 0).
  bool configure_lanes(ConnectionHandle connection, const std::vector<LaneConfig>& lanes);
  bool set_user_data(ConnectionHandle connection, uint64_t user_data);
  std::optional<ConnectionInfo> connection_info(ConnectionHandle connection) const;
  std::optional<ConnectionStatus> status(ConnectionHandle connection) const;
  std::vector<ConnectionHandle> connections() const;
  HostCounters counters() const;
  // HostConfig::known_keys and what peer-to-peer connections proved since (see there): for the application
  // to save and give back to the next run.
  std::map<PeerId, PublicKey> known_keys() const;

  // --- callbacks ---
  void set_connection_callback(ConnectionCallback callback);
  // With CallbackThread::kService only: received messages go to this function on the service thread as soon
  // as their datagram is processed, instead of being queued for receive(). This is the lowest-latency way to
  // receive (no hand-off to another thread); a reply sent with kNoNagle from inside it leaves at once. Keep
  // it short: the service thread waits for it. An empty function goes back to queueing. Returns false (and
  // changes nothing) with CallbackThread::kApplication.
  using MessageCallback = std::function<void(Message&& message)>;
  bool set_message_callback(MessageCallback callback);
  // Delivers the queued events that have a callback, on this thread; returns how many. Events of a handle
  // the application has released meanwhile are skipped. Events without any callback are kept for service()
  // (the newest 4096; HostCounters::events_dropped counts the rest). A callback that calls run_callbacks()
  // again gets 0.
  size_t run_callbacks();
  // Blocks until there may be something to do (an event that run_callbacks() would deliver, or a message
  // received since the last receive call) or the timeout passes; returns at once from a kService callback.
  // True if woken by activity. (service() waits by itself.)
  bool wait(std::chrono::milliseconds timeout);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace peerlink
