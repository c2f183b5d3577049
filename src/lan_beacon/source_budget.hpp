// A datagram budget per source address, a token bucket each: `rate` datagrams a second sustained and
// `burst` at once. At most `max_sources` are remembered. When the table is full, the buckets that have
// filled up again go first (forgetting them changes nothing); if none has, the table starts over, so a
// flood from many addresses costs at most a burst each and bounded memory.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <map>
#include <string>

namespace peerlink::lan {

class SourceBudget {
 public:
  SourceBudget(double rate, double burst, size_t max_sources)
      : rate_(rate), burst_(burst), max_sources_(max_sources) {}

  // One datagram from `source` (its address as text) at `now`: false when its budget is spent (drop it).
  bool take(const std::string& source, std::chrono::steady_clock::time_point now) {
    if (buckets_.size() >= max_sources_ && !buckets_.count(source)) {
      for (auto it = buckets_.begin(); it != buckets_.end();)
        it = refilled(it->second, now) ? buckets_.erase(it) : std::next(it);
      if (buckets_.size() >= max_sources_) buckets_.clear();
    }
    auto [it, added] = buckets_.try_emplace(source, Bucket{burst_, now});
    Bucket& b = it->second;
    if (!added)
      b.tokens = std::min(burst_, b.tokens + std::chrono::duration<double>(now - b.at).count() * rate_);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  bool refilled(const Bucket& b, std::chrono::steady_clock::time_point now) const {
    return b.tokens + std::chrono::duration<double>(now - b.at).count() * rate_ >= burst_;
  }
  double rate_, burst_;
  size_t max_sources_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace peerlink::lan
