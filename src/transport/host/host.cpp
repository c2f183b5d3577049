// Host: the application-facing calls. Each takes the Host's lock for a short, bounded piece of work on the
// Endpoint and its tables, then wakes the service thread only if it has to.
#include <algorithm>
#include <stdexcept>

#include "transport/host/host_impl.hpp"
#include "transport/io/path_codec.hpp"

namespace peerlink {

using protocol::Instant;

namespace {

protocol::EndpointConfig endpoint_config(const HostConfig& c) {
  protocol::EndpointConfig e;
  protocol::ConnectionConfig& cc = e.connection;
  cc.connect_timeout = c.connect_timeout;
  cc.idle_timeout = c.idle_timeout;
  cc.keepalive_interval = c.keepalive_interval;
  cc.linger_timeout = c.linger_timeout;
  cc.send_buffer_limit = c.send_buffer_bytes;
  cc.receive_queue_limit = c.receive_buffer_bytes;
  cc.connection_receive_window = std::min<uint64_t>(cc.connection_receive_window, c.receive_buffer_bytes);
  cc.lane_receive_window = std::min<uint64_t>(cc.lane_receive_window, c.receive_buffer_bytes);
  cc.max_message_size = c.max_message_size;
  e.max_connections = c.max_connections;
  e.retry = c.address_validation ? protocol::RetryPolicy::kAlways : protocol::RetryPolicy::kNever;
  e.accept_incoming = true;  // the Host decides per listen socket
  return e;
}

HostConfig checked(HostConfig config) {
  std::string problem = config.validate();
  if (!problem.empty()) throw std::invalid_argument("peerlink::HostConfig: " + problem);
  return config;
}

}  // namespace

// --- Host: forwards to Impl ---

Host::Host(HostConfig config) : impl_(std::make_unique<Impl>(checked(std::move(config)))) {}
Host::~Host() = default;
const Identity& Host::identity() const {
  return impl_->identity();
}
ListenSocketHandle Host::listen(uint16_t port, const ListenOptions& options, std::string* error) {
  return impl_->listen(port, options, error);
}
std::optional<Address> Host::listen_address(ListenSocketHandle socket) const {
  return impl_->listen_address(socket);
}
bool Host::close_listen_socket(ListenSocketHandle socket) {
  return impl_->close_listen_socket(socket);
}
ConnectionHandle Host::connect(const Address& to, const ConnectOptions& options, std::string* error) {
  return impl_->connect(to, options, error);
}
ListenSocketHandle Host::listen_p2p(const ListenOptions& options, std::string* error) {
  return impl_->listen_p2p(options, error);
}
bool Host::set_ice_servers(const std::vector<StunServer>& stun, const std::vector<TurnServer>& turn,
                           std::string* error) {
  return impl_->set_ice_servers(stun, turn, error);
}
ConnectionHandle Host::connect(const PeerId& peer, const ConnectOptions& options, std::string* error) {
  return impl_->connect(peer, options, error);
}
bool Host::accept(ConnectionHandle c) {
  return impl_->accept(c);
}
bool Host::reject(ConnectionHandle c, const std::string& debug) {
  return impl_->reject(c, debug);
}
bool Host::close(ConnectionHandle c, uint32_t reason, const std::string& debug, bool linger) {
  return impl_->close(c, reason, debug, linger);
}
SendResult Host::send(ConnectionHandle c, const void* data, size_t size, uint32_t flags, uint32_t lane) {
  return impl_->send(c, data, size, flags, lane);
}
void Host::send_batch(const OutgoingMessage* messages, size_t count, SendResult* results) {
  impl_->send_batch(messages, count, results);
}
size_t Host::receive(ConnectionHandle c, std::vector<Message>& out, size_t max) {
  return impl_->receive(c, out, max);
}
size_t Host::receive_on_poll_group(PollGroupHandle group, std::vector<Message>& out, size_t max) {
  if (group == kInvalidPollGroup) return 0;
  return impl_->receive_group(group, out, max);
}
size_t Host::receive_all(std::vector<Message>& out, size_t max) {
  return impl_->receive_group(kInvalidPollGroup, out, max);
}
PollGroupHandle Host::create_poll_group() {
  return impl_->create_poll_group();
}
bool Host::destroy_poll_group(PollGroupHandle group) {
  return impl_->destroy_poll_group(group);
}
bool Host::set_poll_group(ConnectionHandle c, PollGroupHandle group) {
  return impl_->set_poll_group(c, group);
}
bool Host::configure_lanes(ConnectionHandle c, const std::vector<LaneConfig>& lanes) {
  return impl_->configure_lanes(c, lanes);
}
bool Host::set_user_data(ConnectionHandle c, uint64_t user_data) {
  return impl_->set_user_data(c, user_data);
}
std::optional<ConnectionInfo> Host::connection_info(ConnectionHandle c) const {
  return impl_->connection_info(c);
}
std::optional<ConnectionStatus> Host::status(ConnectionHandle c) const {
  return impl_->status(c);
}
std::vector<ConnectionHandle> Host::connections() const {
  return impl_->connections();
}
HostCounters Host::counters() const {
  return impl_->counters();
}
void Host::set_connection_callback(ConnectionCallback callback) {
  impl_->set_connection_callback(std::move(callback));
}
bool Host::set_message_callback(MessageCallback callback) {
  return impl_->set_message_callback(std::move(callback));
}
size_t Host::run_callbacks() {
  return impl_->run_callbacks();
}
bool Host::wait(std::chrono::milliseconds timeout) {
  return impl_->wait(timeout);
}

// --- Impl: construction and shutdown ---

Host::Impl::Impl(HostConfig config)
    : config_(std::move(config)),
      log_(config_.log_level, config_.log_sink),
      endpoint_(endpoint_config(config_), config_.identity, rng_),
      receive_batch_(16) {
  if (config_.simulation.active()) {
    uint64_t seed = config_.simulation.seed != 0 ? config_.simulation.seed : rng_.next_u64();
    if (config_.simulation.send.active()) send_impairment_.emplace(config_.simulation.send, seed);
    if (config_.simulation.receive.active())
      receive_impairment_.emplace(config_.simulation.receive, seed ^ 0x9e3779b97f4a7c15ull);
    log_.log(LogLevel::kWarning, "network simulation is on (seed %llu): datagrams are impaired on purpose",
             static_cast<unsigned long long>(seed));
  }
  log_.log(LogLevel::kInfo, "host %s starting", config_.identity.fingerprint().c_str());
  start_p2p();
  log_.flush();
  try {
    thread_ = std::thread([this] { service_main(); });
  } catch (...) {
    stop_p2p();
    throw;
  }
}

Host::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Instant now = io::monotonic_now();
    for (const auto& [c, h] : handles_) {
      endpoint_.close(c, uint32_t(EndReason::kLocalShutdown), "host shut down", false, now);
      release_p2p(c, uint32_t(EndReason::kLocalShutdown), now);
    }
    handles_.clear();
    stopping_ = true;
    // Connections closed with linger get their linger time; the rest only need their CLOSE sent.
    protocol::Duration grace = endpoint_.lingering_count() > 0 ? protocol::Duration(config_.linger_timeout)
                                                               : protocol::milliseconds(100);
    stop_deadline_ = now + grace;
  }
  loop_.wake();
  thread_.join();
  stop_p2p();
  log_.log(LogLevel::kInfo, "host %s stopped", config_.identity.fingerprint().c_str());
  log_.flush();
}

