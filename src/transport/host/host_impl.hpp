// Host::Impl: the state behind the public Host. One mutex (mutex_) guards the protocol Endpoint and every
// table here; the service thread holds it while it processes a batch of datagrams, timers and sends, and
// releases it while it waits. Application calls take it briefly. Callbacks, the log sink and the signaling
// plugins are always called with it released.
//
// Files: host.cpp (construction, shutdown, the public forwarding), host_connections.cpp (listen, connect,
// send, receive and the other application calls on connections), host_events.cpp (events: queueing,
// callbacks, service(), wait()), host_service.cpp (the service thread), host_p2p.cpp (peer-to-peer:
// signaling and the rendezvous driving ICE), host_ice_streams.cpp (the ICE streams under peer-to-peer
// connections), signaling_plugins.cpp (the plugins and their sinks).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "peerlink/host.hpp"
#include "transport/crypto/random.hpp"
#include "transport/host/logger.hpp"
#include "transport/host/path_watch.hpp"
#include "transport/host/signaling_plugins.hpp"
#include "transport/ice/ice_agent.hpp"
#include "transport/io/descriptors.hpp"
#include "transport/io/packet_impairment.hpp"
#include "transport/io/service_loop.hpp"
#include "transport/io/udp_socket.hpp"
#include "transport/protocol/endpoint.hpp"
#include "transport/rendezvous/rendezvous.hpp"

namespace peerlink {

class Host::Impl {
 public:
  // Socket indices are one byte of a PathAddress.
  static constexpr size_t kMaxSockets = 255;
  // Batches read from one socket per turn before the loop looks at everything else again: enough to
  // amortise a wake-up, small enough that timers and application calls are never starved for long (what
  // a full batch made due, acknowledgements above all, goes out before the next: send_between_batches).
  static constexpr int kReceiveBatchesPerTurn = 8;
  // ICE restart (watch_p2p_paths): how often paths are looked at, the silence while sending that counts as
  // a lost path, and how long a restart may look before it starts over.
  static constexpr protocol::Duration kPathWatchInterval = std::chrono::milliseconds(250);
  static constexpr protocol::Duration kPathSilence = std::chrono::milliseconds(1500);
  static constexpr protocol::Duration kRestartRetry = std::chrono::seconds(5);
  // How long the service thread must have had nothing to do before it makes a spare ephemeral key pair
  // (protocol::Endpoint::wants_ephemeral).
  static constexpr protocol::Duration kQuietBeforeKey = std::chrono::milliseconds(1);

  explicit Impl(HostConfig config);
  ~Impl();

  // --- application side (host_connections.cpp, host_p2p.cpp, host_events.cpp) ---
  Result<ListenSocketHandle> listen(const Address& bind, const ListenOptions& options);
  std::optional<Address> listen_address(ListenSocketHandle socket) const;
  bool close_listen_socket(ListenSocketHandle socket);
  Result<ConnectionHandle> connect(const Address& to, const ConnectOptions& options);
  Result<ListenSocketHandle> listen_p2p(uint16_t virtual_port, const ListenOptions& options);
  Result<void> set_ice_servers(const std::vector<StunServer>& stun, const std::vector<TurnServer>& turn);
  Result<ConnectionHandle> connect(const PeerId& peer, const ConnectOptions& options);
  bool accept(ConnectionHandle c);
  bool reject(ConnectionHandle c, const std::string& debug);
  bool close(ConnectionHandle c, CloseMode mode, uint32_t reason, const std::string& debug);
  SendResult send(ConnectionHandle c, const void* data, size_t size, uint32_t flags, uint32_t lane);
  SendResult send(ConnectionHandle c, std::vector<uint8_t>&& message, uint32_t flags, uint32_t lane);
  void send_batch(const OutgoingMessage* messages, size_t count, SendResult* results);
  bool service(HostEvent& event, std::chrono::milliseconds timeout);
  size_t receive(ConnectionHandle c, std::vector<Message>& out, size_t max);
  size_t receive_group(PollGroupHandle group, std::vector<Message>& out, size_t max);
  PollGroupHandle create_poll_group();
  bool destroy_poll_group(PollGroupHandle group);
  bool set_poll_group(ConnectionHandle c, PollGroupHandle group);
  bool configure_lanes(ConnectionHandle c, const std::vector<LaneConfig>& lanes);
  bool set_user_data(ConnectionHandle c, uint64_t user_data);
  std::optional<ConnectionInfo> connection_info(ConnectionHandle c) const;
  std::optional<ConnectionStatus> status(ConnectionHandle c) const;
  std::vector<ConnectionHandle> connections() const;
  HostCounters counters() const;
  std::map<PeerId, PublicKey> known_keys() const;
  void set_connection_callback(ConnectionCallback callback);
  bool set_message_callback(MessageCallback callback);
  size_t run_callbacks();
  bool wait(std::chrono::milliseconds timeout);

