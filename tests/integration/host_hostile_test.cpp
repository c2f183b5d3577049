// Hostile datagrams thrown at a Host's port: random bytes, truncated and replayed packets, forged headers.
// The live connection must not notice, and every bad datagram must be counted.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <random>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

// A UDP relay on 127.0.0.1 between one client and a server: it forwards both ways and records what the
// client sends, so the test can replay, truncate and forge from the very address the server trusts.
class RecordingRelay {
 public:
  explicit RecordingRelay(uint16_t server_port) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    server_.sin_family = AF_INET;
    server_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    server_.sin_port = htons(server_port);
    thread_ = std::thread([this] { run(); });
  }
  ~RecordingRelay() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<std::vector<uint8_t>> recorded() {
    std::lock_guard<std::mutex> lock(mutex_);
    return recorded_;
  }
  // Sends to the server from the relay's own address (the one the server knows as its peer).
  void inject(const std::vector<uint8_t>& d) {
    sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&server_), sizeof server_);
  }

 private:
  void run() {
    std::vector<uint8_t> buf(65536);
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) continue;
      if (from.sin_port == server_.sin_port) {
        if (have_client_)
          sendto(fd_, buf.data(), size_t(n), 0, reinterpret_cast<sockaddr*>(&client_), sizeof client_);
      } else {
        client_ = from;
        have_client_ = true;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (recorded_.size() < 4096) recorded_.emplace_back(buf.begin(), buf.begin() + n);
        }
        sendto(fd_, buf.data(), size_t(n), 0, reinterpret_cast<sockaddr*>(&server_), sizeof server_);
      }
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  sockaddr_in server_{};
  sockaddr_in client_{};
  bool have_client_ = false;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::vector<uint8_t>> recorded_;
  std::thread thread_;
};

TEST(HostHostile, RandomTruncatedReplayedAndForgedDatagrams_ConnectionUntouchedAndCounted) {
  Host server(test_config());
  Host client(test_config());
  EventRecorder se(server);
  EventRecorder ce(client);
  ListenSocketHandle l = server.listen(0).value_or(kInvalidListenSocket);
  uint16_t server_port = server.listen_address(l)->port();
  RecordingRelay relay(server_port);
  ConnectionHandle c = client.connect(Address::loopback_v4(relay.port())).value_or(kInvalidConnection);
  ASSERT_TRUE(pump_until({&client, &server}, [&] {
    return ce.find(ConnectionEventKind::kConnected, c) && se.find(ConnectionEventKind::kConnected);
  }));
  ConnectionHandle sc = se.find(ConnectionEventKind::kConnected)->info.handle;

  // Some traffic to record.
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(client.send(c, make_message(uint64_t(i), 500).data(), 500), SendResult::kOk);
  int received = 0;
  std::vector<Message> in;
  auto drain = [&](int want) {
    return pump_until({&server}, [&] {
      in.clear();
      server.receive(sc, in);
      for (const Message& m : in) {
        EXPECT_EQ(message_index(m.data()), uint64_t(received));
        EXPECT_TRUE(check_message(uint64_t(received), m.data(), m.size()));
        ++received;
      }
      return received == want;
    });
  };
  ASSERT_TRUE(drain(50));
  HostCounters before = server.counters();
  auto status_before = server.status(sc);

  std::mt19937_64 rng(99);
  std::printf("seed 99\n");
  auto recorded = relay.recorded();
  ASSERT_GT(recorded.size(), 5u);
  std::vector<std::vector<uint8_t>> data_packets;
  for (auto& d : recorded)
    if (!d.empty() && (d[0] & 0xc0) == 0x40 && d.size() > 30) data_packets.push_back(d);
  ASSERT_FALSE(data_packets.empty());

  // From a stranger's address: random garbage of every size class.
  int stranger = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(server_port);
  for (int i = 0; i < 300; ++i) {
    std::vector<uint8_t> g(size_t(rng() % 1500));
    for (auto& b : g)
      b = uint8_t(rng());
    sendto(stranger, g.data(), g.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  // From the peer's own address: replays, truncations, and forgeries with a valid header.
  int replays = 0, forged = 0;
  for (int i = 0; i < 300; ++i) {
    const auto& d = data_packets[size_t(rng() % data_packets.size())];
    switch (i % 3) {
      case 0:
        relay.inject(d);
        ++replays;
        break;
      case 1:
        relay.inject(std::vector<uint8_t>(d.begin(), d.begin() + long(rng() % d.size())));
        break;
      default: {
        // A packet number never used yet (so it is not a mere duplicate) and a random body: it must fail
        // authentication.
        std::vector<uint8_t> f = d;
        uint32_t pn =
            (uint32_t(f[5]) << 24 | uint32_t(f[6]) << 16 | uint32_t(f[7]) << 8 | f[8]) + 1000 + uint32_t(i);
        f[5] = uint8_t(pn >> 24);
        f[6] = uint8_t(pn >> 16);
        f[7] = uint8_t(pn >> 8);
        f[8] = uint8_t(pn);
        for (size_t k = 9; k < f.size(); ++k)
          f[k] = uint8_t(rng());
        relay.inject(f);
        ++forged;
      }
    }
  }
  close(stranger);

  // The connection carries on as if nothing happened.
  for (int i = 50; i < 100; ++i)
    ASSERT_EQ(client.send(c, make_message(uint64_t(i), 500).data(), 500), SendResult::kOk);
  ASSERT_TRUE(drain(100));
  EXPECT_EQ(client.connection_info(c)->state, ConnectionState::kConnected);
  EXPECT_EQ(server.connection_info(sc)->state, ConnectionState::kConnected);
  EXPECT_FALSE(se.find(ConnectionEventKind::kClosed));
  EXPECT_FALSE(ce.find(ConnectionEventKind::kClosed));

  HostCounters after = server.counters();
  auto status_after = server.status(sc);
  uint64_t dropped_by_host =
      (after.invalid_datagrams - before.invalid_datagrams) +
      (after.unknown_connection - before.unknown_connection) + (after.wrong_source - before.wrong_source) +
      (after.bad_cookies - before.bad_cookies) + (after.handshake_failures - before.handshake_failures);
  uint64_t dropped_by_connection =
      (status_after->packets_rejected_auth - status_before->packets_rejected_auth) +
      (status_after->packets_duplicate - status_before->packets_duplicate);
  std::printf(
      "host dropped %llu, connection dropped %llu (auth %llu, duplicate %llu)\n",
      (unsigned long long)dropped_by_host, (unsigned long long)dropped_by_connection,
      (unsigned long long)(status_after->packets_rejected_auth - status_before->packets_rejected_auth),
      (unsigned long long)(status_after->packets_duplicate - status_before->packets_duplicate));
  EXPECT_GE(status_after->packets_duplicate - status_before->packets_duplicate, uint64_t(replays));
  EXPECT_GE(status_after->packets_rejected_auth - status_before->packets_rejected_auth, uint64_t(forged));
  // Every hostile datagram is accounted for exactly once: dropped and counted by the Host or by the
  // connection, or (a random one that happens to parse as a stranger's connection request) answered with an
  // address-validation challenge.
  EXPECT_EQ(dropped_by_host + dropped_by_connection + (after.retries_sent - before.retries_sent), 600u);
}

}  // namespace
}  // namespace peerlink::test