// --- listen sockets ---

ListenSocketHandle Host::Impl::listen(uint16_t port, const ListenOptions& options, std::string* error) {
  Address bind = options.address.is_unspecified() ? Address::any_v6(port) : options.address;
  bind.set_port(port);
  std::string why;
  io::UdpSocketOptions so;
  so.receive_buffer_bytes = so.send_buffer_bytes = config_.socket_buffer_bytes;
  auto socket = io::UdpSocket::open(bind, so, &why);
  ListenSocketHandle handle = kInvalidListenSocket;
  if (socket) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (sockets_.size() >= kMaxSockets) {
      why = "too many sockets (at most 255 per Host)";
    } else if (options.poll_group != kInvalidPollGroup && !groups_.count(options.poll_group)) {
      why = "no such poll group";
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
  if (handle == kInvalidListenSocket) {
    if (error) *error = why;
    log_.log(LogLevel::kWarning, "listen(%u): %s", unsigned(port), why.c_str());
  }
  log_.flush();
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
  if (socket != kInvalidListenSocket && socket == p2p_listen_) {
    p2p_listen_ = kInvalidListenSocket;
    rz_->set_listening(false);  // new requests are refused; connections made through it go on
    return true;
  }
  for (auto& s : sockets_) {
    if (s->listen == socket && socket != kInvalidListenSocket && s->accepting) {
      s->accepting = false;  // the socket stays open for the connections that came through it
      return true;
    }
  }
  return false;
}

// --- connections ---

std::optional<uint8_t> Host::Impl::client_socket_for(const Address& to, std::string* error) {
  if (!client_socket_) {
    if (sockets_.size() >= kMaxSockets) {
      if (error) *error = "too many sockets (at most 255 per Host)";
      return std::nullopt;
    }
    io::UdpSocketOptions so;
    so.receive_buffer_bytes = so.send_buffer_bytes = config_.socket_buffer_bytes;
    std::string why;
    auto socket = io::UdpSocket::open(config_.bind_address, so, &why);
    if (!socket) {
      if (error) *error = "cannot open a UDP socket: " + why;
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
    if (error)
      *error =
          "cannot reach " + to.to_string() + " from the socket bound to " + s.local_address().to_string();
    return std::nullopt;
  }
  return client_socket_;
}

ConnectionHandle Host::Impl::connect(const Address& to, const ConnectOptions& options, std::string* error) {
  ConnectionHandle c = kInvalidConnection;
  std::string why;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (to.is_unspecified() || to.is_any() || to.port() == 0) {
      why = "cannot connect to " + to.to_string() + ": an address with a port is needed";
    } else if (handles_.size() >= config_.max_connections) {
      why = "too many connections (HostConfig::max_connections)";
    } else if (options.poll_group != kInvalidPollGroup && !groups_.count(options.poll_group)) {
      why = "no such poll group";
    } else {
      std::optional<uint8_t> index = client_socket_for(to, &why);
      if (index) {
        Instant now = io::monotonic_now();
        c = endpoint_.connect(now, io::encode_path(*index, to.unmapped()), options.expected_key);
        HandleState& h = handles_[c];
        h.user_data = options.user_data;
        h.group = options.poll_group;
        if (h.group != kInvalidPollGroup) endpoint_.set_poll_group(c, h.group);
        log_.log(LogLevel::kInfo, "connection %u: connecting to %s", c, to.to_string().c_str());
        after_command(now, true);
      }
    }
    if (c == kInvalidConnection) log_.log(LogLevel::kWarning, "connect: %s", why.c_str());
  }
  log_.flush();
  if (c == kInvalidConnection && error) *error = why;
  return c;
}

bool Host::Impl::awaiting_accept(ConnectionHandle c) const {
  if (p2p_.count(c)) return handles_.count(c) && rz_->awaiting_accept(c);
  const protocol::Connection* conn = endpoint_.connection(c);
  return handles_.count(c) && conn && conn->awaiting_accept();
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

bool Host::Impl::close(ConnectionHandle c, uint32_t reason, const std::string& debug, bool linger) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = handles_.find(c);
    if (it == handles_.end()) return false;
    handles_.erase(it);
    Instant now = io::monotonic_now();
    endpoint_.close(c, reason, debug, linger, now);
    release_p2p(c, reason, now);
    log_.log(LogLevel::kInfo, "connection %u: closed by the application (%u%s%s%s)", c, reason,
             debug.empty() ? "" : ": ", debug.c_str(), linger ? ", lingering" : "");
    after_command(now, true);
  }
  log_.flush();
  return true;
}

