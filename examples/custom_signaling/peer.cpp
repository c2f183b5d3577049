// custom-signaling-peer: two of these find each other through the rendezvous server (with the "line"
// signaling plugin), connect peer to peer with ICE and exchange a few encrypted messages.
//
//   custom-signaling-server --bind 192.0.2.10 7000             # prints "listening on 192.0.2.10:7000"
//   custom-signaling-peer --server 192.0.2.10:7000 --name bob  # waits for a peer
//   custom-signaling-peer --server 192.0.2.10:7000 --name alice --connect bob
//       --stun stun.example.org:3478 --turn turn.example.org:3478 --turn-user u --turn-password p
//
// Candidates come from every interface that is up except loopback (--interface limits them), plus the
// server-reflexive address a STUN server sees and a relayed address on a TURN server, so two machines
// behind NATs can connect (through the relay when nothing else works; --relay-only never reveals our own
// addresses). Each side sends --messages lines as soon as the connection is up and prints what it hears.
// A side is done when it has heard all of the peer's lines and the peer has acknowledged all of its own;
// it then closes and exits 0. Exit status 1: failure (unreachable peer, rendezvous server down before a
// connection, the connection ended early, timeout); 2: bad arguments.
#include <peerlink/host.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
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
  // ICE.
  std::vector<std::string> interfaces;  // empty: every interface that is up, except loopback
  std::vector<StunServer> stun;
  std::vector<std::pair<std::string, uint16_t>> turn;
  std::string turn_user, turn_password, turn_secret;
  bool turn_tcp = false;
  bool relay_only = false;
};

void usage(const char* argv0) {
  std::fprintf(
      stderr,
      "usage: %s --server HOST:PORT --name NAME [--connect PEER] [--messages N] [--timeout SECONDS]\n"
      "          [--interface IF]... [--stun HOST:PORT]... [--turn HOST:PORT]...\n"
      "          [--turn-user USER --turn-password PASSWORD | --turn-secret SECRET] [--turn-tcp]\n"
      "          [--relay-only]\n"
      "  --server HOST is a numeric address (127.0.0.1, [::1]); PEER is a name (bob) or a peer id\n"
      "  (line:bob). --turn-secret makes time-limited credentials (coturn's use-auth-secret) for\n"
      "  NAME. --relay-only offers only relayed candidates (needs --turn).\n",
      argv0);
}

bool parse_number(const char* text, long low, long high, long& out) {
  char* end = nullptr;
  out = std::strtol(text, &end, 10);
  return *text != '\0' && *end == '\0' && out >= low && out <= high;
}

// "HOST:PORT" or "[V6]:PORT".
bool parse_host_port(const std::string& text, std::string& host, uint16_t& port) {
  const size_t colon = text.rfind(':');
  long number = 0;
  if (colon == std::string::npos || !parse_number(text.c_str() + colon + 1, 1, 65535, number)) return false;
  host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  port = uint16_t(number);
  return !host.empty();
}

bool parse_arguments(int argc, char** argv, Arguments& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--turn-tcp") {
      a.turn_tcp = true;
      continue;
    }
    if (arg == "--relay-only") {
      a.relay_only = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    long number = 0;
    std::string host;
    uint16_t port = 0;
    if (arg == "--server") {
      if (!parse_host_port(value, a.server_host, a.server_port)) return false;
    } else if (arg == "--name") {
      a.name = value;
    } else if (arg == "--connect") {
      a.connect = value;
    } else if (arg == "--messages") {
      if (!parse_number(value.c_str(), 1, 1000, number)) return false;
      a.messages = int(number);
    } else if (arg == "--timeout") {
      if (!parse_number(value.c_str(), 1, 3600, number)) return false;
      a.timeout_seconds = int(number);
    } else if (arg == "--interface") {
      a.interfaces.push_back(value);
    } else if (arg == "--stun") {
      if (!parse_host_port(value, host, port)) return false;
      a.stun.push_back({host, port});
    } else if (arg == "--turn") {
      if (!parse_host_port(value, host, port)) return false;
      a.turn.emplace_back(host, port);
    } else if (arg == "--turn-user") {
      a.turn_user = value;
    } else if (arg == "--turn-password") {
      a.turn_password = value;
    } else if (arg == "--turn-secret") {
      a.turn_secret = value;
    } else {
      return false;
    }
  }
  const bool turn_credentials = !a.turn_secret.empty() || (!a.turn_user.empty() && !a.turn_password.empty());
  return !a.server_host.empty() && !a.name.empty() && (a.turn.empty() || turn_credentials);
}

