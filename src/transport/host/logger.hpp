// A Host's logger: a level check that costs one comparison when a line is not wanted, and lines gathered
// while the Host's lock is held and handed to the sink after it is released, so a sink that calls back into
// the Host cannot deadlock.
#pragma once

#include <cstdarg>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "peerlink/log.hpp"

namespace peerlink::host {

class Logger {
 public:
  // PEERLINK_LOG, when set to a level name, overrides level.
  Logger(LogLevel level, LogSink sink);

  bool enabled(LogLevel level) const { return level <= level_; }
  // printf-style; the line is kept until flush().
  void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 3, 4)));
  // Hands the gathered lines to the sink. Call without holding the Host's lock.
  void flush();

 private:
  LogLevel level_;
  LogSink sink_;
  std::mutex mutex_;  // guards pending_ only; never held while the sink runs
  std::vector<std::pair<LogLevel, std::string>> pending_;
  std::recursive_mutex sink_mutex_;  // one flush at a time (lines stay in order); a sink may log again
};

}  // namespace peerlink::host
