// XmppSignaling: the public class, its queue, status and counters, and the plugin thread's loop.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "xmpp_impl.hpp"

namespace peerlink {
namespace {

constexpr size_t kMaxQueued = 512;
constexpr auto kSettleTimeout = std::chrono::seconds(5);

Error config_error(std::string message) {
  return Error{ErrorCode::kInvalidConfig, "XmppOptions: " + message};
}

}  // namespace

const char* to_string(XmppState state) {
  switch (state) {
    case XmppState::kIdle:
      return "idle";
    case XmppState::kConnecting:
      return "connecting";
    case XmppState::kOnline:
      return "online";
    case XmppState::kReconnecting:
      return "reconnecting";
    case XmppState::kFailed:
      return "failed";
    case XmppState::kStopped:
      return "stopped";
  }
  return "?";
}

const char* to_string(XmppFailure failure) {
  switch (failure) {
    case XmppFailure::kNone:
      return "none";
    case XmppFailure::kCredentials:
      return "credentials";
    case XmppFailure::kTls:
      return "tls";
    case XmppFailure::kNetwork:
      return "network";
    case XmppFailure::kServer:
      return "server";
    case XmppFailure::kConfiguration:
      return "configuration";
  }
  return "?";
}

Result<void> XmppOptions::validate() const {
  std::string why;
  std::optional<xmpp::Jid> j = xmpp::Jid::parse(jid, &why);
  if (!j) return config_error("jid '" + jid + "' is not a JID: " + why);
  if (j->local.empty()) return config_error("jid '" + jid + "' has no user part (user@domain)");
  if (Result<PeerId> id = PeerId::parse("xmpp:" + j->full()); !id)
    return config_error("jid '" + jid + "' cannot name a peer: " + id.error().message);
  const int secrets = int(!password.empty()) + int(!password_file.empty()) + int(!password_env.empty());
  const bool certificate = !client_cert_file.empty() || !client_key_file.empty();
  if (secrets > 1) return config_error("give one of password, password_file and password_env");
  if (certificate && (client_cert_file.empty() || client_key_file.empty()))
    return config_error("a client certificate needs both client_cert_file and client_key_file");
  if (secrets == 0 && !certificate)
    return config_error("no credentials: set password, password_file, password_env or a client certificate");
  if (ping_interval < std::chrono::milliseconds(100) || ping_timeout < std::chrono::milliseconds(100) ||
      login_timeout < std::chrono::milliseconds(100))
    return config_error("ping_interval, ping_timeout and login_timeout must be at least 100 ms");
  if (reconnect_min < std::chrono::milliseconds(10) || reconnect_max < reconnect_min)
    return config_error("reconnect_min must be at least 10 ms and reconnect_max at least reconnect_min");
  if (host.find_first_of(" /@") != std::string::npos)
    return config_error("host '" + host + "' is not a host name");
  return {};
}

// --- construction and the public calls ---

namespace {

Result<std::string> read_password(const XmppOptions& o) {
  if (!o.password.empty()) return o.password;
  if (!o.password_env.empty()) {
    const char* v = std::getenv(o.password_env.c_str());
    if (!v || !*v)
      return config_error("password_env: the environment variable " + o.password_env +
                          " is not set or empty");
    return std::string(v);
  }
  if (!o.password_file.empty()) {
    std::ifstream f(o.password_file);
    std::string line;
    if (!f || !std::getline(f, line))
      return Error{ErrorCode::kFile, "XmppOptions: password_file " + o.password_file + " cannot be read"};
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty())
      return Error{ErrorCode::kFile,
                   "XmppOptions: password_file " + o.password_file + " starts with an empty line"};
    return line;
  }
  return std::string();  // a client certificate
}

}  // namespace

