#include "peerlink/end_reason.hpp"

namespace peerlink {

const char* to_string(EndReason reason) {
  switch (reason) {
    case EndReason::kInvalid:
      return "no reason";
    case EndReason::kLocalShutdown:
      return "local shutdown";
    case EndReason::kLocalLimitExceeded:
      return "local limit exceeded";
    case EndReason::kRemoteTimeout:
      return "peer timed out";
    case EndReason::kRemoteBadCrypt:
      return "handshake failed to authenticate";
    case EndReason::kRemoteKeyMismatch:
      return "peer does not hold the expected key";
    case EndReason::kRemoteRejected:
      return "peer rejected the connection";
    case EndReason::kRemoteBadProtocolVersion:
      return "peer speaks no common protocol version";
    case EndReason::kRemoteProtocolViolation:
      return "peer violated the protocol";
    case EndReason::kRemoteBusy:
      return "peer is busy";
    case EndReason::kMiscGeneric:
      return "connection failed";
    case EndReason::kMiscInternalError:
      return "internal error";
    case EndReason::kMiscConnectTimeout:
      return "connect timed out";
    case EndReason::kMiscLingerTimeout:
      return "linger timed out";
    case EndReason::kMiscSignalingUnreachable:
      return "signaling could not reach the peer";
    case EndReason::kMiscNoRoute:
      return "no network path to the peer";
    default:
      break;
  }
  uint32_t code = static_cast<uint32_t>(reason);
  if (code >= 1000 && code <= 1999) return "closed by the application";
  if (code >= 2000 && code <= 2999) return "closed by the application (error)";
  if (code >= 3000 && code <= 3999) return "local problem";
  if (code >= 4000 && code <= 4999) return "remote problem";
  return "unknown reason";
}

}  // namespace peerlink
