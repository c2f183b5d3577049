// Logging in and staying logged in: the libstrophe connection's options, TLS and credentials, what ends
// an attempt and whether it is retried, backoff with jitter, the keepalive ping.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "xmpp_impl.hpp"

namespace peerlink {
namespace {

// libstrophe's socket and certificate callbacks carry no user data; they run on the plugin thread, inside
// xmpp_connect_client() or xmpp_run_once(), so the thread knows whose they are.
thread_local XmppSignaling::Impl* current = nullptr;

void on_library_log(void* userdata, xmpp_log_level_t level, const char* area, const char* message) {
  static_cast<XmppSignaling::Impl*>(userdata)->on_library_log(level, area, message);
}
int on_socket(xmpp_conn_t*, void* sock) {
  return current ? current->on_socket(static_cast<int*>(sock)) : 0;
}
int on_certificate_failure(const xmpp_tlscert_t*, const char* message) {
  return current && current->on_certificate_failure(message) ? 1 : 0;
}
void on_connection_event(xmpp_conn_t*, xmpp_conn_event_t event, int error, xmpp_stream_error_t* stream_error,
                         void* userdata) {
  static_cast<XmppSignaling::Impl*>(userdata)->on_connection_event(event, error, stream_error);
}
int on_stanza(xmpp_conn_t*, xmpp_stanza_t* stanza, void* userdata) {
  static_cast<XmppSignaling::Impl*>(userdata)->on_stanza(stanza);
  return 1;  // keep the handler
}

const char* stream_error_name(xmpp_error_type_t type) {
  switch (type) {
    case XMPP_SE_BAD_FORMAT:
      return "bad-format";
    case XMPP_SE_BAD_NS_PREFIX:
      return "bad-namespace-prefix";
    case XMPP_SE_CONFLICT:
      return "conflict";
    case XMPP_SE_CONN_TIMEOUT:
      return "connection-timeout";
    case XMPP_SE_HOST_GONE:
      return "host-gone";
    case XMPP_SE_HOST_UNKNOWN:
      return "host-unknown";
    case XMPP_SE_IMPROPER_ADDR:
      return "improper-addressing";
    case XMPP_SE_INTERNAL_SERVER_ERROR:
      return "internal-server-error";
    case XMPP_SE_INVALID_FROM:
      return "invalid-from";
    case XMPP_SE_INVALID_ID:
      return "invalid-id";
    case XMPP_SE_INVALID_NS:
      return "invalid-namespace";
    case XMPP_SE_INVALID_XML:
      return "invalid-xml";
    case XMPP_SE_NOT_AUTHORIZED:
      return "not-authorized";
    case XMPP_SE_POLICY_VIOLATION:
      return "policy-violation";
    case XMPP_SE_REMOTE_CONN_FAILED:
      return "remote-connection-failed";
    case XMPP_SE_RESOURCE_CONSTRAINT:
      return "resource-constraint";
    case XMPP_SE_RESTRICTED_XML:
      return "restricted-xml";
    case XMPP_SE_SEE_OTHER_HOST:
      return "see-other-host";
    case XMPP_SE_SYSTEM_SHUTDOWN:
      return "system-shutdown";
    case XMPP_SE_UNDEFINED_CONDITION:
      return "undefined-condition";
    case XMPP_SE_UNSUPPORTED_ENCODING:
      return "unsupported-encoding";
    case XMPP_SE_UNSUPPORTED_STANZA_TYPE:
      return "unsupported-stanza-type";
    case XMPP_SE_UNSUPPORTED_VERSION:
      return "unsupported-version";
    case XMPP_SE_XML_NOT_WELL_FORMED:
      return "not-well-formed";
  }
  return "unknown";
}

}  // namespace

// libstrophe 0.12's SHA-1 (src/sha1.c, SHA1_Transform) keeps its working state in a static buffer: two
// threads that log in with SCRAM at the same moment corrupt each other's proofs, and the server refuses
// both ("the response provided by the client doesn't match"). Every XmppSignaling in the process
// therefore drives libstrophe under this lock while it logs in; online, libstrophe hashes nothing.
std::mutex& login_lock() {
  static std::mutex m;
  return m;
}

namespace {

bool contains(const char* text, const char* part) {
  return text && std::strstr(text, part) != nullptr;
}

}  // namespace

bool XmppSignaling::Impl::create_connection() {
  static std::once_flag library_initialised;
  std::call_once(library_initialised, [] { xmpp_initialize(); });  // never undone: other instances may live
  current = this;
  library_log_.handler = &peerlink::on_library_log;
  library_log_.userdata = this;
  ctx_ = xmpp_ctx_new(nullptr, &library_log_);
  if (!ctx_) return false;
  conn_ = xmpp_conn_new(ctx_);
  if (!conn_) return false;
  long flags = XMPP_CONN_FLAG_MANDATORY_TLS;
  if (options_.tls == XmppTls::kInsecureForTestsOnly) flags |= XMPP_CONN_FLAG_TRUST_TLS;
  xmpp_conn_set_flags(conn_, flags);
  xmpp_conn_set_jid(conn_, options_.jid.c_str());
  if (!password_.empty()) xmpp_conn_set_pass(conn_, password_.c_str());
  if (!options_.ca_file.empty()) xmpp_conn_set_cafile(conn_, options_.ca_file.c_str());
  if (!options_.client_cert_file.empty())
    xmpp_conn_set_client_cert(conn_, options_.client_cert_file.c_str(), options_.client_key_file.c_str());
  xmpp_conn_set_certfail_handler(conn_, &peerlink::on_certificate_failure);
  xmpp_conn_set_sockopt_callback(conn_, &peerlink::on_socket);
  xmpp_handler_add(conn_, &peerlink::on_stanza, nullptr, nullptr, nullptr, this);
  return true;
}

void XmppSignaling::Impl::connect_now() {
  auth_failed_ = false;
  resumed_ = false;
  tls_failure_.clear();
  socket_failure_.clear();
  login_timed_out_ = false;
  watchdog_ended_login_ = false;
  attempt_started_ = Clock::now();
  phase_ = Phase::kConnecting;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++status_.attempts;
  }
  if (options_.tls == XmppTls::kInsecureForTestsOnly)
    log(LogLevel::kWarning,
        "TLS certificate verification is OFF (XmppTls::kInsecureForTestsOnly): anyone on the path can read "
        "and change this session; never use this outside tests");
  const std::string where = options_.host.empty()
                                ? account_.domain + " (DNS SRV)"
                                : options_.host + ":" + std::to_string(options_.port ? options_.port : 5222);
  log(LogLevel::kInfo, "connecting to " + where);
  const int rc = xmpp_connect_client(conn_, options_.host.empty() ? nullptr : options_.host.c_str(),
                                     options_.port, &peerlink::on_connection_event, this);
  if (rc != 0) {
    unwatch();
    attempt_failed(socket_failure_.empty() ? XmppFailure::kNetwork : XmppFailure::kConfiguration,
                   socket_failure_.empty()
                       ? "cannot connect to " + where + " (no address, refused or unreachable)"
                       : socket_failure_,
                   false);
  }
}