  const Identity& identity() const { return config_.identity; }

 private:
  struct SocketSlot {
    std::unique_ptr<io::UdpSocket> socket;
    ListenSocketHandle listen = kInvalidListenSocket;  // 0: the socket connect() uses
    ListenOptions options;
    bool accepting = false;
    bool blocked = false;  // the kernel's send buffer was full; waiting for POLLOUT
    io::SendBatch outgoing;
  };
  // What the application holds: a connection handle not yet released by close().
  struct HandleState {
    uint64_t user_data = 0;
    PollGroupHandle group = kDefaultPollGroup;
    ListenSocketHandle listen = kInvalidListenSocket;
    bool incoming = false;
    ConnectionCallback callback;  // its own (ConnectOptions / ListenOptions); empty: the Host's
  };
  struct P2PListener {
    ListenSocketHandle handle = kInvalidListenSocket;
    ListenOptions options;
  };

  // A peer-to-peer connection's setup and path state, from connect() or its request until it is released
  // (host_p2p.cpp). Its ICE stream's own state is in streams_.
  struct P2P {
    PeerId peer;
    PeerId peer_exact;  // where its signaling last came from (SignalingSink::deliver's exact)
    uint16_t virtual_port = 0;
    ice::StreamId stream = 0;
    bool offerer = true;
    bool created = false;  // the Endpoint connection exists (from then on it owns sends and state)
    std::optional<PublicKey> peer_key;
    std::optional<PublicKey> expected_key;
    struct PendingSend {
      std::vector<uint8_t> data;
      uint32_t flags, lane;
    };
    std::vector<PendingSend> sends;  // sent before the Endpoint connection existed
    std::vector<LaneConfig> lanes;   // configured before it existed (empty: lane 0 alone)
    size_t send_bytes = 0;
    bool ended = false;
    uint32_t end_reason = 0;
    std::string end_debug;
    ice::IceAgent::SelectedRoute route;
    std::string ufrag, pwd;  // of our stream
    host::PathWatch watch;  // connected: what was sent and not answered for kPathSilence means an ICE restart
    bool restarting = false;  // an ICE restart is under way
    bool fell_back = false;   // continued through another plugin (HostConfig::signaling_fallback)
    protocol::Instant restart_started{};
    // Answering, once ICE found a path: the offerer's handshake must come by then (watch_p2p_paths).
    protocol::Instant handshake_deadline = protocol::kNever;
  };
  // An ICE stream, from its creation until libnice drops it (host_ice_streams.cpp).
  struct IceStream {
    ConnectionHandle owner = kInvalidConnection;
    // The selected pair as a plain UDP socket, when it is one: sent on directly, batched with GSO
    // (libnice sends one datagram per call). Once ICE is done with the pair (ready), a socket of our own
    // beside libnice's, connected to the peer, which the service thread also reads (recvmmsg and GRO, where
    // libnice reads and copies one datagram at a time); until then libnice's socket, for sending only.
    // Dropped before libnice may close its socket.
    std::unique_ptr<io::UdpSocket> direct;
    Address direct_remote;
    int direct_base = -1;  // libnice's socket of the pair: the one `direct` is, or stands beside
    bool direct_owned = false;
  };
  // What the IceAgent reported while the service thread waited (its callbacks run inside loop_.wait, with
  // mutex_ released; service thread only, so no lock).
  struct IceNews {
    enum Kind : uint8_t { kCandidates, kState, kDatagram, kSelectedPair, kReadyChanged };
    Kind kind = kCandidates;
    ice::StreamId stream = 0;
    std::vector<rendezvous::Candidate> candidates;
    bool done = false;
    ice::StreamState state = ice::StreamState::kFailed;
    std::vector<uint8_t> data;
  };
  // --- peer-to-peer (host_p2p.cpp; mutex_ held unless said otherwise) ---
  void start_p2p();                         // constructor: plugins, ICE and the rendezvous
  void stop_p2p();                          // destructor, after the service thread ended
  void process_p2p(protocol::Instant now);  // service thread: inbox, ICE news, timers, rendezvous actions
  void read_signaling(protocol::Instant now);
  void apply_ice_servers();
  PeerId exact_sender(const PeerId& peer) const;
  void read_ice_news(protocol::Instant now);
  void apply(protocol::Instant now, rendezvous::Action& a);
  void on_request(protocol::Instant now, const rendezvous::Action& a);
  void start_ice(protocol::Instant now, const rendezvous::Action& a);
  void restart_ice(protocol::Instant now, const rendezvous::Action& a);
  void on_ice_connected(protocol::Instant now, ConnectionHandle c, P2P& p);
  void watch_p2p_paths(protocol::Instant now);
  void restart_p2p(protocol::Instant now, ConnectionHandle c, P2P& p, const std::string& why);
  void end_p2p(ConnectionHandle c, uint32_t reason, const std::string& debug);
  // The peer's key is not one its plugin lets its name stand for (SignalingPlugin::key_matches): the
  // connection fails (kRemoteKeyMismatch). True if so.
  bool key_refused(protocol::Instant now, ConnectionHandle c, const P2P& p);
  // The peer's plugin reports it unreachable: its connections being set up go on through another plugin
  // that knows a peer answering to it, when the key learned for it allows (HostConfig::signaling_fallback).
  void fall_back(protocol::Instant now, const PeerId& peer, const std::string& detail);
  // A peer-to-peer connection's handshake proved its key: remembered under its names.
  void learn_key(ConnectionHandle c);
  // A plugin saw the network change: connected peer-to-peer connections restart ICE now.
  void on_network_changed(protocol::Instant now, const std::string& scheme, const std::string& detail);
  bool accept_p2p_request(protocol::Instant now, ConnectionHandle c, const PublicKey& remote_key);
  void adopt_endpoint_connection(ConnectionHandle c, P2P& p, protocol::Instant now);
  void release_p2p(ConnectionHandle c, uint32_t reason, protocol::Instant now);
  // owned, if given, holds data/size and is moved from on kOk (so are those of send_locked).
  SendResult keep_p2p_send(P2P& p, const uint8_t* data, size_t size, std::vector<uint8_t>* owned,
                           uint32_t flags, uint32_t lane);
  void flush_signaling(std::unique_lock<std::mutex>& lock);  // sends outbox_ with mutex_ released