SendResult Host::Impl::send(ConnectionHandle c, const void* data, size_t size, uint32_t flags,
                            uint32_t lane) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!handles_.count(c)) return SendResult::kNoConnection;
  Instant now = io::monotonic_now();
  SendResult r = send_locked(c, static_cast<const uint8_t*>(data), size, flags, lane, now);
  if (r == SendResult::kOk) after_command(now, (flags & (send_flags::kNoNagle | send_flags::kNoDelay)) != 0);
  return r;
}

void Host::Impl::send_batch(const OutgoingMessage* messages, size_t count, SendResult* results) {
  std::lock_guard<std::mutex> lock(mutex_);
  Instant now = io::monotonic_now();
  bool sent = false, urgent = false;
  for (size_t i = 0; i < count; ++i) {
    const OutgoingMessage& m = messages[i];
    SendResult r = SendResult::kNoConnection;
    if (handles_.count(m.connection))
      r = send_locked(m.connection, static_cast<const uint8_t*>(m.data), m.size, m.flags, m.lane, now);
    if (r == SendResult::kOk) {
      sent = true;
      urgent |= (m.flags & (send_flags::kNoNagle | send_flags::kNoDelay)) != 0;
    }
    if (results) results[i] = r;
  }
  if (sent) after_command(now, urgent);
}

