// Names of the public error codes (error.hpp). In the lowest layer because every layer's public values
// (an Identity's key file, an Address's text) report failures with them.
#include "peerlink/error.hpp"

namespace peerlink {

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kInvalidConfig:
      return "invalid configuration";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kLimitExceeded:
      return "limit exceeded";
    case ErrorCode::kAddressInUse:
      return "address in use";
    case ErrorCode::kUnreachable:
      return "unreachable";
    case ErrorCode::kNoSignaling:
      return "no signaling plugin";
    case ErrorCode::kAlreadyExists:
      return "already exists";
    case ErrorCode::kSelf:
      return "this Host itself";
    case ErrorCode::kNameResolution:
      return "name resolution failed";
    case ErrorCode::kFile:
      return "file error";
    case ErrorCode::kSystem:
      return "system error";
    case ErrorCode::kPluginFailed:
      return "signaling plugin failed";
  }
  return "?";
}

}  // namespace peerlink
