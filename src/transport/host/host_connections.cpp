// Host: the application's calls on listen sockets and connections. Each takes the Host's lock for a short,
// bounded piece of work on the Endpoint and its tables, then wakes the service thread only if it has to.
#include <algorithm>

#include "transport/host/host_impl.hpp"
#include "transport/io/path_codec.hpp"

namespace peerlink {

using protocol::Instant;

namespace {
// Messages from this size on are copied with the Host's lock released (send()).
constexpr size_t kCopyOutsideLock = 16 * 1024;
}  // namespace

// --- listen sockets ---

Result<ListenSocketHandle> Host::Impl::listen(const Address& bind, const ListenOptions& options) {
  Error error;
  io::UdpSocketOptions so;
  so.receive_buffer_bytes = so.send_buffer_bytes = config_.socket_buffer_bytes;
  auto socket = io::UdpSocket::open(bind, so, &error);
  ListenSocketHandle handle = kInvalidListenSocket;
  if (socket) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (sockets_.size() >= kMaxSockets) {
      error = {ErrorCode::kLimitExceeded, "too many sockets (at most 255 per Host)"};
    } else if (options.poll_group != kDefaultPollGroup && !groups_.count(options.poll_group)) {
      error = {ErrorCode::kNotFound, "no such poll group"};
    } else {
      auto slot = std::make_unique<SocketSlot>();
      slot->socket = std::move(socket);
      slot->listen = next_listen_++;
      slot->options = options;
      slot->accepting = true;
      handle = slot->listen;
      log_.log(LogLevel::kInfo, "listening on %s", slot->socket->local_address().to_string().c_str());
      sockets_.push_back(std::move(slot));
      if (sleeping_) loop_.wake();  // the service thread must add the socket to its poll set
    }
  }
  if (handle == kInvalidListenSocket)
    log_.log(LogLevel::kWarning, "listen(%s): %s", bind.to_string().c_str(), error.message.c_str());
  log_.flush();
  if (handle == kInvalidListenSocket) return error;
  return handle;
}

std::optional<Address> Host::Impl::listen_address(ListenSocketHandle socket) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& s : sockets_)
    if (s->listen == socket && socket != kInvalidListenSocket && s->accepting)
      return s->socket->local_address();
  return std::nullopt;
}

bool Host::Impl::close_listen_socket(ListenSocketHandle socket) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (socket == kInvalidListenSocket) return false;
  for (auto it = p2p_listeners_.begin(); it != p2p_listeners_.end(); ++it) {
    if (it->second.handle != socket) continue;
    rz_->set_listening(it->first, false);  // new requests are refused; connections made through it go on
    p2p_listeners_.erase(it);
    return true;
  }
  for (auto& s : sockets_) {
    if (s->listen == socket && s->accepting) {
      s->accepting = false;  // the socket stays open for the connections that came through it
      return true;
    }
  }
  return false;
}

// --- connections ---

std::optional<Error> Host::Impl::connect_refusal(const ConnectOptions& options) const {
  if (handles_.size() >= config_.max_connections)
    return Error{ErrorCode::kLimitExceeded, "too many connections (HostConfig::max_connections)"};
  if (options.poll_group != kDefaultPollGroup && !groups_.count(options.poll_group))
    return Error{ErrorCode::kNotFound, "no such poll group"};
  return std::nullopt;
}

Host::Impl::HandleState& Host::Impl::hold(ConnectionHandle c, const ConnectOptions& options) {
  HandleState& h = handles_[c];
  h.user_data = options.user_data;
  h.group = options.poll_group;
  h.callback = options.callback;
  return h;
}

std::optional<uint8_t> Host::Impl::client_socket_for(const Address& to, Error* error) {
  if (!client_socket_) {
    if (sockets_.size() >= kMaxSockets) {
      *error = {ErrorCode::kLimitExceeded, "too many sockets (at most 255 per Host)"};
      return std::nullopt;
    }
    io::UdpSocketOptions so;
    so.receive_buffer_bytes = so.send_buffer_bytes = config_.socket_buffer_bytes;
    auto socket = io::UdpSocket::open(config_.bind_address, so, error);
    if (!socket) {
      error->message = "cannot open a UDP socket: " + error->message;
      return std::nullopt;
    }
    auto slot = std::make_unique<SocketSlot>();
    slot->socket = std::move(socket);
    client_socket_ = uint8_t(sockets_.size());
    sockets_.push_back(std::move(slot));
    if (sleeping_) loop_.wake();  // the service thread must add the socket to its poll set
  }
  const io::UdpSocket& s = *sockets_[*client_socket_]->socket;
  if (!s.reachable(to)) {
    *error = {ErrorCode::kUnreachable, "cannot reach " + to.to_string() + " from the socket bound to " +
                                           s.local_address().to_string()};
    return std::nullopt;
  }
  return client_socket_;
}

