// Host: the public calls, forwarded to Host::Impl; its construction and shutdown.
#include <algorithm>
#include <system_error>

#include "transport/host/host_impl.hpp"

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
  switch (c.congestion_control) {
    case CongestionControl::kBbr:
      cc.congestion = protocol::CongestionAlgorithm::kBbr;
      break;
    case CongestionControl::kCubic:
      cc.congestion = protocol::CongestionAlgorithm::kCubic;
      break;
    case CongestionControl::kNewReno:
      cc.congestion = protocol::CongestionAlgorithm::kNewReno;
      break;
  }
  e.max_connections = c.max_connections;
  switch (c.address_validation) {
    case AddressValidation::kUnderLoad:
      e.retry = protocol::RetryPolicy::kUnderLoad;
      break;
    case AddressValidation::kAlways:
      e.retry = protocol::RetryPolicy::kAlways;
      break;
    case AddressValidation::kNever:
      e.retry = protocol::RetryPolicy::kNever;
      break;
  }
  e.accept_incoming = true;  // the Host decides per listen socket
  return e;
}

HostConfig checked(HostConfig config) {
  config.validate().value();  // throws Exception (kInvalidConfig) if it is not usable
  return config;
}

}  // namespace

// --- Host: forwards to Impl ---

Host::Host(HostConfig config) : impl_(std::make_unique<Impl>(checked(std::move(config)))) {}

Result<std::unique_ptr<Host>> Host::create(HostConfig config) {
  try {
    return std::make_unique<Host>(std::move(config));
  } catch (const Exception& e) {
    return e.error();
  } catch (const std::system_error& e) {
    return Error{ErrorCode::kSystem, e.what()};
  } catch (const std::exception& e) {  // a plugin's start() threw
    return Error{ErrorCode::kPluginFailed, std::string("a signaling plugin failed to start: ") + e.what()};
  } catch (...) {
    return Error{ErrorCode::kPluginFailed, "a signaling plugin failed to start"};
  }
}

Host::~Host() = default;
const Identity& Host::identity() const {
  return impl_->identity();
}
Result<ListenSocketHandle> Host::listen(uint16_t port, const ListenOptions& options) {
  return impl_->listen(Address::any_v6(port), options);
}
Result<ListenSocketHandle> Host::listen(const Address& address, const ListenOptions& options) {
  return impl_->listen(address, options);
}
std::optional<Address> Host::listen_address(ListenSocketHandle socket) const {
  return impl_->listen_address(socket);
}
bool Host::close_listen_socket(ListenSocketHandle socket) {
  return impl_->close_listen_socket(socket);
}
Result<ListenSocketHandle> Host::listen_p2p(const ListenOptions& options) {
  return impl_->listen_p2p(kDefaultVirtualPort, options);
}
Result<ListenSocketHandle> Host::listen_p2p(uint16_t virtual_port, const ListenOptions& options) {
  return impl_->listen_p2p(virtual_port, options);
}
Result<void> Host::set_ice_servers(const std::vector<StunServer>& stun, const std::vector<TurnServer>& turn) {
  return impl_->set_ice_servers(stun, turn);
}
Result<ConnectionHandle> Host::connect(const PeerId& peer, const ConnectOptions& options) {
  return impl_->connect(peer, options);
}
Result<ConnectionHandle> Host::connect(const Address& to, const ConnectOptions& options) {
  return impl_->connect(to, options);
}
bool Host::accept(ConnectionHandle c) {
  return impl_->accept(c);
}
bool Host::reject(ConnectionHandle c, const std::string& debug) {
  return impl_->reject(c, debug);
}
bool Host::close(ConnectionHandle c, CloseMode mode, uint32_t reason, const std::string& debug) {
  return impl_->close(c, mode, reason, debug);
}
SendResult Host::send(ConnectionHandle c, const void* data, size_t size, uint32_t flags, uint32_t lane) {
  return impl_->send(c, data, size, flags, lane);
}
SendResult Host::send(ConnectionHandle c, std::vector<uint8_t>&& message, uint32_t flags, uint32_t lane) {
  return impl_->send(c, std::move(message), flags, lane);
}
void Host::send_batch(const OutgoingMessage* messages, size_t count, SendResult* results) {
  impl_->send_batch(messages, count, results);
}
bool Host::service(HostEvent& event, std::chrono::milliseconds timeout) {
  return impl_->service(event, timeout);
}
size_t Host::receive(ConnectionHandle c, std::vector<Message>& out, size_t max) {
  return impl_->receive(c, out, max);
}
size_t Host::receive_on_poll_group(PollGroupHandle group, std::vector<Message>& out, size_t max) {
  return impl_->receive_group(group, out, max);
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
std::map<PeerId, PublicKey> Host::known_keys() const {
  return impl_->known_keys();
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
  known_keys_ = config_.known_keys;
  // HostConfig::receive_on_wait: wait() polls the sockets only with kApplication callbacks and no simulation.
  if (config_.receive_on_wait && config_.callback_thread == CallbackThread::kApplication &&
      !config_.simulation.active())
    poller_wake_ = std::make_unique<io::EventFd>();
  io::keep_udp_gro_enabled();  // here, not in the first connect (udp_socket.hpp)
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
    std::vector<ConnectionHandle> held;
    held.reserve(handles_.size());
    for (const auto& [c, h] : handles_)
      held.push_back(c);
    // A peer-to-peer connection still being set up tells its peer through the signaling (the service
    // thread sends that before it stops).
    for (ConnectionHandle c : held)
      release(c, CloseMode::kNow, uint32_t(EndReason::kLocalShutdown), "host shut down", now);
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

}  // namespace peerlink
