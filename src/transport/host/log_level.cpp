// Names of log levels, both ways.
#include "peerlink/log.hpp"

#include <cctype>
#include <string>

namespace peerlink {

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kTrace:
      return "trace";
  }
  return "?";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  std::string t;
  for (char c : text)
    t += char(std::tolower(static_cast<unsigned char>(c)));
  if (t == "error") return LogLevel::kError;
  if (t == "warning" || t == "warn") return LogLevel::kWarning;
  if (t == "info") return LogLevel::kInfo;
  if (t == "debug") return LogLevel::kDebug;
  if (t == "trace") return LogLevel::kTrace;
  return std::nullopt;
}

}  // namespace peerlink
