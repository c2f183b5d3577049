// Host: connection events on their way to the application. One queue, in order; an event goes to the
// connection's own callback, else to the Host's, else it waits for service(). Callbacks run with no Host
// lock held: on the application's thread inside run_callbacks() or service() (CallbackThread::
// kApplication), or on the service thread (kService, host_service.cpp).
#include <poll.h>

#include "transport/host/host_impl.hpp"

namespace peerlink {

namespace {
void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

using protocol::Instant;

namespace {
// Events kept while nobody collects them.
constexpr size_t kMaxQueuedEvents = 4096;
}  // namespace

void Host::Impl::queue_event(ConnectionEventKind kind, ConnectionHandle c) {
  auto it = handles_.find(c);
  if (it == handles_.end()) return;
  ConnectionEvent e;
  e.kind = kind;
  e.info = info_locked(c, it->second);
  events_.push_back(std::move(e));
  ++events_queued_;
  publish_news();
  if (it->second.callback || callback_) callback_events_queued_ = true;
  if (events_.size() > kMaxQueuedEvents && !callback_) drop_oldest_connected_event();
}

// Nobody collects events: keep them bounded. Only a kConnected without a callback of its own goes (the
// oldest): a request or a close must reach the application, which releases handles by them, and there are
// at most as many of those as handles (HostConfig::max_connections bounds them).
void Host::Impl::drop_oldest_connected_event() {
  for (auto it = events_.begin(); it != events_.end(); ++it) {
    if (it->kind != ConnectionEventKind::kConnected) continue;
    auto h = handles_.find(it->info.handle);
    if (h != handles_.end() && h->second.callback) continue;
    events_.erase(it);
    ++events_dropped_;
    return;
  }
}

void Host::Impl::take_callback_events(std::vector<std::pair<ConnectionEvent, ConnectionCallback>>& out) {
  if (!callback_events_queued_) return;  // the service thread asks every turn: nothing to scan
  auto keep = events_.begin();
  for (auto it = events_.begin(); it != events_.end(); ++it) {
    auto h = handles_.find(it->info.handle);
    if (h == handles_.end()) continue;  // released (closed, rejected) since it was queued
    const ConnectionCallback& callback = h->second.callback ? h->second.callback : callback_;
    if (callback) {
      out.emplace_back(std::move(*it), callback);
    } else {
      if (keep != it) *keep = std::move(*it);
      ++keep;
    }
  }
  events_.erase(keep, events_.end());
  callback_events_queued_ = false;  // what is left has no callback
}

void Host::Impl::deliver_events(const std::vector<std::pair<ConnectionEvent, ConnectionCallback>>& batch) {
  log_.flush();
  for (const auto& [event, callback] : batch) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!handles_.count(event.info.handle)) continue;  // released by an earlier callback of this batch
    }
    callback(event);
  }
}

size_t Host::Impl::run_callbacks() {
  // A callback that calls run_callbacks() again gets 0: the outer call goes on delivering, in order.
  if (delivering_thread_.load() == std::this_thread::get_id()) return 0;
  std::lock_guard<std::mutex> order(callbacks_running_);
  std::vector<std::pair<ConnectionEvent, ConnectionCallback>> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (config_.callback_thread != CallbackThread::kApplication) return 0;
    take_callback_events(batch);
  }
  delivering_thread_ = std::this_thread::get_id();
  deliver_events(batch);
  delivering_thread_ = std::thread::id();
  return batch.size();
}

