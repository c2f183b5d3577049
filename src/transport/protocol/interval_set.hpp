// A set of disjoint half-open byte ranges [start, end), merged on insert. Used for acknowledged and
// to-be-retransmitted stream data.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>

namespace peerlink::protocol {

class IntervalSet {
 public:
  using Map = std::map<uint64_t, uint64_t>;  // start -> end

  void insert(uint64_t start, uint64_t end) {
    if (start >= end) return;
    auto it = ranges_.upper_bound(start);
    if (it != ranges_.begin()) {
      auto prev = std::prev(it);
      if (prev->second >= start) {
        if (prev->second >= end) return;
        start = prev->first;
        it = ranges_.erase(prev);
      }
    }
    while (it != ranges_.end() && it->first <= end) {
      if (it->second > end) end = it->second;
      it = ranges_.erase(it);
    }
    ranges_.emplace_hint(it, start, end);
  }

  void erase(uint64_t start, uint64_t end) {
    if (start >= end) return;
    auto it = ranges_.upper_bound(start);
    if (it != ranges_.begin()) {
      auto prev = std::prev(it);
      if (prev->second > start) {
        uint64_t prev_end = prev->second;
        if (prev->first < start) {
          prev->second = start;
        } else {
          ranges_.erase(prev);
        }
        if (prev_end > end) {
          ranges_.emplace(end, prev_end);
          return;
        }
      }
    }
    while (it != ranges_.end() && it->first < end) {
      if (it->second > end) {
        uint64_t e = it->second;
        ranges_.erase(it);
        ranges_.emplace(end, e);
        return;
      }
      it = ranges_.erase(it);
    }
  }

  // Removes everything below `bound`.
  void erase_below(uint64_t bound) {
    while (!ranges_.empty() && ranges_.begin()->first < bound) {
      auto it = ranges_.begin();
      if (it->second > bound) {
        uint64_t e = it->second;
        ranges_.erase(it);
        ranges_.emplace(bound, e);
        return;
      }
      ranges_.erase(it);
    }
  }

  bool contains(uint64_t start, uint64_t end) const {
    auto it = ranges_.upper_bound(start);
    if (it == ranges_.begin()) return false;
    --it;
    return it->first <= start && it->second >= end;
  }

  bool empty() const { return ranges_.empty(); }
  size_t size() const { return ranges_.size(); }
  const Map& ranges() const { return ranges_; }
  Map::const_iterator begin() const { return ranges_.begin(); }
  Map::const_iterator end() const { return ranges_.end(); }
  void clear() { ranges_.clear(); }

 private:
  Map ranges_;
};

}  // namespace peerlink::protocol