  // --- ICE streams (host_ice_streams.cpp; service thread, mutex_ held) ---
  // 0 on failure (error; *out_of_descriptors when the process has no file descriptor left).
  ice::StreamId open_stream(ConnectionHandle c, P2P& p, std::string* error, bool* out_of_descriptors);
  void drop_stream(ice::StreamId stream);  // removes it now
  // Released: removed by the service thread, once its Endpoint connection (if it has one) is gone.
  void retire_stream(ice::StreamId stream, bool has_connection);
  void reap_retired_streams();
  void refresh_direct(ice::StreamId stream);
  void forget_direct(IceStream& s);
  // Reads an owned direct socket (service thread): the peer's checks are answered, the rest goes to the
  // Endpoint as the stream's datagrams.
  void receive_from_stream(ice::StreamId stream, protocol::Instant& now);
  void send_to_stream(const protocol::PathAddress& path, const uint8_t* data, size_t size);
  void flush_ice_batch();

  // --- service thread (host_service.cpp) ---
  void service_main();
  void run_turn(protocol::Instant now, const std::vector<uint8_t>& readable, bool& more);
  bool deliver_on_service_thread(std::unique_lock<std::mutex>& lock, bool notify);
  protocol::Instant next_wake(protocol::Instant now, bool more) const;
  // Both move now on when they send between batches (receive_batches).
  void receive_from(uint8_t socket_index, protocol::Instant& now);
  // Reads socket a batch at a time, up to kReceiveBatchesPerTurn, and hands each datagram to handle, which
  // reads now for its instant. After a full batch (more is queued behind it) what the Endpoint has ready,
  // its acks above all, goes out first (send_between_batches); now then moves on.
  template <typename Handle>
  void receive_batches(io::UdpSocket& socket, protocol::Instant& now, const Handle& handle) {
    bool sent = false;
    for (int round = 0; round < kReceiveBatchesPerTurn; ++round) {
      const size_t n = socket.receive(receive_batch_);
      if (sent) now = io::monotonic_now();  // see send_between_batches
      for (size_t i = 0; i < n; ++i)
        handle(receive_batch_[i]);
      // A batch that was not full emptied the socket; ppoll is level-triggered and brings us back for
      // more, so the next recvmmsg would only return EAGAIN (a syscall per wake-up on the latency path).
      if (n < receive_batch_.slots()) return;
      sent = send_between_batches(now);
    }
  }
  // Sends what the Endpoint has ready at a new now; true if it sent.
  bool send_between_batches(protocol::Instant& now);
  void deliver_datagram(protocol::Instant now, const protocol::PathAddress& from, uint8_t* data, size_t size);
  // Sends what the Endpoint has ready, up to a budget; true if it stopped because of the budget.
  bool transmit(protocol::Instant now);
  bool flush_socket(SocketSlot& slot);
  void collect_events(protocol::Instant now);
  void on_direct_request(protocol::Instant now, ConnectionHandle c, const PublicKey& remote_key);
  bool shutdown_done(protocol::Instant now);