// mutex_ held. The next thing for service(): an event without a callback (out), an event to hand to its
// callback first (to_call), or a message of the default poll group (out). False: nothing yet.
bool Host::Impl::next_service_event(HostEvent& out, std::pair<ConnectionEvent, ConnectionCallback>& to_call) {
  protocol::ReceivedMessage m;
  for (auto it = events_.begin(); it != events_.end();) {
    auto h = handles_.find(it->info.handle);
    if (h == handles_.end()) {  // released since it was queued
      it = events_.erase(it);
      continue;
    }
    const ConnectionCallback& callback = h->second.callback ? h->second.callback : callback_;
    if (callback) {
      if (config_.callback_thread == CallbackThread::kService) {  // the service thread delivers it
        ++it;
        continue;
      }
      to_call = {std::move(*it), callback};
      events_.erase(it);
      return true;
    }
    const ConnectionHandle c = it->info.handle;
    out.connection = c;
    if (it->kind == ConnectionEventKind::kClosed && endpoint_.receive(c, m)) {
      // What it received before it ended comes first.
      messages_seen_ = endpoint_.messages_delivered();
      out.kind = HostEventKind::kMessage;
      out.info = ConnectionInfo();
      out.message = make_message(std::move(m), h->second.user_data);
      return true;
    }
    out.kind = it->kind == ConnectionEventKind::kIncomingRequest ? HostEventKind::kIncomingRequest
               : it->kind == ConnectionEventKind::kConnected     ? HostEventKind::kConnected
                                                                 : HostEventKind::kClosed;
    out.info = std::move(it->info);
    out.message = Message();
    events_.erase(it);
    if (out.kind == HostEventKind::kClosed) {
      // Nothing more will come of it: released, as if the application had closed it.
      release(c, CloseMode::kNow, out.info.end_reason, out.info.end_debug, io::monotonic_now());
    }
    return true;
  }
  if (!endpoint_.receive_group(kDefaultPollGroup, m)) return false;
  messages_seen_ = endpoint_.messages_delivered();
  out.kind = HostEventKind::kMessage;
  out.connection = m.connection;
  out.info = ConnectionInfo();
  out.message = make_message(std::move(m));
  after_command(io::monotonic_now(), false);  // credit may need announcing
  return true;
}

bool Host::Impl::service(HostEvent& event, std::chrono::milliseconds timeout) {
  // From inside a callback (on the application's thread, or on the service thread, which must not wait).
  if (delivering_thread_.load() == std::this_thread::get_id() ||
      std::this_thread::get_id() == thread_.get_id())
    return false;
  log_.flush();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool spun = false;
  for (;;) {
    // In run_callbacks()'s order (callbacks_running_, then mutex_): an event handed to its callback here
    // cannot be overtaken by a later one that another thread's run_callbacks() delivers.
    std::unique_lock<std::mutex> order(callbacks_running_);
    std::unique_lock<std::mutex> lock(mutex_);
    std::pair<ConnectionEvent, ConnectionCallback> to_call;
    if (next_service_event(event, to_call)) {
      if (!to_call.second) return true;
      lock.unlock();
      delivering_thread_ = std::this_thread::get_id();
      deliver_events({std::move(to_call)});
      delivering_thread_ = std::thread::id();
      continue;
    }
    order.unlock();
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (!spun && config_.wait_spin.count() > 0) {
      spun = true;  // once per call: a spin that saw nothing is followed by sleep
      const uint64_t seen = news_.load(std::memory_order_acquire);
      lock.unlock();
      spin_for_news(seen, deadline);
      continue;
    }
    const uint64_t events_before = events_queued_, messages_before = endpoint_.messages_delivered();
    ++waiters_;
    activity_.wait_until(lock, deadline, [&] {
      return events_queued_ != events_before || endpoint_.messages_delivered() != messages_before;
    });
    --waiters_;
  }
}

void Host::Impl::set_connection_callback(ConnectionCallback callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  callback_ = std::move(callback);
  if (callback_) callback_events_queued_ = true;  // events kept for service() now have one
  if (config_.callback_thread == CallbackThread::kService && !events_.empty()) loop_.wake();
  notify_waiters();
}

bool Host::Impl::set_message_callback(MessageCallback callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (config_.callback_thread != CallbackThread::kService) return false;
  message_callback_ = std::move(callback);
  if (message_callback_) loop_.wake();  // messages already queued go to it
  return true;
}