XmppSignaling::Impl::Impl(XmppOptions options)
    : options_(std::move(options)), random_(std::random_device{}()) {
  options_.validate().value();
  account_ = *xmpp::Jid::parse(options_.jid);
  password_ = read_password(options_).value();
  for (const std::string* file : {&options_.ca_file, &options_.client_cert_file, &options_.client_key_file}) {
    if (!file->empty() && access(file->c_str(), R_OK) != 0)
      throw Exception(
          Error{ErrorCode::kFile, "XmppOptions: " + *file + " cannot be read: " + std::strerror(errno)});
  }
  log_level_ = options_.log_level;
  if (const char* env = std::getenv("PEERLINK_LOG")) {
    if (std::optional<LogLevel> l = parse_log_level(env)) log_level_ = *l;
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0)
    throw Exception(
        Error{ErrorCode::kSystem, std::string("XmppSignaling: eventfd: ") + std::strerror(errno)});
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "pl%04x", static_cast<unsigned>(random_() & 0xffff));
  id_prefix_ = prefix;
}

XmppSignaling::Impl::~Impl() {
  stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

XmppStatus XmppSignaling::Impl::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

XmppCounters XmppSignaling::Impl::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

bool XmppSignaling::Impl::wait_online(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  status_changed_.wait_for(lock, timeout, [&] {
    return status_.state == XmppState::kOnline || status_.state == XmppState::kFailed ||
           status_.state == XmppState::kStopped;
  });
  return status_.state == XmppState::kOnline;
}

std::vector<PeerId> XmppSignaling::Impl::contacts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return contacts_;
}

PeerId XmppSignaling::Impl::local_peer() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return local_peer_;
}

void XmppSignaling::Impl::start(SignalingSink& sink) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_) throw Exception(Error{ErrorCode::kAlreadyExists, "XmppSignaling: already started"});
    started_ = true;
    status_.state = XmppState::kConnecting;
  }
  sink_ = &sink;
  thread_ = std::thread([this] { run(); });
  watchdog_ = std::thread([this] { watchdog(); });
}

void XmppSignaling::Impl::send(const PeerId& to, const void* blob, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(blob);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || !started_) return;
    if (queue_.size() >= kMaxQueued) {
      queue_.pop_front();
      ++counters_.dropped_while_offline;
    }
    queue_.push_back(Outgoing{to, std::vector<uint8_t>(bytes, bytes + size)});
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

void XmppSignaling::Impl::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  {
    std::lock_guard<std::mutex> lock(watch_mutex_);
    stop_deadline_ = Clock::now() + kWatchdogGrace;  // enough for a goodbye to an answering server
  }
  watch_wake_.notify_all();
  {
    std::lock_guard<std::mutex> lock(join_mutex_);
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    if (!thread_.joinable() && watchdog_.joinable()) {  // (the plugin thread may not have started)
      {
        std::lock_guard<std::mutex> watch_lock(watch_mutex_);
        watch_stop_ = true;
      }
      watch_wake_.notify_all();
      watchdog_.join();
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (status_.state != XmppState::kStopped) {
    status_.state = XmppState::kStopped;
    status_changed_.notify_all();
  }
}

// --- the watchdog ---

void XmppSignaling::Impl::watchdog() {
  std::unique_lock<std::mutex> lock(watch_mutex_);
  while (!watch_stop_) {
    const Clock::time_point deadline = std::min(watch_deadline_, stop_deadline_);
    if (watch_fd_ >= 0 && Clock::now() >= deadline) {
      if (watch_deadline_ <= stop_deadline_) watchdog_ended_login_ = true;
      shutdown(watch_fd_, SHUT_RDWR);  // the socket, whichever descriptor libstrophe still has for it
      close(watch_fd_);
      watch_fd_ = -1;
    }
    if (watch_fd_ < 0 || deadline == Clock::time_point::max())
      watch_wake_.wait(lock);
    else
      watch_wake_.wait_until(lock, deadline);
  }
}

void XmppSignaling::Impl::watch(int fd, Clock::time_point deadline) {
  // Above the descriptors libstrophe's select() can use, where the limit allows.
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, FD_SETSIZE);
  if (dup < 0) dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  {
    std::lock_guard<std::mutex> lock(watch_mutex_);
    if (watch_fd_ >= 0) close(watch_fd_);
    watch_fd_ = dup;  // none: no backstop for this attempt (the descriptors ran out)
    watch_deadline_ = deadline;
  }
  watch_wake_.notify_all();
}

void XmppSignaling::Impl::unwatch() {
  std::lock_guard<std::mutex> lock(watch_mutex_);
  if (watch_fd_ >= 0) close(watch_fd_);
  watch_fd_ = -1;
  watch_deadline_ = Clock::time_point::max();
}