  // --- events (host_events.cpp) ---
  void queue_event(ConnectionEventKind kind, ConnectionHandle c);
  // Takes from events_ those that have a callback (the connection's own, else the Host's), with it; the
  // rest stay queued for service(). Events of released handles are dropped.
  void take_callback_events(std::vector<std::pair<ConnectionEvent, ConnectionCallback>>& out);
  // Calls each event's callback if its handle is still held (checked event by event, as a callback may
  // close handles). Call with mutex_ released.
  void deliver_events(const std::vector<std::pair<ConnectionEvent, ConnectionCallback>>& batch);
  bool next_service_event(HostEvent& out, std::pair<ConnectionEvent, ConnectionCallback>& to_call);
  // Publishes news_ (mutex_ held): messages delivered or events queued since the last call.
  void publish_news() {
    news_.store(endpoint_.messages_delivered() + events_queued_, std::memory_order_release);
  }
  // Spins (mutex_ released) until news_ differs from seen, HostConfig::wait_spin passes or deadline comes;
  // true if news came.
  bool spin_for_news(uint64_t seen, std::chrono::steady_clock::time_point deadline) const;
  // wait()'s part with HostConfig::receive_on_wait (lock held on entry and exit): polls the sockets and
  // processes what they bring until ready() or deadline. True if ready.
  template <typename Ready>
  bool wait_receiving(std::unique_lock<std::mutex>& lock, std::chrono::steady_clock::time_point deadline,
                      Ready ready);
  // Wakes wait() and service() callers: the condition variable, and the polling waiter's eventfd.
  void notify_waiters();
  void drop_oldest_connected_event();

  // --- shared helpers (mutex_ held) ---
  SocketSlot* socket_of(const protocol::PathAddress& path);
  std::optional<uint8_t> client_socket_for(const Address& to, Error* error);
  // Why connect() with these options cannot start, or nullopt.
  std::optional<Error> connect_refusal(const ConnectOptions& options) const;
  HandleState& hold(ConnectionHandle c, const ConnectOptions& options);
  ConnectionInfo info_locked(ConnectionHandle c, const HandleState& h) const;
  bool awaiting_accept(ConnectionHandle c) const;  // an application handle with a request to answer
  // Releases a handle the application holds (close, reject, service() after kClosed).
  void release(ConnectionHandle c, CloseMode mode, uint32_t reason, const std::string& debug,
               protocol::Instant now);
  // After an application command: send urgent data from this thread, and wake the service thread if the
  // Endpoint now needs it sooner than it planned to wake.
  void after_command(protocol::Instant now, bool urgent);
  // Moves up to max messages into out, from one connection (c) or a poll group; returns how many.
  template <typename Next>
  size_t take_while(std::vector<Message>& out, size_t max, Next next);
  size_t take_messages(ConnectionHandle c, std::vector<Message>& out, size_t max);
  size_t take_group_messages(PollGroupHandle group, std::vector<Message>& out, size_t max);
  Message make_message(protocol::ReceivedMessage&& m, uint64_t user_data) const;
  Message make_message(protocol::ReceivedMessage&& m) const;  // looks up the connection's user data
  SendResult send_locked(ConnectionHandle c, const uint8_t* data, size_t size, std::vector<uint8_t>* owned,
                         uint32_t flags, uint32_t lane, protocol::Instant now);
  // Under the lock: whether c's send buffer has room for size bytes, as far as the Endpoint knows now.
  bool has_send_room(ConnectionHandle c, size_t size) const;

  HostConfig config_;
  mutable host::Logger log_;
  crypto::SystemRandom rng_;

  mutable std::mutex mutex_;
  std::condition_variable activity_;  // events queued or messages delivered, for wait() and service()
  protocol::Endpoint endpoint_;
  io::ServiceLoop loop_;
  std::vector<std::unique_ptr<SocketSlot>> sockets_;  // index = the socket byte of a PathAddress
  std::optional<uint8_t> client_socket_;
  ListenSocketHandle next_listen_ = 1;
  std::unordered_map<ConnectionHandle, HandleState> handles_;
  std::unordered_set<PollGroupHandle> groups_;
  PollGroupHandle next_group_ = 1;