SendResult Host::Impl::send_locked(ConnectionHandle c, const uint8_t* data, size_t size, uint32_t flags,
                                   uint32_t lane, Instant now) {
  auto p = p2p_.find(c);
  if (p == p2p_.end() || p->second.created) return endpoint_.send(c, data, size, flags, lane, now);
  // A peer-to-peer connection still being set up: kept until the Endpoint connection exists.
  P2P& st = p->second;
  if (st.ended) return SendResult::kInvalidState;
  bool reliable = flags & send_flags::kReliable;
  if (size > (reliable ? config_.max_message_size : size_t(64u << 10))) return SendResult::kMessageTooLarge;
  if (!reliable && size == 0) return SendResult::kDropped;
  if (lane != 0) return SendResult::kInvalidLane;  // lanes are configured once connected
  if (st.send_bytes + size > config_.send_buffer_bytes) return SendResult::kLimitExceeded;
  st.sends.push_back({std::vector<uint8_t>(data, data + size), flags, lane});
  st.send_bytes += size;
  return SendResult::kOk;
}

void Host::Impl::take_messages(ConnectionHandle c, const HandleState& h, std::vector<Message>& out,
                               size_t max) {
  protocol::ReceivedMessage m;
  size_t taken = 0;
  while (taken < max && endpoint_.receive(c, m)) {
    out.emplace_back(m.connection, m.lane, m.reliable, m.number, h.user_data, std::move(m.data));
    ++taken;
  }
}

size_t Host::Impl::receive(ConnectionHandle c, std::vector<Message>& out, size_t max) {
  std::lock_guard<std::mutex> lock(mutex_);
  messages_seen_ = endpoint_.messages_delivered();
  auto it = handles_.find(c);
  if (it == handles_.end()) return 0;
  size_t before = out.size();
  take_messages(c, it->second, out, max);
  if (out.size() != before) after_command(io::monotonic_now(), false);  // credit may need announcing
  return out.size() - before;
}

size_t Host::Impl::receive_group(PollGroupHandle group, std::vector<Message>& out, size_t max) {
  std::lock_guard<std::mutex> lock(mutex_);
  messages_seen_ = endpoint_.messages_delivered();
  size_t before = out.size();
  protocol::ReceivedMessage m;
  while (out.size() - before < max && endpoint_.receive_group(group, m)) {
    auto it = handles_.find(m.connection);
    uint64_t user_data = it == handles_.end() ? 0 : it->second.user_data;
    out.emplace_back(m.connection, m.lane, m.reliable, m.number, user_data, std::move(m.data));
  }
  if (out.size() != before) after_command(io::monotonic_now(), false);
  return out.size() - before;
}

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
    h.group = kInvalidPollGroup;
    endpoint_.set_poll_group(c, 0);
  }
  for (auto& s : sockets_)
    if (s->options.poll_group == group) s->options.poll_group = kInvalidPollGroup;
  endpoint_.drop_poll_group(group);
  return true;
}

bool Host::Impl::set_poll_group(ConnectionHandle c, PollGroupHandle group) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(c);
  if (it == handles_.end() || (group != kInvalidPollGroup && !groups_.count(group))) return false;
  it->second.group = group;
  endpoint_.set_poll_group(c, group);
  return true;
}

