// Why a connection ended. Codes are grouped in ranges, as in GameNetworkingSockets, so an application can
// tell at a glance who ended it:
//   1000–1999  the application closed it normally (its own codes; kAppGeneric if it has none)
//   2000–2999  the application closed it because something went wrong (its own codes)
//   3000–3999  something on this side (shut down, local limits)
//   4000–4999  something the remote side did or failed to do (timeout, bad crypto, wrong key, ...)
//   5000–5999  everything else (internal errors, connect timeout where the cause is unknown)
//
//   if (is_app_reason(code)) ... ; std::cout << peerlink::to_string(EndReason(code));
#pragma once

#include <cstdint>

namespace peerlink {

enum class EndReason : uint32_t {
  kInvalid = 0,

  kAppMin = 1000,
  kAppGeneric = 1000,
  kAppMax = 1999,
  kAppExceptionMin = 2000,
  kAppExceptionGeneric = 2000,
  kAppExceptionMax = 2999,

  kLocalMin = 3000,
  kLocalShutdown = 3001,       // this side's endpoint or host was shut down
  kLocalLimitExceeded = 3002,  // a local resource limit (e.g. too many connections)
  kLocalMax = 3999,

  kRemoteMin = 4000,
  kRemoteTimeout = 4001,             // the peer stopped answering on an established connection
  kRemoteBadCrypt = 4002,            // the handshake did not authenticate
  kRemoteKeyMismatch = 4003,         // the peer does not hold the static key we expected of it
  kRemoteRejected = 4004,            // the peer's application refused the connection
  kRemoteBadProtocolVersion = 4005,  // the peer speaks no protocol version we do
  kRemoteProtocolViolation = 4006,   // malformed frames, flow-control violation, ...
  kRemoteBusy = 4007,                // the peer refused because of its limits
  kRemoteMax = 4999,

  kMiscMin = 5000,
  kMiscGeneric = 5001,
  kMiscInternalError = 5002,
  kMiscConnectTimeout = 5003,  // no answer to the connection request within the connect timeout
  kMiscLingerTimeout = 5004,   // a graceful close gave up: the peer did not acknowledge everything in time
  kMiscSignalingUnreachable = 5005,  // the signaling plugin could not reach the peer (or has no such peer)
  kMiscNoRoute = 5006,  // ICE found no working path (NAT or firewall, STUN/TURN server unreachable)
  kMiscMax = 5999,
};

constexpr bool is_app_reason(uint32_t code) {
  return code >= 1000 && code <= 2999;
}
constexpr bool is_local_reason(uint32_t code) {
  return code >= 3000 && code <= 3999;
}
constexpr bool is_remote_reason(uint32_t code) {
  return code >= 4000 && code <= 4999;
}
constexpr bool is_misc_reason(uint32_t code) {
  return code >= 5000 && code <= 5999;
}

// A short English description; for application codes, "application close (N)".
const char* to_string(EndReason reason);

}  // namespace peerlink