  // Peer-to-peer.
  std::unique_ptr<host::SignalingPlugins> plugins_;
  std::unique_ptr<rendezvous::Rendezvous> rz_;
  std::unique_ptr<ice::IceAgent> ice_;
  std::unordered_map<ConnectionHandle, P2P> p2p_;
  std::unordered_map<ice::StreamId, IceStream> streams_;
  // Streams released by the application, with whether each had an Endpoint connection: removed once that
  // connection is gone (a closing connection still needs its path to linger and to send its CLOSE). Each
  // turn looks at these (reap_retired_streams) rather than at every stream: with 1,000 connections being
  // set up, that scan took 2.4-2.8 % of the service thread.
  std::map<ice::StreamId, bool> retired_streams_;
  std::map<uint16_t, P2PListener> p2p_listeners_;  // by virtual port
  std::vector<IceNews> ice_news_;
  std::optional<IceConfig> new_ice_servers_;  // from set_ice_servers(), for the service thread
  IceConfig base_ice_servers_;                // HostConfig::ice's (resolved), or set_ice_servers()'s
  std::map<std::string, IceConfig> offered_ice_servers_;  // by the plugins' signaling services, per scheme
  std::map<PeerId, PublicKey> known_keys_;  // HostConfig::known_keys and what handshakes proved since
  std::unordered_map<PeerId, PeerId> exact_senders_;  // of the blobs read in this turn, when not the same
  io::SendBatch ice_batch_;
  io::UdpSocket* ice_batch_socket_ = nullptr;  // where ice_batch_ goes
  protocol::Instant next_path_watch_{};
  std::vector<std::pair<PeerId, std::vector<uint8_t>>> outbox_;
  uint64_t signaling_sent_ = 0;
  uint64_t ice_restarts_ = 0;

  std::optional<io::PacketImpairment> send_impairment_, receive_impairment_;
  io::ReceiveBatch receive_batch_;
  // The streams whose owned direct sockets follow sockets_ in the service thread's poll, in that order.
  std::vector<ice::StreamId> polled_streams_;
  size_t polled_sockets_ = 0;  // sockets_ at the time of that poll (an application may add one meanwhile)

  std::deque<ConnectionEvent> events_;  // for callbacks and service(), in order
  ConnectionCallback callback_;
  MessageCallback message_callback_;
  std::vector<Message> callback_messages_;            // service thread: taken for message_callback_
  std::mutex callbacks_running_;                      // run_callbacks delivers in order, one caller at a time
  std::atomic<std::thread::id> delivering_thread_{};  // the thread inside run_callbacks, if any
  uint64_t events_queued_ = 0;                        // ever; a change means there is news for wait()
  uint64_t events_dropped_ = 0;                       // beyond the bound while nobody collected them
  bool callback_events_queued_ = false;  // events_ may hold events with a callback (else nothing to scan)
  uint64_t messages_seen_ = 0;           // Endpoint::messages_delivered() at the last receive call
  int waiters_ = 0;
  // Messages delivered plus events queued, ever, as of the end of the last change under mutex_: what a
  // spinning wait() or service() (HostConfig::wait_spin) watches without the lock.
  std::atomic<uint64_t> news_{0};

  // HostConfig::receive_on_wait: an application thread inside wait() reads sockets_[0, poller_sockets_)
  // itself; the service thread leaves them out of its poll meanwhile (sockets_left_to_poller_), and takes
  // them back within kSocketsBackAfter once nobody polls them.
  static constexpr protocol::Duration kSocketsBackAfter = std::chrono::milliseconds(1);
  bool poller_active_ = false;
  size_t poller_sockets_ = 0;
  bool sockets_left_to_poller_ = false;
  std::unique_ptr<io::EventFd> poller_wake_;  // news for the polling waiter (with activity_'s notify)
  std::vector<pollfd> poller_fds_;            // the polling waiter's (only one polls at a time)

  bool sleeping_ = false;  // the service thread is (about to be) in ServiceLoop::wait
  protocol::Instant sleep_deadline_ = protocol::kNever;
  bool deadline_pulled_ = false;  // an application thread brought it forward (ServiceLoop::wake_at)
  bool stopping_ = false;
  protocol::Instant stop_deadline_ = protocol::kNever;
  std::thread thread_;
};

}  // namespace peerlink