// --- the plugin thread ---

// A write to a connection the server has closed raises SIGPIPE, whose default action ends the process;
// libstrophe and OpenSSL write with plain send()/write(). The plugin's thread blocks SIGPIPE (it is sent
// to the writing thread, so the write fails with EPIPE instead) and discards the pending signal after
// each turn, leaving the application's own handling of SIGPIPE untouched.
static void block_sigpipe() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
}

static void discard_sigpipe() {
  sigset_t pending;
  if (sigpending(&pending) != 0 || !sigismember(&pending, SIGPIPE)) return;
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  const timespec zero{};
  sigtimedwait(&pipe, nullptr, &zero);
}

void XmppSignaling::Impl::run() {
  block_sigpipe();
  if (!create_connection()) {
    attempt_failed(XmppFailure::kConfiguration, "libstrophe could not create a connection", true);
  } else {
    next_attempt_ = Clock::now();
  }
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) break;
    }
    loop_once();
  }
  shut_down_connection();
  notify_status();
}

void XmppSignaling::Impl::loop_once() {
  const Clock::time_point now = Clock::now();
  take_queue();
  if (phase_ == Phase::kWaiting && now >= next_attempt_) connect_now();
  if (phase_ == Phase::kConnecting && now - attempt_started_ >= options_.login_timeout && !login_timed_out_) {
    login_timed_out_ = true;
    if (socket_ >= 0) shutdown(socket_, SHUT_RDWR);  // libstrophe then reports the disconnect
  }
  if (phase_ == Phase::kOnline) {
    keepalive(now);
    if (!settled_ && now - online_since_ >= kSettleTimeout) {
      // A server that never answered the settling ping: go on with the presence that came.
      log(LogLevel::kWarning, "the server did not answer the ping after the initial presence");
      settled_ = true;
      settle_id_.clear();
      set_status(XmppState::kOnline, XmppFailure::kNone, "");
    }
    if (now >= next_services_refresh_) ask_services();
    try_held(now);
  }
  expire(now);
  notify_status();
  wait_for_io(next_deadline());
  publish_contacts();
  notify_status();
}

void XmppSignaling::Impl::publish_contacts() {
  const bool online = phase_ == Phase::kOnline && settled_;
  const uint64_t key = directory_.generation() * 2 + (online ? 1 : 0);
  if (key == contacts_published_) return;
  contacts_published_ = key;
  std::vector<PeerId> list;
  if (online) {
    for (const xmpp::Jid& j : directory_.signaling_resources())
      if (Result<PeerId> id = PeerId::parse("xmpp:" + j.full())) list.push_back(std::move(*id));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  contacts_ = std::move(list);
}

XmppSignaling::Impl::Clock::time_point XmppSignaling::Impl::next_deadline() const {
  const Clock::time_point now = Clock::now();
  Clock::time_point d = now + std::chrono::seconds(1);
  if (phase_ == Phase::kWaiting) d = std::min(d, next_attempt_);
  // libstrophe's own timers (connect timeout, stream management) run inside xmpp_run_once().
  if (phase_ == Phase::kConnecting)
    d = std::min({d, now + std::chrono::milliseconds(100), attempt_started_ + options_.login_timeout});
  if (phase_ == Phase::kOnline) {
    if (ping_id_.empty())
      d = std::min(d, last_received_ + options_.ping_interval);
    else
      d = std::min(d, ping_sent_ + options_.ping_timeout);
    d = std::min(d, next_services_refresh_);
  }
  for (const Held& h : held_) {
    d = std::min(d, h.deadline);
    if (phase_ != Phase::kOnline) d = std::min(d, h.since + kHoldWhileReconnecting);
  }
  return std::max(d, now);
}

void XmppSignaling::Impl::wait_for_io(Clock::time_point deadline) {
  const bool active = conn_ && socket_ >= 0 && !xmpp_conn_is_disconnected(conn_);
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {-1, 0, 0}};
  if (active) {
    fds[1].fd = socket_;
    fds[1].events = POLLIN;
    if (xmpp_conn_is_connecting(conn_) || xmpp_conn_send_queue_len(conn_) > 0) fds[1].events |= POLLOUT;
  }
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  const int timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count() + 1, 0, 1000));
  const int n = poll(fds, active ? 2 : 1, timeout_ms);
  if (n > 0 && (fds[0].revents & POLLIN)) {
    uint64_t v;
    (void)!read(wake_fd_, &v, sizeof v);
  }
  if (!conn_) return;
  // One pass of xmpp_run_once() writes what is queued, runs libstrophe's timers, then reads at most 4 kB
  // and handles the stanzas in it. What those handlers queue (libstrophe's own replies: the login steps,
  // stream management acks) is written by the next pass only, and poll() cannot tell it is waiting
  // (xmpp_conn_send_queue_len() counts our stanzas only): so passes go on while the last one received a
  // stanza (or the TCP connection completed). And TLS hands over at most one record (16 kB) per readable
  // socket, of which what libstrophe has not read yet is invisible to poll(): a readable socket gets enough
  // passes to drain one.
  const bool readable = active && (fds[1].revents & (POLLIN | POLLERR | POLLHUP));
  const int min_passes = readable ? 5 : 1;
  std::unique_lock<std::mutex> login;
  if (phase_ != Phase::kOnline) login = std::unique_lock<std::mutex>(login_lock());
  uint64_t seen = library_receives_;
  for (int pass = 1; pass <= 64 && !xmpp_conn_is_disconnected(conn_); ++pass) {
    const bool was_connecting = xmpp_conn_is_connecting(conn_);
    xmpp_run_once(ctx_, 0);
    // The TCP connection completing also queues a write (the stream header).
    const bool progress = library_receives_ != seen || was_connecting != bool(xmpp_conn_is_connecting(conn_));
    seen = library_receives_;
    if (!progress && pass >= min_passes) break;
  }
  discard_sigpipe();
}