void XmppSignaling::Impl::on_connection_event(xmpp_conn_event_t event, int error,
                                              xmpp_stream_error_t* stream_error) {
  if (event == XMPP_CONN_CONNECT) {
    on_online();
    return;
  }
  if (event != XMPP_CONN_DISCONNECT && event != XMPP_CONN_FAIL) return;
  socket_ = -1;
  unwatch();
  low_fd_.re_reserve();
  const bool was_online = phase_ == Phase::kOnline;
  if (shutting_down_) {
    phase_ = Phase::kWaiting;
    return;
  }
  XmppFailure failure = XmppFailure::kNetwork;
  std::string reason;
  bool final = false;
  if (auth_failed_) {
    failure = XmppFailure::kCredentials;
    reason = password_.empty()
                 ? "authentication failed: the server refused the client certificate"
                 : "authentication failed: the server refused the password for " + account_.bare();
    final = true;
  } else if ((login_timed_out_ || watchdog_ended_login_) && !was_online) {
    failure = XmppFailure::kServer;
    reason = "the server did not complete the login within " +
             std::to_string(options_.login_timeout.count()) + " ms";
  } else if (!tls_failure_.empty()) {  // (after a timeout: the socket we shut down fails the handshake)
    failure = XmppFailure::kTls;
    reason = tls_failure_;
    final = true;
  } else if (stream_error) {
    const char* name = stream_error_name(stream_error->type);
    reason = std::string("the server ended the stream: ") + name;
    if (stream_error->text && *stream_error->text) reason += std::string(" (") + stream_error->text + ")";
    failure = XmppFailure::kServer;
    switch (stream_error->type) {
      case XMPP_SE_NOT_AUTHORIZED:
        failure = XmppFailure::kCredentials;
        final = true;
        break;
      case XMPP_SE_CONFLICT:
        reason += ": another client logged in with the same resource";
        final = true;  // reconnecting would only throw that client out in turn
        break;
      case XMPP_SE_HOST_UNKNOWN:
      case XMPP_SE_IMPROPER_ADDR:
        failure = XmppFailure::kConfiguration;
        reason += ": the server does not serve " + account_.domain;
        final = true;
        break;
      default:
        break;
    }
  } else if (!socket_failure_.empty()) {
    failure = XmppFailure::kConfiguration;
    reason = socket_failure_;
  } else {
    // libstrophe reports an errno, or once TLS runs, an OpenSSL error code (small numbers that strerror()
    // would misname): only errno values of the network range are spelt out.
    const std::string detail = error >= 100 ? std::string(": ") + std::strerror(error) : "";
    reason = was_online ? "the connection to the server was lost" + detail
                        : (error ? "the connection failed" + detail
                                 : "the server closed the connection before the login completed");
  }
  attempt_failed(failure, reason, final);
}

