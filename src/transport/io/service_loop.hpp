// The wait at the heart of a Host's service thread: one ppoll over the Host's own file descriptors, an
// eventfd that application threads use to wake it, a timerfd they use to bring its deadline forward without
// waking it now, and every source of a GLib main context (libnice's sockets and timers live there), with a
// nanosecond deadline.
//
// We drive the GMainContext by hand (prepare / query / ppoll / check / dispatch) instead of running
// g_main_loop: GLib's own poll takes millisecond timeouts, too coarse for pacing and for timers a few
// microseconds away, and our hot sockets would pay a GSource dispatch per wake-up.
//
//   ServiceLoop loop;                       // on any thread
//   loop.wake();                            // from any thread: the next (or current) wait returns at once
//   loop.wake_at(t);                        // from any thread: ... returns by t at the latest
//   std::vector<pollfd> fds = {{sock, POLLIN, 0}};
//   loop.wait(fds, deadline, clock_now);    // service thread: blocks, dispatches GLib, fills revents
#pragma once

#include <poll.h>

#include <atomic>
#include <vector>

#include "transport/io/descriptors.hpp"
#include "transport/protocol/time.hpp"

typedef struct _GMainContext GMainContext;

namespace peerlink::io {

// CLOCK_MONOTONIC as the protocol core's Instant (the same clock GLib uses).
protocol::Instant monotonic_now();

class ServiceLoop {
 public:
  // Throws std::system_error if no eventfd or timerfd can be made.
  ServiceLoop();
  ~ServiceLoop();
  ServiceLoop(const ServiceLoop&) = delete;
  ServiceLoop& operator=(const ServiceLoop&) = delete;

  // The context the service thread owns while it runs (it is made the thread-default there).
  GMainContext* context() const { return context_; }

  // Thread-safe and cheap when a wake-up is already pending: one eventfd write per wait.
  void wake();
  // Thread-safe: the current (or next) wait returns by deadline at the latest, whatever deadline it was
  // given; one timerfd_settime. Replaces an earlier wake_at() not yet reached. An application thread uses
  // it when its command armed a timer earlier than the sleeping service thread planned to wake: the
  // service thread sleeps on instead of waking now to learn about it.
  void wake_at(protocol::Instant deadline);
  // Service thread: cancels a wake_at() (its deadline is known again).
  void cancel_wake_at();

  // Binds the GLib context to the calling thread (the service thread) for the loop's lifetime.
  void attach_to_this_thread();
  void detach_from_this_thread();

  // Blocks until one of fds is ready (its revents are set), wake() is called, a GLib source is ready, or
  // deadline passes (protocol::kNever: no deadline). Dispatches ready GLib sources before returning.
  void wait(std::vector<pollfd>& fds, protocol::Instant deadline);

 private:
  GMainContext* context_ = nullptr;
  EventFd wake_;  // throws std::system_error if none can be made
  int timer_fd_ = -1;
  std::atomic<bool> wake_pending_{false};
  bool attached_ = false;
  std::vector<pollfd> poll_fds_;  // ours + the eventfd + the timerfd + GLib's, rebuilt per wait
};

}  // namespace peerlink::io
