// Publishing and browsing one DNS-SD service through avahi-daemon (libavahi-client, over D-Bus), for the
// LAN beacon's avahi mode: where the system's responder owns port 5353, as Linux desktops expect. avahi
// runs its own thread (AvahiThreadedPoll); what it learns is queued here and the beacon's thread takes it
// (wake_fd() becomes readable).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "peerlink/address.hpp"

namespace peerlink::lan {

struct AvahiNews {
  enum Kind { kResolved, kRemoved, kFailed } kind = kResolved;
  int interface_index = 0;
  int protocol = 0;      // AVAHI_PROTO_INET or _INET6: with the instance name, what a removal names
  std::string instance;  // the instance name
  Address address;       // kResolved: where it is (port 0; IPv6 link-local with its scope id)
  uint16_t port = 0;
  std::vector<std::string> txt;
  std::string detail;  // kFailed: avahi's error
};

class AvahiService {
 public:
  AvahiService();
  ~AvahiService();  // withdraws the service (avahi says goodbye) and stops avahi's thread
  AvahiService(const AvahiService&) = delete;
  AvahiService& operator=(const AvahiService&) = delete;

  // Connects to avahi-daemon, publishes `instance` of `type` ("_peerlink._udp") on `port` with `txt` on
  // every interface avahi serves, and browses and resolves the type. False (why) when avahi-daemon cannot
  // be reached (not running, no D-Bus).
  bool start(const std::string& type, const std::string& instance, uint16_t port,
             const std::vector<std::string>& txt, std::string* why);
  int wake_fd() const { return wake_fd_; }
  std::vector<AvahiNews> take();

  struct State;  // avahi's objects and callbacks (avahi_client.cpp)

 private:
  std::unique_ptr<State> state_;
  int wake_fd_ = -1;
};

}  // namespace peerlink::lan
