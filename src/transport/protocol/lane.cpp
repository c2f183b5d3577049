#include "transport/protocol/lane.hpp"

#include <cstring>

namespace peerlink::protocol {

bool UnreliableReassembly::add(Instant now, const UnreliableFrame& f, std::vector<uint8_t>& out,
                               uint32_t& lane) {
  if (f.offset == 0 && f.length == f.total_length) {
    out.assign(f.data, f.data + f.length);
    lane = f.lane;
    return true;
  }
  if (f.length == 0) return false;  // adds nothing
  auto it = partial_.find(f.message_id);
  if (it == partial_.end()) {
    if (partial_.size() >= kMaxPartial) {
      partial_.erase(partial_.begin());  // the oldest message id
      ++dropped_;
    }
    Partial p;
    p.lane = f.lane;
    p.total = f.total_length;
    p.first = now;
    it = partial_.emplace(f.message_id, std::move(p)).first;
  }
  Partial& p = it->second;
  // Inconsistent fragments of one id (another lane or length, bytes that another fragment has), or too
  // many: the message is garbage. (Counting a repeated fragment's bytes twice completed a message with a
  // hole in it.)
  auto next = p.fragments.lower_bound(f.offset);
  const bool overlaps =
      (next != p.fragments.end() && next->first < f.offset + f.length) ||
      (next != p.fragments.begin() && std::prev(next)->first + std::prev(next)->second.size() > f.offset);
  if (p.lane != f.lane || p.total != f.total_length || overlaps || p.fragments.size() >= kMaxFragments) {
    partial_.erase(it);
    ++dropped_;
    return false;
  }
  p.fragments.emplace_hint(next, f.offset, std::vector<uint8_t>(f.data, f.data + f.length));
  p.received += f.length;
  if (p.received < p.total) return false;
  out.resize(size_t(p.total));
  for (const auto& [offset, bytes] : p.fragments)
    std::memcpy(out.data() + offset, bytes.data(), bytes.size());
  lane = p.lane;
  partial_.erase(it);
  return true;
}

size_t UnreliableReassembly::expire(Instant now, Duration max_age) {
  size_t n = 0;
  for (auto it = partial_.begin(); it != partial_.end();) {
    if (now - it->second.first > max_age) {
      it = partial_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  dropped_ += n;
  return n;
}

}  // namespace peerlink::protocol
