// A Host's long-term identity: an X25519 key pair. Its public key is what peers pin; its fingerprint is the
// short printable form people compare.
//
//   std::string error;
//   auto id = peerlink::Identity::load_or_create("/var/lib/mygame/identity.key", &error);
//   if (!id) { std::cerr << error << "\n"; return 1; }
//   std::cout << "my fingerprint: " << id->fingerprint() << "\n";
//
// Thread-safety: an Identity is an immutable value once made; copies may be used from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace peerlink {

using PublicKey = std::array<uint8_t, 32>;

class Identity {
 public:
  // A fresh key pair from the operating system's CSPRNG.
  static Identity generate();
  // From a 32-byte private key (e.g. kept by the application elsewhere).
  static Identity from_private_key(const std::array<uint8_t, 32>& private_key);

  // Reads the key file at path; if it does not exist, creates it (mode 0600, never overwriting a file that
  // appears meanwhile) with a new key. On failure returns nullopt and, if error is given, a message naming
  // the path and the cause (unreadable, wrong size or format, insecure permissions, ...).
  static std::optional<Identity> load_or_create(const std::string& path, std::string* error = nullptr);
  static std::optional<Identity> load(const std::string& path, std::string* error = nullptr);
  // Writes the key file (mode 0600) atomically; fails rather than replace an existing file.
  bool save(const std::string& path, std::string* error = nullptr) const;

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