void XmppSignaling::Impl::attempt_failed(XmppFailure failure, const std::string& reason, bool final) {
  ping_id_.clear();
  settled_ = false;
  if (final) {
    phase_ = Phase::kFailed;
    log(LogLevel::kError, "giving up: " + reason);
    set_status(XmppState::kFailed, failure, reason);
    std::deque<Held> held;
    held.swap(held_);
    for (const Held& h : held)
      unreachable(h.to, "XMPP is not logged in: " + reason);
    return;
  }
  phase_ = Phase::kWaiting;
  ++attempts_;
  const double base = static_cast<double>(options_.reconnect_min.count()) *
                      static_cast<double>(1ull << std::min<uint32_t>(attempts_ - 1, 20));
  const double capped = std::min(base, static_cast<double>(options_.reconnect_max.count()));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  const auto delay = std::chrono::milliseconds(static_cast<int64_t>(capped * jitter(random_)));
  next_attempt_ = Clock::now() + delay;
  log(LogLevel::kWarning, reason + "; next attempt in " + std::to_string(delay.count()) + " ms");
  set_status(XmppState::kReconnecting, failure, reason);
}

void XmppSignaling::Impl::on_online() {
  const char* bound = xmpp_conn_get_bound_jid(conn_);
  std::optional<xmpp::Jid> self = bound ? xmpp::Jid::parse(bound) : std::nullopt;
  // A JID's parts may be 1023 bytes each, a PeerId's name at most 1000.
  Result<PeerId> self_id = self ? PeerId::parse("xmpp:" + self->full()) : Result<PeerId>(PeerId{});
  if (!self || !self->is_full() || !self_id) {
    log(LogLevel::kError, std::string("the server bound no usable JID: ") + (bound ? bound : "(none)"));
    shutdown(socket_, SHUT_RDWR);
    return;
  }
  const bool reconnect = ever_online_;
  ever_online_ = true;
  phase_ = Phase::kOnline;
  unwatch();  // the handshakes are done, and the socket's only descriptor is the one select() can take
  attempts_ = 0;
  last_received_ = online_since_ = Clock::now();
  ping_id_.clear();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    local_peer_ = *self_id;
    status_.jid = self->full();
    if (reconnect) ++counters_.reconnects;
    if (reconnect && resumed_) ++counters_.resumed;
  }
  log(LogLevel::kInfo, "logged in as " + self->full() + (resumed_ ? " (session resumed)" : ""));
  // A fresh session reports kOnline once the roster and the contacts' presence are in (settled), so that a
  // program that waits for kOnline and then connects finds its contacts online.
  start_session(*self, resumed_);
  if (resumed_) set_status(XmppState::kOnline, XmppFailure::kNone, "session resumed");
}

