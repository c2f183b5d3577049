// A LAN beacon peer for tests and benchmarks on the LAN lab (lan_lab.hpp): the querier/responder engine
// (src/lan_beacon/mdns_engine.hpp) on real mDNS sockets (port 5353 and a port of its own, as the plugin
// has them), served by a thread inside a host's namespace.
// Made idle (sockets open and joined, addresses read); start() begins announcing and querying, so that
// many peers can start at one moment.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lan_interfaces.hpp"
#include "mdns_engine.hpp"
#include "mdns_socket.hpp"
#include "peerlink/identity.hpp"

namespace peerlink::test {

class LabBeacon {
 public:
  // Serves eth0..eth<interfaces-1> of namespace `ns`. Throws std::runtime_error when the sockets cannot
  // be opened or joined.
  LabBeacon(const std::string& ns, int interfaces, bool ipv4, bool ipv6,
            const std::string& service = "labtest");
  ~LabBeacon();  // goodbye, then the thread stops
  LabBeacon(const LabBeacon&) = delete;
  LabBeacon& operator=(const LabBeacon&) = delete;

  // Begins, on the beacon's own thread (as a process starting would): signs its records, queries and
  // announces.
  void start();
  const PublicKey& key() const { return id_.public_key(); }
  std::map<lan::Key, lan::DiscoveredPeer> peers();
  size_t peer_count();
  lan::EngineCounters counters();

 private:
  void flush();
  void run();

  Identity id_ = Identity::generate();
  std::unique_ptr<lan::MdnsEngine> engine_;
  lan::MdnsSocket socket_;            // port 5353
  lan::MdnsSocket own_;               // a port of its own: the first query, and unicast answers to it
  std::vector<lan::LinkInfo> links_;  // eth0..eth<interfaces-1>
  std::mutex m_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> start_{false};
  bool started_ = false;  // guarded by m_
  int wake_ = -1;
};

}  // namespace peerlink::test
