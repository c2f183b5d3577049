// Uses the installed library: makes a fresh identity, starts a Host with it (its service thread, GLib and
// a socket on loopback), and prints the fingerprint.
#include <peerlink/host.hpp>
#include <peerlink/identity.hpp>

#include <iostream>

int main() {
  const auto identity = peerlink::Identity::generate();
  peerlink::HostConfig config;
  config.identity = identity;
  peerlink::Host host(config);
  peerlink::ListenOptions options;
  options.address = peerlink::Address::loopback_v4(0);
  std::string error;
  if (host.listen(0, options, &error) == peerlink::kInvalidListenSocket) {
    std::cerr << "listen: " << error << "\n";
    return 1;
  }
  std::cout << host.identity().fingerprint() << "\n";
  return 0;
}