Result<ConnectionHandle> Host::Impl::connect(const Address& to, const ConnectOptions& options) {
  ConnectionHandle c = kInvalidConnection;
  Error error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::optional<uint8_t> index;
    if (to.is_unspecified() || to.is_any() || to.port() == 0) {
      error = {ErrorCode::kInvalidArgument,
               "cannot connect to " + to.to_string() + ": an address with a port is needed"};
    } else if (auto refusal = connect_refusal(options)) {
      error = std::move(*refusal);
    } else if ((index = client_socket_for(to, &error))) {
      Instant now = io::monotonic_now();
      c = endpoint_.connect(now, io::encode_path(*index, to.unmapped()), options.expected_key);
      HandleState& h = hold(c, options);
      if (h.group != kDefaultPollGroup) endpoint_.set_poll_group(c, h.group);
      log_.log(LogLevel::kInfo, "connection %u: connecting to %s", c, to.to_string().c_str());
      after_command(now, true);
    }
    if (c == kInvalidConnection) log_.log(LogLevel::kWarning, "connect: %s", error.message.c_str());
  }
  log_.flush();
  if (c == kInvalidConnection) return error;
  return c;
}

bool Host::Impl::awaiting_accept(ConnectionHandle c) const {
  if (!handles_.count(c)) return false;
  if (p2p_.count(c)) return rz_->awaiting_accept(c);
  const protocol::Connection* conn = endpoint_.connection(c);
  return conn && conn->awaiting_accept();
}

bool Host::Impl::accept(ConnectionHandle c) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!awaiting_accept(c)) return false;
  Instant now = io::monotonic_now();
  if (p2p_.count(c)) {
    rz_->accept(now, c);
    loop_.wake();
    return true;
  }
  endpoint_.accept(c, now);
  after_command(now, true);
  return true;
}

bool Host::Impl::reject(ConnectionHandle c, const std::string& debug) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!awaiting_accept(c)) return false;
  Instant now = io::monotonic_now();
  handles_.erase(c);  // the rejected request is released at once
  if (p2p_.count(c)) {
    rz_->reject(now, c, uint32_t(EndReason::kRemoteRejected), debug);
    release_p2p(c, uint32_t(EndReason::kRemoteRejected), now);
    return true;
  }
  endpoint_.reject(c, uint32_t(EndReason::kRemoteRejected), now);
  after_command(now, true);
  return true;
}

bool Host::Impl::close(ConnectionHandle c, CloseMode mode, uint32_t reason, const std::string& debug) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!handles_.count(c)) return false;
    Instant now = io::monotonic_now();
    release(c, mode, reason, debug, now);
    log_.log(LogLevel::kInfo, "connection %u: closed by the application (%u%s%s%s)", c, reason,
             debug.empty() ? "" : ": ", debug.c_str(),
             mode == CloseMode::kAfterDelivery ? ", lingering" : "");
    after_command(now, true);
  }
  log_.flush();
  return true;
}

// The caller sends or wakes as it needs to (after_command): the destructor releases every handle at once.
void Host::Impl::release(ConnectionHandle c, CloseMode mode, uint32_t reason, const std::string& debug,
                         Instant now) {
  handles_.erase(c);
  endpoint_.close(c, reason, debug, mode == CloseMode::kAfterDelivery, now);
  release_p2p(c, reason, now);
}

SendResult Host::Impl::send(ConnectionHandle c, const void* data, size_t size, uint32_t flags,
                            uint32_t lane) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!handles_.count(c)) return SendResult::kNoConnection;
  if (size >= kCopyOutsideLock && has_send_room(c, size)) {
    // The connection would copy it into a buffer of its own anyway. Copied with the lock released, the
    // service thread does not wait on the copy: a bulk sender of 64 KiB messages held the lock for each
    // one, and the service thread slept on it thousands of times a second. A message refused for want
    // of room is refused below without the copy (a sender retrying on kLimitExceeded would otherwise pay
    // for it on every try); room taken meanwhile by another thread costs one copy.
    lock.unlock();
    const auto* bytes = static_cast<const uint8_t*>(data);
    return send(c, std::vector<uint8_t>(bytes, bytes + size), flags, lane);
  }
  Instant now = io::monotonic_now();
  SendResult r = send_locked(c, static_cast<const uint8_t*>(data), size, nullptr, flags, lane, now);
  if (r == SendResult::kOk) after_command(now, protocol::sends_at_once(flags));
  return r;
}

