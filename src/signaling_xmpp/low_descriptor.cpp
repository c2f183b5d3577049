#include "low_descriptor.hpp"

#include <fcntl.h>
#include <sys/select.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace peerlink::xmpp {
namespace {

// A close-on-exec duplicate of fd on the lowest free number, if that is below FD_SETSIZE.
int low_duplicate(int fd) {
  const int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return -1;
  if (copy >= FD_SETSIZE) {
    close(copy);
    return -1;
  }
  return copy;
}

}  // namespace

LowDescriptor::LowDescriptor() {
  re_reserve();
}

LowDescriptor::~LowDescriptor() {
  if (placeholder_ >= 0) close(placeholder_);
}

void LowDescriptor::re_reserve() {
  if (placeholder_ >= 0) return;
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) return;
  if (null_fd < FD_SETSIZE) {
    placeholder_ = null_fd;
    return;
  }
  placeholder_ = low_duplicate(null_fd);
  close(null_fd);
}

bool LowDescriptor::make_selectable(int* fd, std::string* why) {
  if (*fd < FD_SETSIZE) return true;
  int moved = low_duplicate(*fd);
  if (moved < 0 && placeholder_ >= 0) {
    // dup3 replaces the placeholder atomically: the number never becomes free for another thread.
    if (dup3(*fd, placeholder_, O_CLOEXEC) == placeholder_) {
      moved = placeholder_;
      placeholder_ = -1;
    }
  }
  if (moved < 0) {
    *why = "the process has no free file descriptor below " + std::to_string(FD_SETSIZE) +
           " for the XMPP connection (libstrophe waits with select())";
    return false;
  }
  close(*fd);
  *fd = moved;
  return true;
}

}  // namespace peerlink::xmpp
