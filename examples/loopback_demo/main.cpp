// Loopback demo: two peers, "alice" and "bob", each an Endpoint of the sans-I/O core with its own UDP
// socket on 127.0.0.1. Alice knows Bob's public key (as signaling would tell her), connects with the Noise
// IK handshake, and they exchange a short encrypted conversation, then close gracefully.
//
// It shows the shape every I/O layer around the core has: read datagrams into handle_datagram, drive
// timers with next_timeout/handle_timeout, write what poll_transmit produces, react to events.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "transport/crypto/random.hpp"
#include "transport/protocol/endpoint.hpp"

using namespace peerlink;
using protocol::Endpoint;
using protocol::Instant;
using protocol::PathAddress;

namespace {

Instant now() {
  return Instant(
      std::chrono::duration_cast<protocol::Duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

PathAddress to_path(const sockaddr_in& a) {
  return PathAddress::from_bytes(&a, sizeof a);
}
sockaddr_in from_path(const PathAddress& p) {
  sockaddr_in a{};
  std::memcpy(&a, p.bytes.data(), sizeof a);
  return a;
}

struct Peer {
  const char* name;
  Identity identity = Identity::generate();
  crypto::SystemRandom rng;
  Endpoint endpoint;
  int fd = -1;
  sockaddr_in addr{};
  protocol::ConnectionId conn = 0;
  bool connected = false, closed = false;

  Peer(const char* n, const protocol::EndpointConfig& cfg) : name(n), endpoint(cfg, identity, rng) {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::perror("socket/bind");
      std::exit(1);
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~Peer() { close(fd); }

  // One turn of the event loop: receive, timers, transmit, events.
  void service() {
    uint8_t buf[2048];
    Instant t = now();
    for (;;) {
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) break;
      endpoint.handle_datagram(t, to_path(from), buf, size_t(n));
    }
    if (endpoint.next_timeout() <= t) endpoint.handle_timeout(t);
    PathAddress to;
    while (size_t n = endpoint.poll_transmit(t, buf, sizeof buf, to)) {
      sockaddr_in dest = from_path(to);
      sendto(fd, buf, n, 0, reinterpret_cast<sockaddr*>(&dest), sizeof dest);
    }
    protocol::Event e;
    while (endpoint.poll_event(e)) {
      if (e.kind == protocol::EventKind::kIncomingRequest) {
        std::printf("[%s] connection request from %s: accepting\n", name,
                    Identity::fingerprint_of(e.remote_key).c_str());
        conn = e.connection;
        endpoint.accept(e.connection, t);
      } else if (e.state == protocol::ConnectionState::kConnected) {
        connected = true;
        std::printf("[%s] connected\n", name);
      } else if (e.state == protocol::ConnectionState::kClosed) {
        closed = true;
        std::printf("[%s] connection closed by peer: %s (reason %u, \"%s\")\n", name,
                    to_string(EndReason(e.reason)), e.reason, e.debug.c_str());
      }
    }
  }

  void say(const std::string& text) {
    std::printf("[%s] says: %s\n", name, text.c_str());
    endpoint.send(conn, reinterpret_cast<const uint8_t*>(text.data()), text.size(),
                  protocol::send_flags::kReliable | protocol::send_flags::kNoNagle, 0, now());
  }

  std::vector<std::string> heard() {
    std::vector<std::string> out;
    protocol::ReceivedMessage m;
    while (endpoint.receive(conn, m))
      out.emplace_back(m.data.begin(), m.data.end());
    return out;
  }
};

}  // namespace

int main() {
  protocol::EndpointConfig cfg;
  Peer alice("alice", cfg), bob("bob", cfg);
  std::printf("alice %s  on 127.0.0.1:%u\n", alice.identity.fingerprint().c_str(),
              ntohs(alice.addr.sin_port));
  std::printf("bob   %s  on 127.0.0.1:%u\n", bob.identity.fingerprint().c_str(), ntohs(bob.addr.sin_port));

  Instant started = now();
  alice.conn = alice.endpoint.connect(now(), to_path(bob.addr), bob.identity.public_key());
  const std::vector<std::string> alice_lines = {"hello bob, this is alice", "the handshake was Noise IK",
                                                "every packet here is AEAD-protected"};
  const std::vector<std::string> bob_lines = {"hi alice!", "and you proved you hold your key", "bye for now"};
  size_t alice_said = 0, bob_heard = 0, alice_heard = 0;
  bool alice_closing = false;
  while (!bob.closed) {
    pollfd fds[2] = {{alice.fd, POLLIN, 0}, {bob.fd, POLLIN, 0}};
    poll(fds, 2, 5);
    alice.service();
    bob.service();
    if (alice.connected && alice_said < alice_lines.size() && alice_said <= alice_heard) {
      alice.say(alice_lines[alice_said++]);
    }
    for (const std::string& line : bob.heard()) {
      std::printf("[bob] heard: %s\n", line.c_str());
      bob.say(bob_lines[bob_heard++ % bob_lines.size()]);
    }
    for (const std::string& line : alice.heard()) {
      std::printf("[alice] heard: %s\n", line.c_str());
      ++alice_heard;
    }
    if (alice_heard == alice_lines.size() && !alice_closing) {
      auto st = alice.endpoint.stats(alice.conn, now());
      std::printf("[alice] rtt %.0f us, %llu packets sent, %llu received; closing\n",
                  std::chrono::duration<double, std::micro>(st->rtt_smoothed).count(),
                  (unsigned long long)st->packets_sent, (unsigned long long)st->packets_received);
      alice.endpoint.close(alice.conn, uint32_t(EndReason::kAppGeneric), "goodbye", true, now());
      alice_closing = true;
    }
    if (now() - started > std::chrono::seconds(10)) {
      std::fprintf(stderr, "demo did not finish within 10 s\n");
      return 1;
    }
  }
  std::printf("demo finished in %.1f ms\n",
              std::chrono::duration<double, std::milli>(now() - started).count());
  return 0;
}
