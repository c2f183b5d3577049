#include "transport/io/descriptors.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <vector>

namespace peerlink::io {

bool descriptors_available(int count) {
  std::vector<int> taken;
  taken.reserve(size_t(count > 0 ? count : 0));
  bool ok = true;
  for (int i = 0; i < count; ++i) {
    // /dev/null first, then duplicates of it.
    const int fd = taken.empty() ? ::open("/dev/null", O_RDONLY | O_CLOEXEC)
                                 : ::fcntl(taken.front(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      ok = false;
      break;
    }
    taken.push_back(fd);
  }
  for (int fd : taken)
    ::close(fd);
  return ok;
}

std::string descriptors_exhausted_message() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  return "the process is (nearly) out of file descriptors (its limit, ulimit -n, is " +
         std::to_string(limit.rlim_cur) + ")";
}

EventFd::EventFd() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "peerlink: eventfd");
}

EventFd::~EventFd() {
  ::close(fd_);
}

void EventFd::signal() {
  const uint64_t one = 1;
  ssize_t r = ::write(fd_, &one, sizeof one);  // EAGAIN: the counter is full, a wake-up pending anyway
  (void)r;
}

void EventFd::drain() {
  uint64_t count;
  ssize_t r = ::read(fd_, &count, sizeof count);
  (void)r;
}

}  // namespace peerlink::io
