// Logging: every message of a Host goes through one sink the application can replace. The default sink
// writes to stderr. The environment variable PEERLINK_LOG (error, warning, info, debug, trace) overrides
// the configured level, so detail can be turned on without rebuilding: PEERLINK_LOG=debug ./mygame
//
//   config.log_level = peerlink::LogLevel::kInfo;
//   config.log_sink = [](peerlink::LogLevel level, const std::string& line) { mylog(level, line); };
//
// Thread-safety: the sink is called from the Host's service thread and from application threads that call
// into the Host, never under a lock the sink could deadlock on; a sink shared by several Hosts must be
// thread-safe itself.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace peerlink {

enum class LogLevel : int { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3, kTrace = 4 };

using LogSink = std::function<void(LogLevel level, const std::string& line)>;

const char* to_string(LogLevel level);
// "error", "warning"/"warn", "info", "debug", "trace" (any case); nullopt otherwise.
std::optional<LogLevel> parse_log_level(std::string_view text);

}  // namespace peerlink
