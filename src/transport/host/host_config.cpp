// HostConfig::validate: garbage configuration gets a sentence saying what is wrong, not a crash later.
#include <cmath>
#include <string>

#include "peerlink/host.hpp"

namespace peerlink {

namespace {

std::string check_impairment(const NetworkImpairment& n, const char* direction) {
  auto bad_percent = [](double p) { return !std::isfinite(p) || p < 0 || p > 100; };
  std::string d = std::string("simulation.") + direction + ".";
  if (bad_percent(n.loss_percent)) return d + "loss_percent must be within 0–100";
  if (bad_percent(n.reorder_percent)) return d + "reorder_percent must be within 0–100";
  if (bad_percent(n.duplicate_percent)) return d + "duplicate_percent must be within 0–100";
  if (n.lag.count() < 0 || n.jitter.count() < 0 || n.reorder_lag.count() < 0 ||
      n.duplicate_lag_max.count() < 0)
    return d + "delays must not be negative";
  if (n.lag > std::chrono::seconds(60) || n.jitter > std::chrono::seconds(60) ||
      n.reorder_lag > std::chrono::seconds(60) || n.duplicate_lag_max > std::chrono::seconds(60))
    return d + "delays above 60 s are not supported";
  if (n.rate_limit_bytes_per_second > 0 && n.rate_limit_burst_bytes < 2048)
    return d + "rate_limit_burst_bytes must be at least 2048 (one datagram)";
  return {};
}

std::string problem_of(const HostConfig& c) {
  using std::chrono::milliseconds;
  // A day bounds every duration: beyond it the nanosecond clock arithmetic could overflow, and nobody
  // means it (an idle timeout of "forever" is better served by keepalives).
  const milliseconds day = std::chrono::hours(24);
  if (c.connect_timeout < milliseconds(100) || c.connect_timeout > day)
    return "connect_timeout must be within 100 ms and 24 h";
  if (c.idle_timeout < milliseconds(100) || c.idle_timeout > day)
    return "idle_timeout must be within 100 ms and 24 h";
  if (c.keepalive_interval <= milliseconds(0) || c.keepalive_interval > day)
    return "keepalive_interval must be positive and at most 24 h";
  if (c.linger_timeout < milliseconds(0) || c.linger_timeout > day)
    return "linger_timeout must be within 0 and 24 h";
  if (c.send_buffer_bytes < (64u << 10)) return "send_buffer_bytes must be at least 64 KiB";
  if (c.receive_buffer_bytes < (64u << 10)) return "receive_buffer_bytes must be at least 64 KiB";
  if (c.max_message_size == 0) return "max_message_size must be positive";
  if (c.max_message_size > c.send_buffer_bytes)
    return "max_message_size must not exceed send_buffer_bytes (such a message could never be sent)";
  if (c.max_message_size > c.receive_buffer_bytes)
    return "max_message_size must not exceed receive_buffer_bytes (such a message could never be "
           "received)";
  if (c.max_connections == 0) return "max_connections must be positive";
  if (c.socket_buffer_bytes < 0) return "socket_buffer_bytes must not be negative";
  if (int(c.log_level) < int(LogLevel::kError) || int(c.log_level) > int(LogLevel::kTrace))
    return "log_level is not a LogLevel";
  if (c.callback_thread != CallbackThread::kApplication && c.callback_thread != CallbackThread::kService)
    return "callback_thread is not a CallbackThread";
  if (c.congestion_control != CongestionControl::kBbr && c.congestion_control != CongestionControl::kCubic &&
      c.congestion_control != CongestionControl::kNewReno)
    return "congestion_control is not a CongestionControl";
  if (c.address_validation != AddressValidation::kUnderLoad &&
      c.address_validation != AddressValidation::kAlways && c.address_validation != AddressValidation::kNever)
    return "address_validation is not an AddressValidation";
  if (c.wait_spin.count() < 0 || c.wait_spin > std::chrono::milliseconds(10))
    return "wait_spin must be within 0 and 10 ms";
  std::string e = check_impairment(c.simulation.send, "send");
  if (e.empty()) e = check_impairment(c.simulation.receive, "receive");
  if (!e.empty()) return e;
  std::vector<std::string> schemes;
  for (size_t i = 0; i < c.signaling.size(); ++i) {
    const auto& plugin = c.signaling[i];
    if (!plugin) return "signaling: a plugin is null";
    for (size_t j = 0; j < i; ++j)
      if (c.signaling[j] == plugin) return "signaling: the same plugin is given twice";
    std::string scheme = plugin->scheme();
    if (!PeerId::parse(scheme + ":x"))
      return "signaling: a plugin's scheme '" + scheme + "' is not a valid scheme";
    for (const auto& other : schemes)
      if (other == scheme) return "signaling: two plugins serve the scheme '" + scheme + "'";
    schemes.push_back(scheme);
  }
  Result<void> ice_ok = c.ice.validate();
  return ice_ok ? std::string() : ice_ok.error().message;
}

}  // namespace

Result<void> HostConfig::validate() const {
  std::string problem = problem_of(*this);
  if (!problem.empty()) return Error{ErrorCode::kInvalidConfig, problem};
  return {};
}

const char* to_string(ConnectionEventKind kind) {
  switch (kind) {
    case ConnectionEventKind::kIncomingRequest:
      return "incoming request";
    case ConnectionEventKind::kConnected:
      return "connected";
    case ConnectionEventKind::kClosed:
      return "closed";
  }
  return "?";
}

const char* to_string(HostEventKind kind) {
  switch (kind) {
    case HostEventKind::kIncomingRequest:
      return "incoming request";
    case HostEventKind::kConnected:
      return "connected";
    case HostEventKind::kClosed:
      return "closed";
    case HostEventKind::kMessage:
      return "message";
  }
  return "?";
}

}  // namespace peerlink