SendResult Host::Impl::send(ConnectionHandle c, std::vector<uint8_t>&& message, uint32_t flags,
                            uint32_t lane) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!handles_.count(c)) return SendResult::kNoConnection;
  Instant now = io::monotonic_now();
  SendResult r = send_locked(c, message.data(), message.size(), &message, flags, lane, now);
  if (r == SendResult::kOk) after_command(now, protocol::sends_at_once(flags));
  return r;
}

bool Host::Impl::has_send_room(ConnectionHandle c, size_t size) const {
  const protocol::Connection* conn = endpoint_.connection(c);
  return !conn || conn->has_send_room(size);  // none yet (peer to peer, being set up): kept as it comes
}

void Host::Impl::send_batch(const OutgoingMessage* messages, size_t count, SendResult* results) {
  std::lock_guard<std::mutex> lock(mutex_);
  Instant now = io::monotonic_now();
  bool sent = false, urgent = false;
  for (size_t i = 0; i < count; ++i) {
    const OutgoingMessage& m = messages[i];
    SendResult r = SendResult::kNoConnection;
    if (handles_.count(m.connection))
      r = send_locked(m.connection, static_cast<const uint8_t*>(m.data), m.size, nullptr, m.flags, m.lane,
                      now);
    if (r == SendResult::kOk) {
      sent = true;
      urgent |= protocol::sends_at_once(m.flags);
    }
    if (results) results[i] = r;
  }
  if (sent) after_command(now, urgent);
}

SendResult Host::Impl::send_locked(ConnectionHandle c, const uint8_t* data, size_t size,
                                   std::vector<uint8_t>* owned, uint32_t flags, uint32_t lane, Instant now) {
  auto p = p2p_.find(c);
  if (p != p2p_.end() && !p->second.created) return keep_p2p_send(p->second, data, size, owned, flags, lane);
  return owned ? endpoint_.send(c, std::move(*owned), flags, lane, now)
               : endpoint_.send(c, data, size, flags, lane, now);
}

// --- receiving ---

Message Host::Impl::make_message(protocol::ReceivedMessage&& m, uint64_t user_data) const {
  return Message(m.connection, m.lane, m.reliable, m.number, user_data, std::move(m.data));
}

Message Host::Impl::make_message(protocol::ReceivedMessage&& m) const {
  auto it = handles_.find(m.connection);
  return make_message(std::move(m), it == handles_.end() ? 0 : it->second.user_data);
}

// Moves up to max messages into out while next(m, user_data) yields one with its connection's user data;
// how many.
template <typename Next>
size_t Host::Impl::take_while(std::vector<Message>& out, size_t max, Next next) {
  messages_seen_ = endpoint_.messages_delivered();
  protocol::ReceivedMessage m;
  uint64_t user_data = 0;
  size_t taken = 0;
  while (taken < max && next(m, user_data)) {
    out.push_back(make_message(std::move(m), user_data));
    ++taken;
  }
  return taken;
}

size_t Host::Impl::take_messages(ConnectionHandle c, std::vector<Message>& out, size_t max) {
  auto h = handles_.find(c);
  const uint64_t user_data = h == handles_.end() ? 0 : h->second.user_data;  // one lookup, not one a message
  return take_while(out, max, [&](protocol::ReceivedMessage& m, uint64_t& u) {
    u = user_data;
    return endpoint_.receive(c, m);
  });
}

size_t Host::Impl::take_group_messages(PollGroupHandle group, std::vector<Message>& out, size_t max) {
  return take_while(out, max, [&](protocol::ReceivedMessage& m, uint64_t& u) {
    if (!endpoint_.receive_group(group, m)) return false;
    auto h = handles_.find(m.connection);
    u = h == handles_.end() ? 0 : h->second.user_data;
    return true;
  });
}

size_t Host::Impl::receive(ConnectionHandle c, std::vector<Message>& out, size_t max) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!handles_.count(c)) return 0;
  size_t n = take_messages(c, out, max);
  if (n > 0) after_command(io::monotonic_now(), false);  // credit may need announcing
  return n;
}

size_t Host::Impl::receive_group(PollGroupHandle group, std::vector<Message>& out, size_t max) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = take_group_messages(group, out, max);
  if (n > 0) after_command(io::monotonic_now(), false);
  return n;
}

