// Logger: level filter, deferred delivery to the application's sink (or stderr).
#include "transport/host/logger.hpp"

#include <cstdio>
#include <cstdlib>

namespace peerlink::host {

Logger::Logger(LogLevel level, LogSink sink) : level_(level), sink_(std::move(sink)) {
  if (const char* env = std::getenv("PEERLINK_LOG")) {
    if (auto l = parse_log_level(env)) level_ = *l;
  }
  if (!sink_) {
    sink_ = [](LogLevel l, const std::string& line) {
      std::fprintf(stderr, "peerlink %s: %s\n", to_string(l), line.c_str());
    };
  }
}

void Logger::log(LogLevel level, const char* format, ...) {
  if (!enabled(level)) return;
  char buf[512];
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  if (n < 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.emplace_back(level, std::string(buf, size_t(n) < sizeof buf ? size_t(n) : sizeof buf - 1));
}

void Logger::flush() {
  std::lock_guard<std::recursive_mutex> order(sink_mutex_);
  std::vector<std::pair<LogLevel, std::string>> lines;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_.empty()) return;
    lines.swap(pending_);
  }
  for (auto& [level, line] : lines)
    sink_(level, line);
}

}  // namespace peerlink::host
