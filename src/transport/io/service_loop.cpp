// ServiceLoop: ppoll over our descriptors, an eventfd, a timerfd and a hand-driven GMainContext.
#include "transport/io/service_loop.hpp"

#include <glib.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace peerlink::io {

protocol::Instant monotonic_now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return protocol::Instant(protocol::Duration(int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec));
}

ServiceLoop::ServiceLoop() {
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) {
    const int e = errno;
    throw std::system_error(e, std::generic_category(), "peerlink: timerfd_create");
  }
  // GLib aborts the process if it cannot make the context's wake-up descriptor: refuse first.
  if (!descriptors_available(kDescriptorReserve)) {
    close(timer_fd_);
    throw std::system_error(EMFILE, std::generic_category(), "peerlink: " + descriptors_exhausted_message());
  }
  context_ = g_main_context_new();
}

ServiceLoop::~ServiceLoop() {
  if (attached_) detach_from_this_thread();
  g_main_context_unref(context_);
  close(timer_fd_);
}

void ServiceLoop::wake() {
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  wake_.signal();
}

void ServiceLoop::wake_at(protocol::Instant deadline) {
  const int64_t ns = std::max<int64_t>(deadline.time_since_epoch().count(), 1);  // 0 would disarm it
  itimerspec when{};
  when.it_value.tv_sec = time_t(ns / 1000000000);
  when.it_value.tv_nsec = long(ns % 1000000000);
  if (timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &when, nullptr) != 0) wake();  // never miss it
}

void ServiceLoop::cancel_wake_at() {
  itimerspec off{};
  timerfd_settime(timer_fd_, 0, &off, nullptr);
  uint64_t expirations;
  ssize_t n = read(timer_fd_, &expirations, sizeof expirations);  // one that fired meanwhile
  (void)n;
}

void ServiceLoop::attach_to_this_thread() {
  g_main_context_push_thread_default(context_);
  g_main_context_acquire(context_);
  attached_ = true;
}

void ServiceLoop::detach_from_this_thread() {
  g_main_context_release(context_);
  g_main_context_pop_thread_default(context_);
  attached_ = false;
}

void ServiceLoop::wait(std::vector<pollfd>& fds, protocol::Instant deadline) {
  gint max_priority = 0;
  g_main_context_prepare(context_, &max_priority);

  // GLib's descriptors go after ours, the eventfd and the timerfd; query tells how many it needs.
  const size_t ours = fds.size() + 2;
  gint glib_timeout_ms = -1;
  gint glib_count = 0;
  for (;;) {
    poll_fds_.resize(ours + size_t(glib_count));
    gint needed = g_main_context_query(context_, max_priority, &glib_timeout_ms,
                                       reinterpret_cast<GPollFD*>(poll_fds_.data() + ours), glib_count);
    if (needed <= glib_count) {
      glib_count = needed;
      poll_fds_.resize(ours + size_t(glib_count));
      break;
    }
    glib_count = needed;
  }
  static_assert(sizeof(GPollFD) == sizeof(pollfd), "GPollFD and pollfd must share a layout");
  std::copy(fds.begin(), fds.end(), poll_fds_.begin());
  poll_fds_[fds.size()] = pollfd{wake_.fd(), POLLIN, 0};
  poll_fds_[fds.size() + 1] = pollfd{timer_fd_, POLLIN, 0};

  protocol::Instant now = monotonic_now();
  if (glib_timeout_ms >= 0) deadline = std::min(deadline, now + std::chrono::milliseconds(glib_timeout_ms));
  bool pending_wake = wake_pending_.load(std::memory_order_acquire);
  timespec ts{0, 0};
  timespec* timeout = &ts;
  if (pending_wake) {
    // Poll without blocking: the eventfd is (about to be) readable anyway.
  } else if (deadline == protocol::kNever) {
    timeout = nullptr;
  } else if (deadline > now) {
    int64_t ns = (deadline - now).count();
    ts.tv_sec = time_t(ns / 1000000000);
    ts.tv_nsec = long(ns % 1000000000);
  }
  int r = ppoll(poll_fds_.data(), nfds_t(poll_fds_.size()), timeout, nullptr);
  if (r < 0) {
    for (pollfd& p : poll_fds_)
      p.revents = 0;
  }

  if (poll_fds_[fds.size()].revents & POLLIN) wake_.drain();
  // Clear after draining: a wake() from now on writes again, so none is lost.
  wake_pending_.store(false, std::memory_order_release);

  for (size_t i = 0; i < fds.size(); ++i)
    fds[i].revents = poll_fds_[i].revents;
  if (g_main_context_check(context_, max_priority, reinterpret_cast<GPollFD*>(poll_fds_.data() + ours),
                           glib_count))
    g_main_context_dispatch(context_);
}

}  // namespace peerlink::io
