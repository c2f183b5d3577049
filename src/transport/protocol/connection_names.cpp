// Names of the public connection value types, for logs and error messages.
#include "peerlink/connection.hpp"

namespace peerlink {

const char* to_string(ConnectionState s) {
  switch (s) {
    case ConnectionState::kConnecting:
      return "connecting";
    case ConnectionState::kConnected:
      return "connected";
    case ConnectionState::kClosing:
      return "closing";
    case ConnectionState::kClosed:
      return "closed";
  }
  return "?";
}

const char* to_string(SendResult r) {
  switch (r) {
    case SendResult::kOk:
      return "ok";
    case SendResult::kDropped:
      return "dropped (could not be sent now)";
    case SendResult::kLimitExceeded:
      return "send buffer limit exceeded";
    case SendResult::kMessageTooLarge:
      return "message too large";
    case SendResult::kInvalidState:
      return "invalid connection state";
    case SendResult::kInvalidLane:
      return "invalid lane";
    case SendResult::kNoConnection:
      return "no such connection";
    case SendResult::kInvalidFlags:
      return "invalid send flags";
  }
  return "?";
}

const char* to_string(RouteType route) {
  switch (route) {
    case RouteType::kNone:
      return "none";
    case RouteType::kDirectUdp:
      return "direct UDP";
    case RouteType::kHost:
      return "host";
    case RouteType::kServerReflexive:
      return "server reflexive";
    case RouteType::kPeerReflexive:
      return "peer reflexive";
    case RouteType::kRelay:
      return "relay";
  }
  return "?";
}

}  // namespace peerlink