bool Host::Impl::wait(std::chrono::milliseconds timeout) {
  if (std::this_thread::get_id() == thread_.get_id()) return false;  // a kService callback must not block
  log_.flush();
  std::unique_lock<std::mutex> lock(mutex_);
  // Events count when run_callbacks() would deliver them (those for service() are service()'s to wait for).
  auto ready = [this] {
    if (endpoint_.messages_delivered() != messages_seen_) return true;
    if (config_.callback_thread != CallbackThread::kApplication || events_.empty()) return false;
    if (callback_) return true;
    for (const ConnectionEvent& e : events_) {
      auto h = handles_.find(e.info.handle);
      if (h != handles_.end() && h->second.callback) return true;
    }
    return false;
  };
  if (ready()) return true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (poller_wake_ && !poller_active_) return wait_receiving(lock, deadline, ready);  // spins there too
  if (config_.wait_spin.count() > 0) {
    const uint64_t seen = news_.load(std::memory_order_acquire);
    lock.unlock();
    const bool news = spin_for_news(seen, deadline);
    lock.lock();
    if (news && ready()) return true;  // else it was news for service(): sleep
  }
  ++waiters_;
  bool woken = activity_.wait_until(lock, deadline, ready);
  --waiters_;
  return woken;
}

template <typename Ready>
bool Host::Impl::wait_receiving(std::unique_lock<std::mutex>& lock,
                                std::chrono::steady_clock::time_point deadline, Ready ready) {
  poller_active_ = true;
  const size_t n = sockets_.size();  // sockets are only ever added
  poller_sockets_ = n;
  std::vector<pollfd>& fds = poller_fds_;  // kept: wait() is on a game's reply path, no allocation per call
  fds.resize(n + 1);
  for (size_t i = 0; i < n; ++i)
    fds[i] = pollfd{sockets_[i]->socket->fd(), POLLIN, 0};
  fds[n] = pollfd{poller_wake_->fd(), POLLIN, 0};
  // HostConfig::wait_spin: polls without blocking until then (the CPU stays busy, no wake-up to wait for).
  const auto spin_until = std::min(deadline, std::chrono::steady_clock::now() + config_.wait_spin);
  bool woken = false;
  for (;;) {
    const auto at = std::chrono::steady_clock::now();
    const auto left = deadline - at;
    if (left <= std::chrono::steady_clock::duration::zero()) break;
    const int64_t ns =
        at < spin_until ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec timeout{time_t(ns / 1000000000), long(ns % 1000000000)};
    lock.unlock();
    const int r = ppoll(fds.data(), nfds_t(fds.size()), &timeout, nullptr);
    lock.lock();
    if (r > 0) {
      if (fds[n].revents & POLLIN) poller_wake_->drain();
      // What the service thread's turn does with a readable socket, here and now.
      Instant now = io::monotonic_now();  // moved on by receive_from if it sends between batches
      bool received = false;
      for (size_t i = 0; i < n; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLERR))) continue;
        receive_from(uint8_t(i), now);
        received = true;
      }
      if (received) {
        if (endpoint_.next_timeout() <= now) endpoint_.handle_timeout(now);
        transmit(now);
        collect_events(now);
        publish_news();
        after_command(now, false);  // the service thread wakes for what this armed or left to send
      }
    }
    if (ready()) {
      woken = true;
      break;
    }
  }
  poller_active_ = false;
  // Nobody reads the sockets left to this thread now: the service thread takes them back soon.
  if (sleeping_ && sockets_left_to_poller_) {
    const Instant back = io::monotonic_now() + kSocketsBackAfter;
    if (back < sleep_deadline_) {
      sleep_deadline_ = back;
      deadline_pulled_ = true;
      loop_.wake_at(back);
    }
  }
  return woken;
}

void Host::Impl::notify_waiters() {
  activity_.notify_all();
  if (poller_wake_) poller_wake_->signal();
}

bool Host::Impl::spin_for_news(uint64_t seen, std::chrono::steady_clock::time_point deadline) const {
  const auto until = std::min(deadline, std::chrono::steady_clock::now() + config_.wait_spin);
  for (unsigned i = 0;; ++i) {
    if (news_.load(std::memory_order_acquire) != seen) return true;
    // The clock is read every 64 turns: a turn is one pause instruction, a clock read costs more.
    if (i % 64 == 63 && std::chrono::steady_clock::now() >= until) return false;
    cpu_relax();
  }
}

}  // namespace peerlink
