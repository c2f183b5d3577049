// Uses the installed LAN beacon: options are checked, and a beacon is made (nothing touches the network
// until a Host starts it). Prints "lan ok".
#include <peerlink/lan.hpp>

#include <iostream>

int main() {
  peerlink::LanOptions bad;
  if (bad.validate()) {
    std::cerr << "options without an identity were accepted\n";
    return 1;
  }
  peerlink::LanOptions o;
  o.identity = peerlink::Identity::generate();
  o.service = "consumer";
  peerlink::LanBeacon beacon(o);
  if (beacon.scheme() != "lan" || beacon.local_peer().str() != "lan:" + o.identity->fingerprint()) return 1;
  std::cout << "lan ok\n";
  return 0;
}