void XmppSignaling::Impl::keepalive(Clock::time_point now) {
  if (ping_id_.empty()) {
    if (now - last_received_ < options_.ping_interval) return;
    ping_id_ = next_id("ping");
    ping_sent_ = now;
    send_raw(xmpp::ping_iq(account_.domain, ping_id_));
  } else if (now - ping_sent_ >= options_.ping_timeout) {
    log(LogLevel::kWarning, "the server did not answer a ping within " +
                                std::to_string(options_.ping_timeout.count()) + " ms: reconnecting");
    ping_id_.clear();
    // An abrupt close (not </stream:stream>) keeps the session resumable (XEP-0198).
    if (socket_ >= 0) shutdown(socket_, SHUT_RDWR);
  }
}

void XmppSignaling::Impl::shut_down_connection() {
  shutting_down_ = true;
  if (conn_) {
    if (phase_ == Phase::kOnline && xmpp_conn_is_connected(conn_)) {
      send_raw(xmpp::unavailable_presence());
      xmpp_disconnect(conn_);
      const Clock::time_point give_up = Clock::now() + std::chrono::milliseconds(500);
      while (!xmpp_conn_is_disconnected(conn_) && Clock::now() < give_up)
        xmpp_run_once(ctx_, 10);
    }
    xmpp_conn_release(conn_);  // closes a connection still open
    conn_ = nullptr;
  }
  unwatch();
  if (ctx_) {
    xmpp_ctx_free(ctx_);
    ctx_ = nullptr;
  }
  current = nullptr;
}

void XmppSignaling::Impl::send_raw(const std::string& stanza) {
  if (conn_ && phase_ == Phase::kOnline) xmpp_send_raw(conn_, stanza.data(), stanza.size());
}

std::string XmppSignaling::Impl::next_id(const char* kind) {
  // Unique by the counter; not guessable by whoever sees our earlier ids by the random tail.
  char tail[20];
  std::snprintf(tail, sizeof tail, "-%016llx", static_cast<unsigned long long>(random_()));
  return id_prefix_ + kind + std::to_string(++id_counter_) + tail;
}

void XmppSignaling::Impl::on_library_log(xmpp_log_level_t level, const char* area, const char* message) {
  // libstrophe logs every stanza (and stream header) it receives: the loop's measure of progress.
  if (message && std::strncmp(message, "RECV:", 5) == 0) ++library_receives_;
  if (contains(message, "Cannot authenticate with known methods") ||
      contains(message, "Password hasn't been set"))
    auth_failed_ = true;
  else if (contains(message, "TLS is not supported, but set as mandatory"))
    tls_failure_ = "the server does not offer TLS (STARTTLS), which is required";
  else if (contains(message, "Session resumed successfully"))
    resumed_ = true;
  if (log_level_ < LogLevel::kTrace && level < XMPP_LEVEL_WARN) return;
  // SASL exchanges would show credentials (PLAIN carries the password in base64): never logged.
  if (contains(message, "<auth") || contains(message, "<response") || contains(message, "<challenge") ||
      contains(message, "<success"))
    return;
  log(level >= XMPP_LEVEL_WARN ? LogLevel::kDebug : LogLevel::kTrace,
      std::string("libstrophe ") + (area ? area : "") + ": " + (message ? message : ""));
}

bool XmppSignaling::Impl::on_certificate_failure(const char* message) {
  tls_failure_ =
      std::string("the server's certificate does not verify: ") + (message ? message : "?") +
      (options_.ca_file.empty() ? " (checked against the system's CAs; XmppOptions::ca_file names others)"
                                : " (checked against " + options_.ca_file + ")");
  return false;  // refuse the connection
}

int XmppSignaling::Impl::on_socket(int* fd) {
  std::string why;
  if (!low_fd_.make_selectable(fd, &why)) {
    socket_failure_ = why;
    return -1;
  }
  const int one = 1;
  setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // else stanzas wait 4-90 ms (DESIGN §7)
  socket_ = *fd;
  watch(*fd, attempt_started_ + options_.login_timeout + kWatchdogGrace);
  return 0;
}

}  // namespace peerlink