IceConfig ice_config(const Arguments& a) {
  IceConfig ice;
  ice.interfaces_allow = a.interfaces;
  ice.stun_servers = a.stun;
  const TurnTransport transport = a.turn_tcp ? TurnTransport::kTcp : TurnTransport::kUdp;
  for (const auto& [host, port] : a.turn) {
    if (!a.turn_secret.empty())
      ice.turn_servers.push_back(
          TurnServer::with_shared_secret(host, port, transport, a.name, a.turn_secret));
    else
      ice.turn_servers.push_back({host, port, transport, a.turn_user, a.turn_password});
  }
  if (a.relay_only) ice.candidates = candidate_kinds::kRelay;
  return ice;
}

// One conversation: send our lines once connected, print the peer's, and finish when both sides have
// everything. Events and messages come from Host::service(), one at a time.
class Conversation {
 public:
  Conversation(Host& host, const Arguments& args, const std::atomic<bool>& signaling_down)
      : host_(host), args_(args), me_(args.name.c_str()), signaling_down_(signaling_down) {}

  // Starts the connection (--connect) or listens for one; false (printed) if the Host refuses.
  bool start() {
    if (args_.connect.empty()) {
      Result<ListenSocketHandle> listening = host_.listen_p2p();
      if (!listening) return failed("cannot listen: " + listening.error().message);
      std::printf("[%s] waiting for a peer\n", me_);
      return true;
    }
    const std::string text =
        args_.connect.find(':') == std::string::npos ? "line:" + args_.connect : args_.connect;
    Result<PeerId> peer = PeerId::parse(text);
    if (!peer) return failed("bad peer '" + text + "': " + peer.error().message);
    Result<ConnectionHandle> c = host_.connect(*peer);
    if (!c) return failed("cannot connect to " + peer->str() + ": " + c.error().message);
    conn_ = *c;
    std::printf("[%s] connecting to %s\n", me_, peer->str().c_str());
    return true;
  }

