// libstrophe waits on its socket with select(), which cannot watch a descriptor >= FD_SETSIZE (1024): it
// would write past the fd_set. A process with many open files (a game server, a test with 1,100) gets such
// descriptors from socket(). LowDescriptor keeps one descriptor number below FD_SETSIZE reserved (a
// placeholder on /dev/null) from the plugin's construction on; the socket callback moves libstrophe's new
// socket onto the lowest free number, or onto the reserved one, before libstrophe ever sees it.
#pragma once

#include <string>

namespace peerlink::xmpp {

class LowDescriptor {
 public:
  LowDescriptor();  // reserves, if a number below FD_SETSIZE is free
  ~LowDescriptor();
  LowDescriptor(const LowDescriptor&) = delete;
  LowDescriptor& operator=(const LowDescriptor&) = delete;

  // Makes *fd usable with select(): unchanged if it already is; else moved (close-on-exec) to the lowest
  // free number or onto the reservation (which is then used up until the socket is closed and
  // re-reserve() succeeds). False, with the reason in *why, if no number below FD_SETSIZE is available.
  bool make_selectable(int* fd, std::string* why);
  // Takes a reservation again if there is none (after the socket that used it was closed).
  void re_reserve();
  bool reserved() const { return placeholder_ >= 0; }

 private:
  int placeholder_ = -1;
};

}  // namespace peerlink::xmpp
