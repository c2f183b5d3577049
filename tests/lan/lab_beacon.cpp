#include "lan/lab_beacon.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include "netlab/netns.hpp"

namespace peerlink::test {

using lan::MdnsEngine;

LabBeacon::LabBeacon(const std::string& ns, int interfaces, bool ipv4, bool ipv6,
                     const std::string& service) {
  lan::EngineConfig c;
  c.service = *lan::service_name(service);
  c.self.key = id_.public_key();
  c.self.display_name = ns.substr(0, lan::kMaxDisplayName);
  c.self.port = 40000;
  c.private_key = id_.private_key();
  c.ipv4 = ipv4;
  c.ipv6 = ipv6;
  c.first_serial = 1;
  engine_ = std::make_unique<MdnsEngine>(c);
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_ < 0) throw std::runtime_error("eventfd failed");
  netlab::NetnsScope scope(ns);  // the sockets, the interface lookups and the thread belong to `ns`
  std::string why;
  if (!socket_.open(ipv4, ipv6, lan::kMdnsPort, &why) || !own_.open_private(ipv4, ipv6, lan::kMdnsPort, &why))
    throw std::runtime_error(ns + ": " + why);
  const std::vector<lan::LinkInfo> links = lan::read_links();
  for (int k = 0; k < interfaces; ++k) {
    const std::string dev = "eth" + std::to_string(k);
    auto link =
        std::find_if(links.begin(), links.end(), [&](const lan::LinkInfo& l) { return l.name == dev; });
    if (link == links.end() || !socket_.join(link->index, &why))
      throw std::runtime_error(ns + ": " + dev + ": " + (link == links.end() ? "no such interface" : why));
    links_.push_back(*link);
  }
  thread_ = std::thread([this] { run(); });
}

LabBeacon::~LabBeacon() {
  {
    std::lock_guard<std::mutex> lock(m_);
    engine_->goodbye();
    flush();
  }
  stop_ = true;
  const uint64_t one = 1;
  (void)!write(wake_, &one, sizeof one);
  thread_.join();
  close(wake_);
}

void LabBeacon::start() {
  start_ = true;
  const uint64_t one = 1;
  (void)!write(wake_, &one, sizeof one);
}

std::map<lan::Key, lan::DiscoveredPeer> LabBeacon::peers() {
  std::lock_guard<std::mutex> lock(m_);
  return engine_->peers();
}

size_t LabBeacon::peer_count() {
  std::lock_guard<std::mutex> lock(m_);
  return engine_->peers().size();
}

lan::EngineCounters LabBeacon::counters() {
  std::lock_guard<std::mutex> lock(m_);
  return engine_->counters();
}

void LabBeacon::flush() {
  for (const lan::Outgoing& o : engine_->take_outgoing()) {
    std::string why;
    if (o.multicast)  // the first query from our own port, as the plugin sends it (unicast answers)
      (o.query ? own_ : socket_).send_multicast(o.family, o.interface_index, o.bytes, &why);
    else
      socket_.send_to(o.to, o.bytes, &why);
  }
  engine_->take_events();
}

void LabBeacon::run() {
  while (!stop_) {
    int timeout_ms = 1000;
    {
      std::lock_guard<std::mutex> lock(m_);
      if (start_ && !started_) {
        started_ = true;
        for (const lan::LinkInfo& l : links_)
          engine_->interface_up(l.index, l.ipv4, l.ipv6, MdnsEngine::Clock::now());
      }
      const auto now = MdnsEngine::Clock::now();
      engine_->tick(now);
      flush();
      const auto next = engine_->next_timer();
      if (next != MdnsEngine::Clock::time_point::max())
        timeout_ms = static_cast<int>(std::clamp<int64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1, 0, 1000));
    }
    pollfd p[5] = {{socket_.fd4(), POLLIN, 0},
                   {socket_.fd6(), POLLIN, 0},
                   {own_.fd4(), POLLIN, 0},
                   {own_.fd6(), POLLIN, 0},
                   {wake_, POLLIN, 0}};
    poll(p, 5, timeout_ms);
    uint64_t drained = 0;
    (void)!read(wake_, &drained, sizeof drained);
    std::lock_guard<std::mutex> lock(m_);
    for (lan::MdnsSocket* s : {&socket_, &own_}) {
      for (int fd : {s->fd4(), s->fd6()}) {
        if (fd < 0) continue;
        lan::Datagram d;
        while (s->receive(fd, d))
          engine_->receive(d, MdnsEngine::Clock::now());
      }
    }
    flush();
  }
}

}  // namespace peerlink::test