bool Host::Impl::configure_lanes(ConnectionHandle c, const std::vector<LaneConfig>& lanes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!handles_.count(c)) return false;
  return endpoint_.configure_lanes(c, lanes);
}

bool Host::Impl::set_user_data(ConnectionHandle c, uint64_t user_data) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(c);
  if (it == handles_.end()) return false;
  it->second.user_data = user_data;
  return true;
}

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
    info.route = p.route;
    info.relayed = p.route == RouteType::kRelay;
    info.remote_address = p.remote_address;
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
    info.remote_fingerprint = Identity::fingerprint_of(info.remote_key);
  }
  uint8_t index = 0;
  if (io::decode_path(conn->peer_address(), index, info.remote_address) && index < sockets_.size()) {
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
  s.rtt = duration_cast<microseconds>(st->rtt_smoothed);
  s.rtt_min = duration_cast<microseconds>(st->rtt_min);
  s.rtt_variance = duration_cast<microseconds>(st->rtt_variance);
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
  h.signaling_received = signaling_received_;
  if (rz_) {
    const auto& rc = rz_->counters();
    h.signaling_invalid = rc.invalid + rc.unknown_session + rc.key_changed;
  }
  {
    std::lock_guard<std::mutex> inbox_lock(inbox_mutex_);
    h.signaling_invalid += inbox_invalid_;
    h.signaling_dropped = inbox_dropped_;
  }
  return h;
}

// --- events ---

void Host::Impl::set_connection_callback(ConnectionCallback callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  callback_ = std::move(callback);
  if (config_.callback_thread == CallbackThread::kService && !events_.empty()) loop_.wake();
  activity_.notify_all();
}

bool Host::Impl::set_message_callback(MessageCallback callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (config_.callback_thread != CallbackThread::kService) return false;
  message_callback_ = std::move(callback);
  if (message_callback_) loop_.wake();  // messages already queued go to it
  return true;
}

size_t Host::Impl::run_callbacks() {
  // A callback that calls run_callbacks() again gets 0: the outer call goes on delivering, in order.
  if (delivering_thread_.load() == std::this_thread::get_id()) return 0;
  std::lock_guard<std::mutex> order(callbacks_running_);
  std::deque<ConnectionEvent> batch;
  ConnectionCallback callback;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (config_.callback_thread != CallbackThread::kApplication || !callback_) return 0;
    batch.swap(events_);
    callback = callback_;
  }
  delivering_thread_ = std::this_thread::get_id();
  deliver_events(batch, callback);
  delivering_thread_ = std::thread::id();
  return batch.size();
}

void Host::Impl::deliver_events(const std::deque<ConnectionEvent>& batch,
                                const ConnectionCallback& callback) {
  log_.flush();
  for (const ConnectionEvent& e : batch) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!handles_.count(e.info.handle)) continue;  // released (closed, rejected) since it was queued
    }
    callback(e);
  }
}

bool Host::Impl::wait(std::chrono::milliseconds timeout) {
  log_.flush();
  std::unique_lock<std::mutex> lock(mutex_);
  auto ready = [this] {
    bool events = config_.callback_thread == CallbackThread::kApplication && callback_ && !events_.empty();
    return events || endpoint_.messages_delivered() != messages_seen_;
  };
  if (ready()) return true;
  ++waiters_;
  bool woken = activity_.wait_for(lock, timeout, ready);
  --waiters_;
  return woken;
}

void Host::Impl::after_command(Instant now, bool urgent) {
  bool socket_waits = false;
  if (urgent && !stopping_) {
    transmit(now);
    // A socket that filled up here needs the service thread to watch for POLLOUT.
    for (const auto& s : sockets_)
      socket_waits |= s->blocked || !s->outgoing.empty();
  }
  if (sleeping_ &&
      (socket_waits || endpoint_.wants_transmit() || endpoint_.next_timeout() < sleep_deadline_)) {
    sleeping_ = false;  // one wake-up is enough until the service thread plans its next sleep
    loop_.wake();
  }
}

}  // namespace peerlink