  // Until done; the exit status.
  int run() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(args_.timeout_seconds);
    HostEvent event;
    while (std::chrono::steady_clock::now() < deadline) {
      if (host_.service(event, 50ms)) {
        if (std::optional<int> status = on_event(event)) return *status;
        continue;
      }
      if (std::optional<int> status = check_progress()) return *status;
    }
    std::fprintf(stderr, "[%s] timed out after %d s (heard %d of %d lines)\n", me_, args_.timeout_seconds,
                 heard_, args_.messages);
    return 1;
  }

 private:
  bool failed(const std::string& why) {
    std::fprintf(stderr, "[%s] %s\n", me_, why.c_str());
    return false;
  }

  // An exit status once the conversation is over.
  std::optional<int> on_event(HostEvent& e) {
    switch (e.kind) {
      case HostEventKind::kIncomingRequest:
        return std::nullopt;  // not raised: listen_p2p() accepts automatically
      case HostEventKind::kConnected:
        if (connected_) {  // one peer at a time
          host_.close(e.connection, CloseMode::kNow, 1001, "busy: already talking to someone");
          return std::nullopt;
        }
        conn_ = e.connection;
        connected_ = true;
        std::printf("[%s] connected to %s (key %s, route %s, %s)\n", me_, e.info.remote_peer.str().c_str(),
                    e.info.remote_fingerprint.c_str(), to_string(e.info.route),
                    e.info.relayed ? "relayed" : "direct");
        send_lines();
        return std::nullopt;
      case HostEventKind::kMessage:
        ++heard_;
        std::printf("[%s] heard: %.*s\n", me_, int(e.message.size()), e.message.text().data());
        return std::nullopt;
      case HostEventKind::kClosed:  // service() has released the handle: nothing to close
        if (e.connection != conn_) return std::nullopt;
        std::printf("[%s] connection %s: %s (code %u, \"%s\")\n", me_, connected_ ? "ended" : "failed",
                    to_string(EndReason(e.info.end_reason)), e.info.end_reason, e.info.end_debug.c_str());
        return finishing_ ? 0 : 1;  // the peer finishing first and closing is fine once we are done too
    }
    return std::nullopt;
  }

  void send_lines() {
    for (int i = 1; i <= args_.messages; ++i) {
      const std::string text =
          "message " + std::to_string(i) + "/" + std::to_string(args_.messages) + " from " + args_.name;
      SendResult r = host_.send(conn_, text.data(), text.size(), send_flags::kNoNagle);
      if (r != SendResult::kOk) std::fprintf(stderr, "[%s] send failed: %s\n", me_, to_string(r));
      std::printf("[%s] said: %s\n", me_, text.c_str());
    }
  }

  // Done when we have heard all of the peer's lines and the peer has acknowledged all of ours. Then the
  // Host is kept alive a little longer (kGrace) so that it acknowledges the peer's last packets too; only
  // then do we close. (A side that closed at once could leave the peer retransmitting unacknowledged lines.)
  std::optional<int> check_progress() {
    static constexpr auto kGrace = 1s;
    if (connected_ && !finishing_ && heard_ >= args_.messages) {
      std::optional<ConnectionStatus> st = host_.status(conn_);
      if (st && st->queued_bytes == 0) {
        std::printf("[%s] heard all %d lines and the peer has all of mine (rtt %lld us)\n", me_,
                    args_.messages, static_cast<long long>(st->rtt ? st->rtt->count() : -1));
        finishing_ = true;
        finish_at_ = std::chrono::steady_clock::now() + kGrace;
      }
    }
    if (finishing_ && std::chrono::steady_clock::now() >= finish_at_) {
      host_.close(conn_, CloseMode::kAfterDelivery, uint32_t(EndReason::kAppGeneric), "bye");
      std::printf("[%s] done\n", me_);
      return 0;
    }
    if (!connected_ && signaling_down_) {
      std::fprintf(stderr, "[%s] signaling is down before any connection was made: giving up\n", me_);
      return 1;
    }
    return std::nullopt;
  }

  Host& host_;
  const Arguments& args_;
  const char* me_;
  const std::atomic<bool>& signaling_down_;
  ConnectionHandle conn_ = kInvalidConnection;
  bool connected_ = false;
  bool finishing_ = false;
  std::chrono::steady_clock::time_point finish_at_;
  int heard_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // line by line, also into a pipe or file (scripts read it)
  Arguments args;
  if (!parse_arguments(argc, argv, args)) {
    usage(argv[0]);
    return 2;
  }

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
  config.ice = ice_config(args);
  Result<std::unique_ptr<Host>> host = Host::create(config);  // calls plugin->start()
  if (!host) {
    std::fprintf(stderr, "[%s] %s\n", args.name.c_str(), host.error().message.c_str());
    return 2;
  }
  if (!plugin->wait_ready(5s)) {
    std::fprintf(stderr, "[%s] the rendezvous server is not usable: %s\n", args.name.c_str(),
                 plugin->error().c_str());
    return 1;
  }
  std::printf("[%s] signed in as %s (key %s)\n", args.name.c_str(), plugin->local_peer().str().c_str(),
              (*host)->identity().fingerprint().c_str());

  Conversation conversation(**host, args, signaling_down);
  if (!conversation.start()) return 1;
  return conversation.run();
}
