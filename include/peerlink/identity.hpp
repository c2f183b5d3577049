// A Host's long-term identity: an X25519 key pair. Its public key is what peers pin; its fingerprint is the
// short printable form people compare.
//
//   auto id = peerlink::Identity::load_or_create("/var/lib/mygame/identity.key");
//   if (!id) { std::cerr << id.error().message << "\n"; return 1; }
//   std::cout << "my fingerprint: " << id->fingerprint() << "\n";
//
// Thread-safety: an Identity is an immutable value once made; copies may be used from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "peerlink/error.hpp"

namespace peerlink {

using PublicKey = std::array<uint8_t, 32>;

class Identity {
 public:
  // A fresh key pair from the operating system's CSPRNG.
  static Identity generate();
  // From a 32-byte private key (e.g. kept by the application elsewhere).
  static Identity from_private_key(const std::array<uint8_t, 32>& private_key);

  // Reads the key file at path; if it does not exist, creates it (mode 0600, never overwriting a file that
  // appears meanwhile) with a new key. Fails with ErrorCode::kFile, the message naming the path and the
  // cause (unreadable, wrong size or format, insecure permissions, ...).
  static Result<Identity> load_or_create(const std::string& path);
  static Result<Identity> load(const std::string& path);
  // Writes the key file (mode 0600) atomically; fails (kFile) rather than replace an existing file.
  Result<void> save(const std::string& path) const;

  const PublicKey& public_key() const { return public_key_; }
  const std::array<uint8_t, 32>& private_key() const { return private_key_; }

  // "pl1-" followed by the first 160 bits of SHA-256(public key) in base32, grouped by 4 characters with
  // dashes, e.g. "pl1-abcd-efgh-...": printable, comparable, case-insensitive.
  std::string fingerprint() const;
  static std::string fingerprint_of(const PublicKey& key);

 private:
  Identity() = default;
  std::array<uint8_t, 32> private_key_{};
  PublicKey public_key_{};
};

}  // namespace peerlink
