// A tiny STUN Binding responder on its own thread, for lab checks that need a second server besides coturn:
// it answers every Binding request with the source address it saw (XOR-MAPPED-ADDRESS) and records those
// addresses. Its socket is created in the namespace given to the constructor.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "netlab/socket.hpp"

namespace peerlink::netlab {

class StunResponder {
 public:
  // Binds ip:port inside network namespace `netns`; throws std::runtime_error.
  StunResponder(const std::string& netns, const std::string& ip, uint16_t port);
  ~StunResponder();
  StunResponder(const StunResponder&) = delete;
  StunResponder& operator=(const StunResponder&) = delete;

  Endpoint address() const { return address_; }
  // Source addresses of the Binding requests answered so far, in arrival order.
  std::vector<Endpoint> seen() const;

 private:
  void run();

  Endpoint address_;
  UdpSocket socket_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Endpoint> seen_;
  std::thread thread_;
};

}  // namespace peerlink::netlab