// --- poll groups and connection settings ---

PollGroupHandle Host::Impl::create_poll_group() {
  std::lock_guard<std::mutex> lock(mutex_);
  PollGroupHandle g = next_group_++;
  groups_.insert(g);
  return g;
}

bool Host::Impl::destroy_poll_group(PollGroupHandle group) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!groups_.erase(group)) return false;
  for (auto& [c, h] : handles_) {
    if (h.group != group) continue;
    h.group = kDefaultPollGroup;
    endpoint_.set_poll_group(c, kDefaultPollGroup);
  }
  for (auto& s : sockets_)
    if (s->options.poll_group == group) s->options.poll_group = kDefaultPollGroup;
  for (auto& [port, l] : p2p_listeners_)
    if (l.options.poll_group == group) l.options.poll_group = kDefaultPollGroup;
  endpoint_.drop_poll_group(group);
  return true;
}

bool Host::Impl::set_poll_group(ConnectionHandle c, PollGroupHandle group) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(c);
  if (it == handles_.end() || (group != kDefaultPollGroup && !groups_.count(group))) return false;
  it->second.group = group;
  endpoint_.set_poll_group(c, group);
  return true;
}

bool Host::Impl::configure_lanes(ConnectionHandle c, const std::vector<LaneConfig>& lanes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!handles_.count(c)) return false;
  auto p = p2p_.find(c);
  if (p != p2p_.end() && !p->second.created) {
    // Still being set up: kept for the Endpoint connection, validated as it will be.
    if (p->second.ended || lanes.empty() || lanes.size() > 255) return false;
    for (const LaneConfig& lane : lanes)
      if (lane.weight == 0) return false;
    p->second.lanes = lanes;
    return true;
  }
  return endpoint_.configure_lanes(c, lanes);
}

bool Host::Impl::set_user_data(ConnectionHandle c, uint64_t user_data) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(c);
  if (it == handles_.end()) return false;
  it->second.user_data = user_data;
  return true;
}

// --- what the application can read ---

ConnectionInfo Host::Impl::info_locked(ConnectionHandle c, const HandleState& h) const {
  ConnectionInfo info;
  info.handle = c;
  info.incoming = h.incoming;
  info.listen_socket = h.listen;
  info.user_data = h.user_data;
  const protocol::Connection* conn = endpoint_.connection(c);
  auto p2p = p2p_.find(c);
  if (p2p != p2p_.end()) {
    const P2P& p = p2p->second;
    info.remote_peer = p.peer;
    info.remote_peer_exact = p.peer_exact.empty() ? p.peer : p.peer_exact;
    info.virtual_port = p.virtual_port;
    info.route = p.route.type;
    info.relayed = p.route.type == RouteType::kRelay;
    info.remote_address = p.route.remote;
    info.local_address = p.route.local;
    if (p.peer_key) {  // named by the signaling; proven once the handshake is done
      info.remote_key = *p.peer_key;
      info.remote_fingerprint = Identity::fingerprint_of(info.remote_key);
    }
    if (!conn || !p.created) {
      info.state = p.ended ? ConnectionState::kClosed : ConnectionState::kConnecting;
      info.end_reason = p.end_reason;
      info.end_debug = p.end_debug;
      return info;
    }
  }
  if (!conn) {
    info.state = ConnectionState::kClosed;
    return info;
  }
  info.state = conn->state();
  if (conn->remote_key() && (info.state != ConnectionState::kConnecting || h.incoming)) {
    info.remote_key = *conn->remote_key();
    info.remote_key_proven = true;
    info.remote_fingerprint = Identity::fingerprint_of(info.remote_key);
  }
  uint8_t index = 0;
  Address remote;
  if (io::decode_path(conn->peer_address(), index, remote) && index < sockets_.size()) {
    info.remote_address = remote;
    info.local_address = sockets_[index]->socket->local_address();
    info.route = RouteType::kDirectUdp;
  }
  info.end_reason = conn->end_reason();
  info.end_debug = conn->end_debug();
  return info;
}

std::optional<ConnectionInfo> Host::Impl::connection_info(ConnectionHandle c) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(c);
  if (it == handles_.end()) return std::nullopt;
  return info_locked(c, it->second);
}

