// Loopback demo: two Hosts, "alice" and "bob", in one process, talking over UDP on 127.0.0.1 through the
// public API only (peerlink/host.hpp). Bob listens; Alice knows Bob's public key (as signaling would tell
// her), connects with it pinned, and they exchange a short encrypted conversation; then Alice closes
// gracefully and Bob sees the close with her reason.
#include <peerlink/host.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace peerlink;
using namespace std::chrono_literals;

namespace {

struct Peer {
  const char* name;
  Host host;
  ConnectionHandle conn = kInvalidConnection;
  bool connected = false, closed = false;

  explicit Peer(const char* n) : name(n) {
    host.set_connection_callback([this](const ConnectionEvent& e) {
      switch (e.kind) {
        case ConnectionEventKind::kIncomingRequest:
          break;  // listen sockets accept automatically unless told otherwise
        case ConnectionEventKind::kConnected:
          conn = e.info.handle;
          connected = true;
          std::printf("[%s] connected to %s at %s\n", name, e.info.remote_fingerprint.c_str(),
                      e.info.remote_address.to_string().c_str());
          break;
        case ConnectionEventKind::kClosed:
          closed = true;
          std::printf("[%s] connection closed by peer: %s (reason %u, \"%s\")\n", name,
                      to_string(EndReason(e.info.end_reason)), e.info.end_reason, e.info.end_debug.c_str());
          host.close(e.info.handle);  // release the handle
          break;
      }
    });
  }

  void say(const std::string& text) {
    std::printf("[%s] says: %s\n", name, text.c_str());
    host.send(conn, text.data(), text.size(), send_flags::kReliable | send_flags::kNoNagle);
  }

  std::vector<std::string> heard() {
    std::vector<Message> messages;
    host.receive(conn, messages);
    std::vector<std::string> out;
    for (const Message& m : messages)
      out.emplace_back(m.text());
    return out;
  }
};

}  // namespace

int main() {
  Peer alice("alice"), bob("bob");
  Result<ListenSocketHandle> listener = bob.host.listen(Address::loopback_v4(0));
  if (!listener) {
    std::fprintf(stderr, "bob cannot listen: %s\n", listener.error().message.c_str());
    return 1;
  }
  Address bob_address = *bob.host.listen_address(*listener);
  std::printf("alice %s\n", alice.host.identity().fingerprint().c_str());
  std::printf("bob   %s  listening on %s\n", bob.host.identity().fingerprint().c_str(),
              bob_address.to_string().c_str());

  auto started = std::chrono::steady_clock::now();
  ConnectOptions pin;
  pin.expected_key = bob.host.identity().public_key();
  Result<ConnectionHandle> connecting = alice.host.connect(bob_address, pin);
  if (!connecting) {
    std::fprintf(stderr, "alice cannot connect: %s\n", connecting.error().message.c_str());
    return 1;
  }
  alice.conn = *connecting;
  const std::vector<std::string> alice_lines = {"hello bob, this is alice", "the handshake was Noise IK",
                                                "every packet here is AEAD-protected"};
  const std::vector<std::string> bob_lines = {"hi alice!", "and you proved you hold your key", "bye for now"};
  size_t alice_said = 0, bob_heard = 0, alice_heard = 0;
  bool alice_closing = false;
  while (!bob.closed) {
    alice.host.wait(5ms);
    alice.host.run_callbacks();
    bob.host.run_callbacks();
    if (alice.connected && alice_said < alice_lines.size() && alice_said <= alice_heard)
      alice.say(alice_lines[alice_said++]);
    if (bob.connected) {
      for (const std::string& line : bob.heard()) {
        std::printf("[bob] heard: %s\n", line.c_str());
        bob.say(bob_lines[bob_heard++ % bob_lines.size()]);
      }
    }
    for (const std::string& line : alice.heard()) {
      std::printf("[alice] heard: %s\n", line.c_str());
      ++alice_heard;
    }
    if (alice_heard == alice_lines.size() && !alice_closing) {
      auto st = alice.host.status(alice.conn);
      std::printf("[alice] rtt %lld us, %llu packets sent, %llu received; closing\n",
                  static_cast<long long>(st->rtt ? st->rtt->count() : 0),
                  static_cast<unsigned long long>(st->packets_sent),
                  static_cast<unsigned long long>(st->packets_received));
      alice.host.close(alice.conn, CloseMode::kAfterDelivery, uint32_t(EndReason::kAppGeneric), "goodbye");
      alice_closing = true;
    }
    if (std::chrono::steady_clock::now() - started > 10s) {
      std::fprintf(stderr, "demo did not finish within 10 s\n");
      return 1;
    }
  }
  std::printf("demo finished in %.1f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
  return 0;
}
