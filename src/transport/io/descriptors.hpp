// How many file descriptors the process has left. GLib aborts the process (g_error) when it cannot make
// the wake-up descriptor of a GMainContext or a GCancellable, and libnice makes one for every ICE stream:
// before such a call, the Host checks that descriptors remain, and refuses with a clear error if not.
#pragma once

#include <string>

namespace peerlink::io {

// Whether at least `count` more file descriptors can be opened now (tried, then closed again). Another
// thread may take some meanwhile: callers ask for a margin above what they need.
bool descriptors_available(int count);

// Descriptors kept in reserve on top of what a step needs: for the other threads of the process, and
// for GLib's and libnice's own.
constexpr int kDescriptorReserve = 16;

// "the process is out of file descriptors (its limit, ulimit -n, is N)" or the system's, for an error
// message.
std::string descriptors_exhausted_message();

// An eventfd that one thread signals to wake another that polls it.
class EventFd {
 public:
  // Throws std::system_error if none can be made.
  EventFd();
  ~EventFd();
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;

  int fd() const { return fd_; }
  void signal();  // thread-safe
  void drain();   // after poll said it is readable

 private:
  int fd_ = -1;
};

}  // namespace peerlink::io