std::optional<ConnectionStatus> Host::Impl::status(ConnectionHandle c) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!handles_.count(c)) return std::nullopt;
  auto st = endpoint_.stats(c, io::monotonic_now());
  const protocol::Connection* conn = endpoint_.connection(c);
  if (!st || !conn) return std::nullopt;
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  ConnectionStatus s;
  s.state = conn->state();
  if (st->rtt_sampled) {
    s.rtt = duration_cast<microseconds>(st->rtt_smoothed);
    s.rtt_min = duration_cast<microseconds>(st->rtt_min);
    s.rtt_variance = duration_cast<microseconds>(st->rtt_variance);
  }
  s.loss_rate = st->loss_rate;
  s.quality = st->quality;
  s.send_rate_bytes_per_second = st->send_rate_bps;
  s.congestion_window_bytes = st->congestion_window;
  s.bytes_in_flight = st->bytes_in_flight;
  s.packet_size = st->packet_size;
  s.packets_sent = st->packets_sent;
  s.packets_received = st->packets_received;
  s.packets_lost = st->packets_lost;
  s.packets_retransmitted = st->packets_retransmitted;
  s.bytes_sent = st->bytes_sent;
  s.bytes_received = st->bytes_received;
  s.packets_rejected_auth = st->packets_rejected_auth;
  s.packets_duplicate = st->packets_duplicate;
  s.messages_sent = st->messages_sent;
  s.messages_received = st->messages_received;
  s.unreliable_dropped = st->unreliable_dropped;
  s.queued_bytes = st->queued_bytes;
  s.lane_queued_bytes = st->lane_queued_bytes;
  return s;
}

std::vector<ConnectionHandle> Host::Impl::connections() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ConnectionHandle> out;
  out.reserve(handles_.size());
  for (const auto& [c, h] : handles_)
    out.push_back(c);
  std::sort(out.begin(), out.end());
  return out;
}

std::map<PeerId, PublicKey> Host::Impl::known_keys() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return known_keys_;
}

HostCounters Host::Impl::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const protocol::EndpointCounters& e = endpoint_.counters();
  HostCounters h;
  h.invalid_datagrams = e.invalid_datagrams;
  h.unknown_connection = e.unknown_connection;
  h.wrong_source = e.wrong_source;
  h.bad_cookies = e.bad_cookies;
  h.handshake_failures = e.handshake_failures;
  h.retries_sent = e.retries_sent;
  h.unproven_initiations = e.unproven_initiations;
  h.rejects_sent = e.rejects_sent;
  for (const auto& s : sockets_) {
    const io::UdpSocket::Counters& sc = s->socket->counters();
    h.datagrams_received += sc.datagrams_received;
    h.datagrams_sent += sc.datagrams_sent;
    h.socket_receive_errors += sc.receive_errors;
    h.socket_send_errors += sc.send_errors;
    h.send_would_block += sc.send_would_block;
  }
  for (const auto* imp : {send_impairment_ ? &*send_impairment_ : nullptr,
                          receive_impairment_ ? &*receive_impairment_ : nullptr}) {
    if (imp) h.simulated_dropped += imp->counters().dropped_loss + imp->counters().dropped_rate_limit;
  }
  h.connections = endpoint_.connection_count();
  h.events_dropped = events_dropped_;
  h.signaling_sent = signaling_sent_;
  h.ice_restarts = ice_restarts_;
  if (plugins_) {
    const host::SignalingPlugins::Counters pc = plugins_->counters();
    const auto& rc = rz_->counters();
    h.signaling_received = pc.received;
    h.signaling_invalid = pc.invalid + rc.invalid + rc.unknown_session + rc.key_changed;
    h.signaling_wrong_scheme = pc.wrong_scheme;
    h.signaling_dropped = pc.dropped;
  }
  return h;
}

void Host::Impl::after_command(Instant now, bool urgent) {
  bool socket_waits = false;
  if (urgent && !stopping_) {
    transmit(now);
    // A socket that filled up here needs the service thread to watch for POLLOUT.
    for (const auto& s : sockets_)
      socket_waits |= s->blocked || !s->outgoing.empty();
  }
  if (!sleeping_) return;
  if (socket_waits || endpoint_.wants_transmit()) {
    sleeping_ = false;  // one wake-up is enough until the service thread plans its next sleep
    loop_.wake();
  } else if (endpoint_.next_timeout() < sleep_deadline_) {
    // A timer armed by this command (a sent packet's loss timer, say) comes before the service thread's
    // planned wake-up: it sleeps on and wakes for it then, unless a datagram comes first (the reply that
    // cancels it, usually). A ping-pong's every send would otherwise cost a service-thread wake-up.
    sleep_deadline_ = endpoint_.next_timeout();
    deadline_pulled_ = true;
    loop_.wake_at(sleep_deadline_);
  }
}

}  // namespace peerlink
