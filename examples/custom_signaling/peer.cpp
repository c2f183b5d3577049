// custom-signaling-peer: two of these find each other through the rendezvous server (with the "line"
// signaling plugin), connect peer to peer with ICE and exchange a few encrypted messages.
//
//   custom-signaling-server 0                                          # prints "listening on 127.0.0.1:PORT"
//   custom-signaling-peer --server 127.0.0.1:PORT --name bob           # waits for a peer
//   custom-signaling-peer --server 127.0.0.1:PORT --name alice --connect bob
//
// Each side sends --messages lines as soon as the connection is up and prints what it hears. A side is done
// when it has heard all of the peer's lines and the peer has acknowledged all of its own; it then closes and
// exits 0. Exit status 1: failure (unreachable peer, rendezvous server down before a connection, the
// connection ended early, timeout); 2: bad arguments.
#include <peerlink/host.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "line_signaling.hpp"

using namespace peerlink;
using namespace std::chrono_literals;

namespace {

struct Arguments {
  std::string server_host;
  uint16_t server_port = 0;
  std::string name;
  std::string connect;  // empty: listen
  int messages = 3;
  int timeout_seconds = 30;
};

void usage(const char* argv0) {
  std::fprintf(
      stderr,
      "usage: %s --server HOST:PORT --name NAME [--connect PEER] [--messages N] [--timeout SECONDS]\n"
      "  HOST is a numeric address (127.0.0.1, [::1]); PEER is a name (bob) or a peer id (line:bob)\n",
      argv0);
}

bool parse_number(const char* text, long low, long high, long& out) {
  char* end = nullptr;
  out = std::strtol(text, &end, 10);
  return *text != '\0' && *end == '\0' && out >= low && out <= high;
}

bool parse_arguments(int argc, char** argv, Arguments& a) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) return false;
    const char* value = argv[++i];
    long number = 0;
    if (arg == "--server") {
      std::string text = value;
      size_t colon = text.rfind(':');
      if (colon == std::string::npos || !parse_number(text.c_str() + colon + 1, 1, 65535, number))
        return false;
      a.server_host = text.substr(0, colon);
      if (a.server_host.size() >= 2 && a.server_host.front() == '[' && a.server_host.back() == ']')
        a.server_host = a.server_host.substr(1, a.server_host.size() - 2);
      a.server_port = uint16_t(number);
    } else if (arg == "--name") {
      a.name = value;
    } else if (arg == "--connect") {
      a.connect = value;
    } else if (arg == "--messages") {
      if (!parse_number(value, 1, 1000, number)) return false;
      a.messages = int(number);
    } else if (arg == "--timeout") {
      if (!parse_number(value, 1, 3600, number)) return false;
      a.timeout_seconds = int(number);
    } else {
      return false;
    }
  }
  return !a.server_host.empty() && !a.name.empty();
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // line by line, also into a pipe or file (scripts read it)
  Arguments args;
  if (!parse_arguments(argc, argv, args)) {
    usage(argv[0]);
    return 2;
  }
  const char* me = args.name.c_str();

  // The plugin: it connects to the server from its own thread once the Host starts it.
  std::atomic<bool> signaling_down{false};
  LineSignaling::Options options;
  options.server_host = args.server_host;
  options.server_port = args.server_port;
  options.name = args.name;
  options.on_down = [&signaling_down](const std::string&) { signaling_down = true; };
  std::shared_ptr<LineSignaling> plugin;
  try {
    plugin = std::make_shared<LineSignaling>(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }

  HostConfig config;
  config.signaling.push_back(plugin);
  config.ice.interfaces_allow = {"lo"};  // loopback only: the example never leaves the machine
  Host host(config);                     // calls plugin->start()

  if (!plugin->wait_ready(5s)) {
    std::fprintf(stderr, "[%s] the rendezvous server is not usable: %s\n", me, plugin->error().c_str());
    return 1;
  }
  std::printf("[%s] signed in as line:%s (key %s)\n", me, me, host.identity().fingerprint().c_str());

  ConnectionHandle conn = kInvalidConnection;
  bool connected = false, ended = false;
  ConnectionInfo end_info;
  const bool connecting = !args.connect.empty();

  auto send_lines = [&] {
    for (int i = 1; i <= args.messages; ++i) {
      std::string text = "message " + std::to_string(i) + "/" + std::to_string(args.messages) + " from " + me;
      SendResult r = host.send(conn, text.data(), text.size(), send_flags::kReliable | send_flags::kNoNagle);
      if (r != SendResult::kOk) std::fprintf(stderr, "[%s] send failed: %s\n", me, to_string(r));
      std::printf("[%s] said: %s\n", me, text.c_str());
    }
  };

  host.set_connection_callback([&](const ConnectionEvent& e) {
    switch (e.kind) {
      case ConnectionEventKind::kIncomingRequest:
        break;  // not raised: listen_p2p() accepts automatically
      case ConnectionEventKind::kConnected:
        if (conn != kInvalidConnection && e.info.handle != conn) {
          host.close(e.info.handle, 1001, "busy: already talking to someone");  // one peer at a time
          break;
        }
        conn = e.info.handle;
        connected = true;
        std::printf("[%s] connected to %s (key %s, route %s)\n", me, e.info.remote_peer.str().c_str(),
                    e.info.remote_fingerprint.c_str(), to_string(e.info.route));
        send_lines();
        break;
      case ConnectionEventKind::kClosed:
        if (e.info.handle != conn) {
          host.close(e.info.handle);
          break;
        }
        ended = true;
        end_info = e.info;
        break;
    }
  });

  if (connecting) {
    std::string peer_text =
        args.connect.find(':') == std::string::npos ? "line:" + args.connect : args.connect;
    std::string error;
    auto peer = PeerId::parse(peer_text, &error);
    if (!peer) {
      std::fprintf(stderr, "[%s] bad peer '%s': %s\n", me, peer_text.c_str(), error.c_str());
      return 2;
    }
    conn = host.connect(*peer, {}, &error);
    if (conn == kInvalidConnection) {
      std::fprintf(stderr, "[%s] cannot connect to %s: %s\n", me, peer->str().c_str(), error.c_str());
      return 1;
    }
    std::printf("[%s] connecting to %s\n", me, peer->str().c_str());
  } else {
    std::string error;
    if (host.listen_p2p({}, &error) == kInvalidListenSocket) {
      std::fprintf(stderr, "[%s] cannot listen: %s\n", me, error.c_str());
      return 1;
    }
    std::printf("[%s] waiting for a peer\n", me);
  }

  // Done when we have heard all of the peer's lines and the peer has acknowledged all of ours. Then the Host
  // is kept alive a little longer (kGrace) so that it acknowledges the peer's last packets too; only then
  // do we close. (A side that closed at once could leave the peer retransmitting unacknowledged lines.)
  const auto kGrace = 1s;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(args.timeout_seconds);
  int heard = 0;
  bool finishing = false;
  std::chrono::steady_clock::time_point finish_at;
  std::vector<Message> received;
  while (std::chrono::steady_clock::now() < deadline) {
    host.wait(50ms);
    host.run_callbacks();
    if (conn != kInvalidConnection) {
      received.clear();
      host.receive(conn, received);
      for (const Message& m : received) {
        ++heard;
        std::printf("[%s] heard: %.*s\n", me, int(m.size()), reinterpret_cast<const char*>(m.data()));
      }
    }
    if (connected && !ended && !finishing && heard >= args.messages) {
      auto st = host.status(conn);
      if (st && st->queued_bytes == 0) {
        std::printf("[%s] heard all %d lines and the peer has all of mine (rtt %lld us)\n", me, args.messages,
                    static_cast<long long>(st->rtt.count()));
        finishing = true;
        finish_at = std::chrono::steady_clock::now() + kGrace;
      }
    }
    if (ended) {
      std::printf("[%s] connection %s: %s (code %u, \"%s\")\n", me, connected ? "ended" : "failed",
                  to_string(EndReason(end_info.end_reason)), end_info.end_reason, end_info.end_debug.c_str());
      host.close(conn);
      return finishing ? 0 : 1;  // the peer finishing first and closing is fine once we are done too
    }
    if (finishing && std::chrono::steady_clock::now() >= finish_at) {
      host.close(conn, uint32_t(EndReason::kAppGeneric), "bye", true);
      std::printf("[%s] done\n", me);
      return 0;
    }
    if (!connected && signaling_down) {
      std::fprintf(stderr, "[%s] signaling is down before any connection was made: giving up\n", me);
      return 1;
    }
  }
  std::fprintf(stderr, "[%s] timed out after %d s (heard %d of %d lines)\n", me, args.timeout_seconds, heard,
               args.messages);
  return 1;
}
