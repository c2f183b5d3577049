// Helpers for tests of real Hosts over loopback: recording events, pumping callbacks until a condition
// holds (with a deadline, never forever), and self-checking message contents.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "peerlink/host.hpp"
#include "peerlink/testkit/in_process_signaling.hpp"

namespace peerlink::test {

using namespace std::chrono_literals;

using testkit::SignalingHub;

// A HostConfig for tests: quiet unless PEERLINK_LOG says otherwise.
inline HostConfig test_config() {
  HostConfig c;
  c.log_level = LogLevel::kWarning;
  return c;
}

// A HostConfig for peer-to-peer tests: `name` on the hub, ICE on loopback only (tests never leave the
// machine).
inline HostConfig p2p_config(const std::shared_ptr<SignalingHub>& hub, const std::string& name,
                             std::chrono::milliseconds connect_timeout = 10s) {
  HostConfig c = test_config();
  c.signaling.push_back(hub->plugin(name));
  c.ice.interfaces_allow = {"lo"};
  c.connect_timeout = connect_timeout;
  return c;
}

// Records every event a Host delivers.
class EventRecorder {
 public:
  explicit EventRecorder(Host& host) {
    host.set_connection_callback([this](const ConnectionEvent& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(e);
    });
  }
  std::vector<ConnectionEvent> events() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  // The first event of this kind for the connection (any connection if c == 0), or nullopt.
  std::optional<ConnectionEvent> find(ConnectionEventKind kind,
                                      ConnectionHandle c = kInvalidConnection) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& e : events_)
      if (e.kind == kind && (c == kInvalidConnection || e.info.handle == c)) return e;
    return std::nullopt;
  }
  size_t count(ConnectionEventKind kind) const {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t n = 0;
    for (const auto& e : events_)
      n += e.kind == kind ? 1 : 0;
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<ConnectionEvent> events_;
};

// Runs callbacks of the hosts until pred() holds or timeout passes; returns pred().
inline bool pump_until(std::initializer_list<Host*> hosts, const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (Host* h : hosts)
      h->run_callbacks();
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    (*hosts.begin())->wait(2ms);
  }
}

// Runs callbacks until connection c's kClosed event arrives; that event, or nullopt after timeout.
inline std::optional<ConnectionEvent> wait_closed(std::initializer_list<Host*> hosts,
                                                  const EventRecorder& events, ConnectionHandle c,
                                                  std::chrono::milliseconds timeout = 10s) {
  pump_until(
      hosts, [&] { return events.find(ConnectionEventKind::kClosed, c).has_value(); }, timeout);
  return events.find(ConnectionEventKind::kClosed, c);
}

// Receives from connection c until n messages arrived or timeout passed; what arrived.
inline std::vector<Message> receive_n(Host& host, ConnectionHandle c, size_t n,
                                      std::chrono::milliseconds timeout = 10s) {
  std::vector<Message> got;
  pump_until(
      {&host},
      [&] {
        host.receive(c, got);
        return got.size() >= n;
      },
      timeout);
  return got;
}

inline Address loopback(const Host& host, ListenSocketHandle socket) {
  Address a = Address::loopback_v4(host.listen_address(socket)->port());
  return a;
}

// Message i of a stream: its index and length, then bytes derived from both, so the receiver can check
// every byte without keeping a copy. Messages shorter than 12 bytes carry only what fits of the header.
inline std::vector<uint8_t> make_message(uint64_t index, size_t size) {
  std::vector<uint8_t> m(size);
  uint8_t header[12];
  std::memcpy(header, &index, 8);
  uint32_t s32 = uint32_t(size);
  std::memcpy(header + 8, &s32, 4);
  std::memcpy(m.data(), header, std::min<size_t>(size, sizeof header));
  uint64_t x = index * 0x9e3779b97f4a7c15ull + size + 1;
  for (size_t i = sizeof header; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    m[i] = uint8_t(x);
  }
  return m;
}

inline bool check_message(uint64_t index, const uint8_t* data, size_t size) {
  std::vector<uint8_t> expected = make_message(index, size);
  return std::memcmp(expected.data(), data, size) == 0;
}

// The index a message of at least 8 bytes carries.
inline uint64_t message_index(const uint8_t* data) {
  uint64_t i;
  std::memcpy(&i, data, 8);
  return i;
}

// `count` reliable messages of `size` bytes from one Host to the other, each checked on arrival.
inline ::testing::AssertionResult transfer(Host& from, ConnectionHandle fc, Host& to, ConnectionHandle tc,
                                           size_t count, size_t size,
                                           std::chrono::milliseconds timeout = 60s) {
  for (uint64_t i = 0; i < count; ++i) {
    auto m = make_message(i, size);
    SendResult r = from.send(fc, m.data(), m.size());
    if (r != SendResult::kOk) return ::testing::AssertionFailure() << "send " << i << ": " << int(r);
  }
  uint64_t next = 0;
  std::vector<Message> got;
  bool intact = true;
  pump_until(
      {&from, &to},
      [&] {
        got.clear();
        to.receive(tc, got);
        for (const Message& m : got)
          intact = intact && check_message(next++, m.data(), m.size());
        return next >= count || !intact;
      },
      timeout);
  if (!intact) return ::testing::AssertionFailure() << "message " << next - 1 << " corrupt or out of order";
  if (next != count) return ::testing::AssertionFailure() << "only " << next << " of " << count << " arrived";
  return ::testing::AssertionSuccess();
}

// A listening server and a client connected to it, both connected events seen.
struct ConnectedPair {
  Host server;
  Host client;
  EventRecorder server_events{server};
  EventRecorder client_events{client};
  ListenSocketHandle listener = kInvalidListenSocket;
  ConnectionHandle client_conn = kInvalidConnection;
  ConnectionHandle server_conn = kInvalidConnection;

  explicit ConnectedPair(HostConfig server_config = test_config(), HostConfig client_config = test_config())
      : server(std::move(server_config)), client(std::move(client_config)) {}

  // Returns false (with a gtest failure) if the connection did not come up.
  bool connect(const ListenOptions& listen_options = {}) {
    Result<ListenSocketHandle> l = server.listen(0, listen_options);
    EXPECT_TRUE(l) << l.error().message;
    if (!l) return false;
    listener = *l;
    ConnectOptions o;
    o.expected_key = server.identity().public_key();
    Result<ConnectionHandle> c = client.connect(loopback(server, listener), o);
    EXPECT_TRUE(c) << c.error().message;
    if (!c) return false;
    client_conn = *c;
    bool up = pump_until({&client, &server}, [&] {
      return client_events.find(ConnectionEventKind::kConnected, client_conn) &&
             server_events.find(ConnectionEventKind::kConnected);
    });
    EXPECT_TRUE(up) << "connection did not come up";
    if (!up) return false;
    server_conn = server_events.find(ConnectionEventKind::kConnected)->info.handle;
    return true;
  }
};

}  // namespace peerlink::test
