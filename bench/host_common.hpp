// What both sides of the Host scenarios share: configurations, the server's key on the control channel,
// numbered payloads, and connecting with a bound wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

#include "peerlink/host.hpp"
#include "two_process.hpp"

namespace peerlink::bench {

// The Host configuration of both sides: the library's defaults, bound to one address so the traffic stays
// on the path under test.
HostConfig bench_host_config(const std::string& bind_ip);

// The wait_spin of rtt's spinning variant, on both sides.
constexpr std::chrono::microseconds kWaitSpin{200};

// "bbr", "cubic", "newreno": how figures name the controller.
const char* congestion_name(CongestionControl cc);

// Sets a callback that drops every event, so events never pile up (and wait() never wakes for them) in a
// client that only looks at states. run_callbacks() still has to be called.
void ignore_events(Host& host);

// The server's listen socket on ip (an ephemeral port), its accepted connections in `group` if given.
// Returns "ready port=<port> key=<hex public key>" for the control channel. Throws std::runtime_error.
std::string listen_for_bench(Host& host, const std::string& ip, PollGroupHandle group = kDefaultPollGroup);

std::string key_to_hex(const PublicKey& key);
PublicKey key_from_hex(const std::string& hex);  // throws std::runtime_error

// The server's address and key from its "ready" line.
Address server_address(const NetworkPath& path, const ControlMessage& ready);

// Connects (pinning the server's key) and waits up to timeout_seconds for kConnected. Throws
// std::runtime_error with the end reason if the connection fails.
ConnectionHandle connect_and_wait(Host& host, const Address& to, const PublicKey& key,
                                  double timeout_seconds);

// Payloads carry their sequence number in their first 8 bytes, so the receiver can prove order and
// completeness.
inline void put_sequence(uint8_t* payload, uint64_t seq) {
  std::memcpy(payload, &seq, sizeof seq);
}
inline uint64_t get_sequence(const uint8_t* payload) {
  uint64_t seq;
  std::memcpy(&seq, payload, sizeof seq);
  return seq;
}

}  // namespace peerlink::bench
