// Uses the installed library: makes a fresh identity and prints its fingerprint.
#include <peerlink/identity.hpp>

#include <iostream>

int main() {
  const auto identity = peerlink::Identity::generate();
  std::cout << identity.fingerprint() << "\n";
  return 0;
}
