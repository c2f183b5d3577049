// What the subcommands of the `peerlink` tool share: exit statuses, usage errors and JSON text.
#pragma once

#include <cstdio>
#include <string>

#include "peerlink/identity.hpp"
#include "text.hpp"

namespace peerlink::cli {

// The documented exit statuses: 0 done; 1 it could not be done (the message says why); 2 bad usage.
constexpr int kOk = 0, kFailed = 1, kUsage = 2;

// Prints "peerlink: <what>" and the subcommand's usage to stderr; returns kUsage.
inline int usage_error(const std::string& what, const char* usage) {
  std::fprintf(stderr, "peerlink: %s\n%s", what.c_str(), usage);
  return kUsage;
}

using app::json_string;

inline std::string hex(const PublicKey& key) {
  return app::hex(key.data(), key.size());
}

}  // namespace peerlink::cli
