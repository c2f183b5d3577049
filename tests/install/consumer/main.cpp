// Uses the installed libraries: makes a fresh identity, starts a Host with it (its service thread, GLib, a
// socket on loopback, and the installed test kit's in-process signaling), puts a Messages on it, and
// prints the fingerprint.
#include <peerlink/host.hpp>
#include <peerlink/identity.hpp>
#include <peerlink/messages.hpp>
#include <peerlink/testkit/in_process_signaling.hpp>

#include <iostream>
#include <memory>

int main() {
  const auto identity = peerlink::Identity::generate();
  auto hub = std::make_shared<peerlink::testkit::SignalingHub>();
  peerlink::HostConfig config;
  config.identity = identity;
  config.signaling.push_back(hub->plugin("consumer"));
  peerlink::Host host(config);
  peerlink::Result<peerlink::ListenSocketHandle> listening = host.listen(peerlink::Address::loopback_v4(0));
  if (!listening) {
    std::cerr << "listen: " << listening.error().message << "\n";
    return 1;
  }
  peerlink::Result<std::unique_ptr<peerlink::Messages>> messages = peerlink::Messages::create(host);
  if (!messages) {
    std::cerr << "messages: " << messages.error().message << "\n";
    return 1;
  }
  std::cout << host.identity().fingerprint() << "\n";
  return 0;
}
