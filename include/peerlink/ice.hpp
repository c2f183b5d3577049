// How peer-to-peer connections find a path: ICE (RFC 8445) with STUN and TURN servers, through libnice.
//
// Every peer-to-peer connection gathers candidate addresses (host: the machine's own interfaces;
// server-reflexive: the address a NAT maps it to, learned from a STUN or TURN server; relayed: an address on
// a TURN server), sends them to the peer through signaling, and tests pairs of candidates until one works.
// The best working pair wins: a direct path whenever one exists, a TURN relay only when none does.
//
//   peerlink::HostConfig config;
//   config.ice.stun_servers.push_back({"stun.example.org", 3478});
//   config.ice.turn_servers.push_back(
//       {"turn.example.org", 3478, peerlink::TurnTransport::kUdp, "user", "pw"});
//   config.ice.candidates = peerlink::candidate_kinds::kRelay;  // privacy: never reveal our addresses
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "peerlink/error.hpp"

namespace peerlink {

struct StunServer {
  std::string host;  // a name or a literal address; names are resolved when the Host starts
  uint16_t port = 3478;
};

enum class TurnTransport : uint8_t {
  kUdp,  // the usual choice
  kTcp,  // for networks that block UDP (slower: one TCP connection to the server per connection)
};

struct TurnServer {
  std::string host;
  uint16_t port = 3478;
  TurnTransport transport = TurnTransport::kUdp;
  std::string username;
  std::string password;

  // Time-limited credentials of the TURN REST scheme (coturn's use-auth-secret, Prosody's
  // mod_turn_external): username "<expiry unix time>:<user>", password base64(HMAC-SHA1(secret, username)).
  // Valid for ttl from now: give a running Host fresh ones with Host::set_ice_servers() before they
  // expire.
  static TurnServer with_shared_secret(std::string host, uint16_t port, TurnTransport transport,
                                       const std::string& user, const std::string& secret,
                                       std::chrono::seconds ttl = std::chrono::hours(24));
};

// Which kinds of local candidates are offered to peers (a bit set, like GameNetworkingSockets' ICE_Enable).
namespace candidate_kinds {
inline constexpr uint32_t kPrivate = 1u << 0;  // host candidates with private or link-local addresses
inline constexpr uint32_t kPublic = 1u << 1;   // host candidates with public addresses, and server-reflexive
inline constexpr uint32_t kRelay = 1u << 2;    // TURN relayed candidates
inline constexpr uint32_t kAll = kPrivate | kPublic | kRelay;
}  // namespace candidate_kinds

struct IceConfig {
  std::vector<StunServer> stun_servers;
  std::vector<TurnServer> turn_servers;
  // Offered candidate kinds. candidate_kinds::kRelay alone keeps every peer from learning our addresses
  // (they see only the relay's); it needs a TURN server.
  uint32_t candidates = candidate_kinds::kAll;
  // Interfaces (by name, e.g. "eth0") whose addresses make host candidates. Empty allow: every interface
  // that is up, except loopback (unless it is named here). deny wins over allow.
  std::vector<std::string> interfaces_allow;
  std::vector<std::string> interfaces_deny;
  // Ta of RFC 8445: the Host sends one connectivity check (or candidate-gathering request) per this
  // interval for all its connections being set up together, so it bounds how many can start at once: 1,000
  // connections at once each need a check or two. 5 ms (the RFC's floor, and the default) is about 200 checks
  // a second, some 25 KB/s of STUN; libnice's own default is 20 ms. Within 5 and 1000 ms.
  std::chrono::milliseconds check_pacing{5};

  // Fails (ErrorCode::kInvalidConfig) saying what is wrong: an empty host, port 0, unknown bits, TURN
  // without username, ...
  Result<void> validate() const;
};

}  // namespace peerlink
