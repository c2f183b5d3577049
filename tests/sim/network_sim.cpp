#include "sim/network_sim.hpp"

#include <algorithm>
#include <cstring>

#include "transport/protocol/packet.hpp"

namespace peerlink::sim {

NetworkSim::NetworkSim(uint64_t seed) : seed_(seed), rng_(seed) {}

double NetworkSim::uniform() {
  return double(rng_.next_u64() >> 11) * (1.0 / 9007199254740992.0);
}

size_t NetworkSim::add_node(const protocol::EndpointConfig& cfg, const Identity& id) {
  Node n;
  n.rng = std::make_unique<crypto::SeededRandom>(seed_ * 1000003 + nodes_.size() + 1);
  n.endpoint = std::make_unique<protocol::Endpoint>(cfg, id, *n.rng);
  nodes_.push_back(std::move(n));
  return nodes_.size() - 1;
}

NetworkSim::Link& NetworkSim::link_ref(size_t from, size_t to) {
  return links_[{from, to}];
}

void NetworkSim::set_link(size_t from, size_t to, const LinkConfig& cfg, int shared_queue) {
  Link& l = link_ref(from, to);
  l.cfg = cfg;
  l.shared_queue = shared_queue;
}

LinkConfig& NetworkSim::link(size_t from, size_t to) {
  return link_ref(from, to).cfg;
}
const LinkStats& NetworkSim::link_stats(size_t from, size_t to) {
  return link_ref(from, to).stats;
}

void NetworkSim::inject(size_t from, size_t to, std::vector<uint8_t> datagram, Duration delay) {
  in_flight_.push(InFlight{now_ + delay, seq_++, from, to, std::move(datagram)});
}

void NetworkSim::transmit(size_t from, size_t to, std::vector<uint8_t> data) {
  Link& l = link_ref(from, to);
  const LinkConfig& c = l.cfg;
  ++l.stats.sent;
  if (data.size() > c.mtu) {
    ++l.stats.too_big;
    return;
  }
  for (const auto& [start, stop] : c.blackholes) {
    if (now_ >= start && now_ < stop) {
      ++l.stats.lost;
      return;
    }
  }
  // The bottleneck queue comes first: a packet dropped by loss later still used the link.
  Instant depart = now_;
  if (c.bandwidth_bps > 0) {
    Queue& q = l.shared_queue >= 0 ? shared_queues_[l.shared_queue] : l.own;
    Instant start = std::max(now_, q.free_at);
    Duration backlog = start - now_;
    double backlog_bytes = std::chrono::duration<double>(backlog).count() * double(c.bandwidth_bps) / 8;
    if (c.queue_bytes > 0 && backlog_bytes + double(data.size()) > double(c.queue_bytes)) {
      ++l.stats.queue_dropped;
      return;
    }
    Duration tx = std::chrono::duration_cast<Duration>(
        std::chrono::duration<double>(double(data.size()) * 8 / double(c.bandwidth_bps)));
    q.free_at = start + tx;
    depart = q.free_at;
    l.stats.max_queue_delay = std::max(l.stats.max_queue_delay, backlog);
    l.stats.queue_delay_sum_s += std::chrono::duration<double>(backlog).count();
  }
  if (uniform() < c.loss) {
    ++l.stats.lost;
    return;
  }
  int copies = uniform() < c.duplicate ? 2 : 1;
  if (copies == 2) ++l.stats.duplicated;
  for (int i = 0; i < copies; ++i) {
    Duration d = c.delay;
    if (c.jitter.count() > 0) d += Duration(int64_t(uniform() * double(c.jitter.count())));
    if (uniform() < c.reorder) d += c.reorder_delay;
    std::vector<uint8_t> copy = (i + 1 == copies) ? std::move(data) : data;
    if (c.corrupt > 0 && copy.size() > protocol::kDataHeaderSize &&
        protocol::peek_packet_kind(copy.data(), copy.size()) == protocol::PacketKind::kData &&
        uniform() < c.corrupt) {
      size_t pos =
          protocol::kDataHeaderSize + size_t(uniform() * double(copy.size() - protocol::kDataHeaderSize));
      copy[std::min(pos, copy.size() - 1)] ^= uint8_t(1 + (rng_.next_u32() % 255));
      ++l.stats.corrupted;
    }
    in_flight_.push(InFlight{depart + d, seq_++, from, to, std::move(copy)});
  }
}

void NetworkSim::flush_node(size_t n) {
  protocol::Endpoint& ep = *nodes_[n].endpoint;
  uint8_t buf[65536];
  protocol::PathAddress to;
  while (size_t len = ep.poll_transmit(now_, buf, sizeof buf, to)) {
    uint64_t dest = 0;
    std::memcpy(&dest, to.bytes.data(), std::min<size_t>(to.size, sizeof dest));
    if (dest == 0 || dest > nodes_.size()) continue;
    transmit(n, size_t(dest - 1), std::vector<uint8_t>(buf, buf + len));
  }
}

bool NetworkSim::run_until(Instant until, const std::function<bool()>& done,
                           const std::function<void()>& on_step) {
  for (;;) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      protocol::Endpoint& ep = *nodes_[i].endpoint;
      if (ep.next_timeout() <= now_) ep.handle_timeout(now_);
      flush_node(i);
    }
    if (on_step) {
      on_step();
      for (size_t i = 0; i < nodes_.size(); ++i)
        flush_node(i);
    }
    if (done && done()) return true;
    Instant next = until;
    if (!in_flight_.empty()) next = std::min(next, in_flight_.top().at);
    for (const Node& n : nodes_)
      next = std::min(next, n.endpoint->next_timeout());
    if (next >= until && now_ >= until) return done && done();
    if (next > now_) now_ = std::min(next, until);
    while (!in_flight_.empty() && in_flight_.top().at <= now_) {
      // Moving out of the top is safe: the heap compares only `at` and `seq`, which stay intact.
      InFlight p = std::move(const_cast<InFlight&>(in_flight_.top()));
      in_flight_.pop();
      Link& l = link_ref(p.from, p.to);
      ++l.stats.delivered;
      l.stats.bytes_delivered += p.data.size();
      if (tap_) tap_(p.from, p.to, p.data);
      nodes_[p.to].endpoint->handle_datagram(now_, address(p.from), p.data.data(), p.data.size());
    }
    if (now_ >= until && in_flight_.empty()) {
      bool finished = done && done();
      if (finished) return true;
    }
    if (now_ >= until) {
      for (size_t i = 0; i < nodes_.size(); ++i)
        flush_node(i);
      return done && done();
    }
  }
}

}  // namespace peerlink::sim