void XmppSignaling::Impl::take_queue() {
  std::deque<Outgoing> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(queue_);
  }
  const Clock::time_point now = Clock::now();
  for (Outgoing& o : batch)
    route(std::move(o), now);
}

void XmppSignaling::Impl::set_status(XmppState state, XmppFailure failure, const std::string& reason) {
  XmppStatus copy;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_.state == XmppState::kStopped) return;
    status_.state = state;
    status_.failure = failure;
    status_.reason = reason;
    status_.next_attempt = state == XmppState::kReconnecting
                               ? std::chrono::system_clock::now() +
                                     std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                         next_attempt_ - Clock::now())
                               : std::chrono::system_clock::time_point{};
    copy = status_;
    status_changed_.notify_all();
  }
  // Made by the loop, outside libstrophe's callbacks and the login lock (notify_status()).
  if (options_.on_status) status_notifications_.push_back(std::move(copy));
}

void XmppSignaling::Impl::notify_status() {
  std::vector<XmppStatus> pending;
  pending.swap(status_notifications_);
  for (const XmppStatus& s : pending)
    options_.on_status(s);
}

void XmppSignaling::Impl::log(LogLevel level, const std::string& line) const {
  if (static_cast<int>(level) > static_cast<int>(log_level_)) return;
  const std::string text = "xmpp " + account_.bare() + ": " + line;
  if (options_.log_sink) {
    options_.log_sink(level, text);
  } else {
    std::fprintf(stderr, "peerlink %s: %s\n", to_string(level), text.c_str());
  }
}

// --- the public class ---

XmppSignaling::XmppSignaling(XmppOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
XmppSignaling::~XmppSignaling() = default;
XmppStatus XmppSignaling::status() const {
  return impl_->status();
}
XmppCounters XmppSignaling::counters() const {
  return impl_->counters();
}
bool XmppSignaling::wait_online(std::chrono::milliseconds timeout) const {
  return impl_->wait_online(timeout);
}
std::vector<PeerId> XmppSignaling::contacts() const {
  return impl_->contacts();
}
PeerId XmppSignaling::local_peer() const {
  return impl_->local_peer();
}
void XmppSignaling::start(SignalingSink& sink) {
  impl_->start(sink);
}
void XmppSignaling::send(const PeerId& to, const void* blob, size_t size) {
  impl_->send(to, blob, size);
}
void XmppSignaling::stop() {
  impl_->stop();
}

}  // namespace peerlink
