// lan-beacon-peer: a peer on the LAN with no server. It announces itself for a service, lists the peers of
// that service as it finds and loses them, accepts their connections and echoes what they send. With
// --connect it connects to the first peer it finds, sends one message, and exits once the echo is back.
//
//   lan-beacon-peer --name alice                  # on one machine
//   lan-beacon-peer --name bob --connect          # on another of the same LAN
//
// One line per happening on stdout: "ready <own id>", "found <id> <name>", "lost <id>", "connected <id>
// <route>", "message <id> <text>", "echo <ms since start>". Exit status: 0 done (or stopped by a signal),
// 1 failed (timeout, connection ended), 2 bad usage.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "peerlink/host.hpp"
#include "peerlink/lan.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) {
  g_stop = 1;
}

int usage(const char* why) {
  if (why) std::fprintf(stderr, "lan-beacon-peer: %s\n", why);
  std::fprintf(stderr,
               "usage: lan-beacon-peer [--service NAME] [--name TEXT] [--network-key-file FILE]\n"
               "                       [--interface IF]... [--ttl SECONDS] [--connect] [--message TEXT]\n"
               "                       [--timeout SECONDS] [--responder auto|own|avahi] [--help]\n"
               "  --service NAME          peers of other services stay invisible (default: peerlink)\n"
               "  --name TEXT             the name others see (default: the host name)\n"
               "  --network-key-file F    only peers holding the same key (the file's first line) are seen\n"
               "  --interface IF          serve only these interfaces (repeatable; default: all usable)\n"
               "  --ttl SECONDS           how soon a peer that vanished is forgotten (default 120)\n"
               "  --connect               connect to the first peer found, send --message, exit on its echo\n"
               "  --timeout SECONDS       give up after this long (default: never; 10 with --connect)\n"
               "  --responder WHO         multicast DNS through avahi-daemon, the beacon's own, or avahi\n"
               "                          when it runs (auto, the default)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const auto start = std::chrono::steady_clock::now();
  peerlink::HostConfig config;
  peerlink::LanOptions lan;
  bool connect_first = false;
  std::string message = "hello";
  double timeout_s = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--help" || arg == "-h") return usage(nullptr), 0;
    if (arg == "--connect") {
      connect_first = true;
      continue;
    }
    if (!(v = value())) return usage(("missing value after " + arg).c_str());
    if (arg == "--service") {
      lan.service = v;
    } else if (arg == "--name") {
      lan.display_name = v;
    } else if (arg == "--interface") {
      lan.interfaces.push_back(v);
    } else if (arg == "--message") {
      message = v;
    } else if (arg == "--ttl" || arg == "--timeout") {
      char* end = nullptr;
      const double n = std::strtod(v, &end);
      if (!end || *end || !(n > 0)) return usage((arg + " wants a positive number").c_str());
      if (arg == "--ttl")
        lan.ttl_seconds = static_cast<uint32_t>(n);
      else
        timeout_s = n;
    } else if (arg == "--responder") {
      const std::optional<peerlink::LanResponder> who = peerlink::parse_lan_responder(v);
      if (!who) return usage("--responder wants auto, own or avahi");
      lan.responder = *who;
    } else if (arg == "--network-key-file") {
      std::ifstream in(v);
      if (!in || !std::getline(in, lan.network_key)) return usage(("cannot read " + std::string(v)).c_str());
    } else {
      return usage(("unknown option " + arg).c_str());
    }
  }
  if (connect_first && timeout_s < 0) timeout_s = 10;

  lan.identity = config.identity;
  bool found_one = false;
  peerlink::PeerId target;
  lan.on_event = [&](const peerlink::LanEvent& e) {
    if (e.kind == peerlink::LanEventKind::kFound) {
      std::printf("found %s %s\n", e.peer.id.str().c_str(), e.peer.display_name.c_str());
      if (!found_one) target = e.peer.id;
      found_one = true;
    } else if (e.kind == peerlink::LanEventKind::kLost) {
      std::printf("lost %s\n", e.peer.id.str().c_str());
    }
    std::fflush(stdout);
  };
  std::shared_ptr<peerlink::LanBeacon> beacon;
  try {
    beacon = std::make_shared<peerlink::LanBeacon>(lan);
  } catch (const peerlink::Exception& e) {
    return usage(e.what());
  }
  config.signaling.push_back(beacon);
  auto created = peerlink::Host::create(config);
  if (!created) {
    std::fprintf(stderr, "lan-beacon-peer: %s\n", created.error().message.c_str());
    return 1;
  }
  peerlink::Host& host = **created;
  if (auto listening = host.listen_p2p(); !listening) {
    std::fprintf(stderr, "lan-beacon-peer: %s\n", listening.error().message.c_str());
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::printf("ready %s %s\n", beacon->local_peer().str().c_str(), peerlink::to_string(beacon->responder()));
  std::fflush(stdout);

  peerlink::ConnectionHandle mine = peerlink::kInvalidConnection;
  peerlink::HostEvent event;
  while (!g_stop) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (timeout_s > 0 && elapsed > timeout_s) {
      std::fprintf(stderr, "lan-beacon-peer: timed out after %.1f s\n", timeout_s);
      return 1;
    }
    beacon->run_callbacks();
    if (connect_first && found_one && mine == peerlink::kInvalidConnection) {
      auto c = host.connect(target);
      if (!c) {
        std::fprintf(stderr, "lan-beacon-peer: %s\n", c.error().message.c_str());
        return 1;
      }
      mine = *c;
      host.send(mine, message.data(), message.size());  // leaves once connected
    }
    if (!host.service(event, std::chrono::milliseconds(found_one ? 5 : 1))) continue;
    switch (event.kind) {
      case peerlink::HostEventKind::kIncomingRequest:
        break;
      case peerlink::HostEventKind::kConnected:
        std::printf("connected %s %s\n", event.info.remote_peer.str().c_str(),
                    peerlink::to_string(event.info.route));
        break;
      case peerlink::HostEventKind::kClosed:
        std::printf("closed %s %s\n", event.info.remote_peer.str().c_str(), event.info.end_debug.c_str());
        if (event.connection == mine) return 1;
        break;
      case peerlink::HostEventKind::kMessage: {
        const std::string text(reinterpret_cast<const char*>(event.message.data()), event.message.size());
        if (event.connection == mine) {
          std::printf(
              "echo %.1f\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
          std::fflush(stdout);
          return 0;
        }
        std::printf("message %s %s\n", host.connection_info(event.connection)->remote_peer.str().c_str(),
                    text.c_str());
        host.send(event.connection, text.data(), text.size());
        break;
      }
    }
    std::fflush(stdout);
  }
  return 0;
}
