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
  auto it = partial_.find(f.message_id);
  if (it == partial_.end()) {
    if (partial_.size() >= kMaxPartial) {
      partial_.erase(partial_.begin());  // the oldest message id
      ++dropped_;
    }
    Partial p;
    p.lane = f.lane;
    p.data.resize(size_t(f.total_length));
    p.first = now;
    it = partial_.emplace(f.message_id, std::move(p)).first;
  }
  Partial& p = it->second;
  if (p.lane != f.lane || p.data.size() != f.total_length) {
    // Inconsistent fragments of one id: the message is garbage.
    partial_.erase(it);
    ++dropped_;
    return false;
  }
  std::memcpy(p.data.data() + f.offset, f.data, f.length);
  p.received += f.length;
  if (p.received < p.data.size()) return false;
  out = std::move(p.data);
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
