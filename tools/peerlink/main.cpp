// peerlink: the command-line tool.
//
//   peerlink id [--file PATH] [--json]          create or show this machine's identity and its fingerprint
//   peerlink discover [options]                  list the peers of a service on the LAN
//   peerlink netcheck [options]                  what the network does to peer-to-peer traffic
//   peerlink send FILE... --to PEER [options]    send files over a peer-to-peer connection
//   peerlink receive [--dir DIR] [options]       receive them
//   peerlink help | --help, peerlink COMMAND --help
//
// Exit status: 0 done; 1 it could not be done (the message says why); 2 the command line is wrong.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "commands.hpp"
#include "endpoint.hpp"
#include "peerlink/host.hpp"
#include "peerlink/identity.hpp"
#include "peerlink/lan.hpp"

namespace {

using namespace peerlink::cli;

const char kUsageText[] =
    "usage: peerlink COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  id        create or show this machine's identity (its key pair) and its fingerprint\n"
    "  discover  list the peers of a service on the local network (the LAN beacon)\n"
    "  netcheck  what the network does to peer-to-peer traffic: NAT type, UDP, STUN, TURN, XMPP services\n"
    "  send      send files to a peer (found through XMPP or on the LAN), SHA-256 verified, resumable\n"
    "  receive   wait for a peer's files and keep them\n"
    "  help      this text\n"
    "\n"
    "'peerlink COMMAND --help' tells more. Exit status: 0 done, 1 failed (the message says why), 2 bad "
    "usage.\n";

const char kIdUsage[] =
    "usage: peerlink id [--file PATH] [--json]\n"
    "  Shows the fingerprint of the identity in PATH, creating it (mode 0600) if there is none.\n"
    "  --file PATH  the key file (default: $PEERLINK_IDENTITY, else $XDG_CONFIG_HOME/peerlink/identity.key,\n"
    "               else ~/.config/peerlink/identity.key)\n"
    "  --json       one JSON object: "
    "{\"fingerprint\":...,\"public_key\":hex,\"file\":...,\"created\":bool}\n";

const char kDiscoverUsage[] =
    "usage: peerlink discover [--service NAME] [--interface IF]... [--timeout SECONDS] [--json]\n"
    "                         [--network-key-file FILE] [--responder auto|own|avahi]\n"
    "  Listens on the LAN for SECONDS (default 3) and lists the peers of the service that answered.\n"
    "  --service NAME          the application's service (default: peerlink)\n"
    "  --interface IF          only this interface (repeatable; default: every usable one)\n"
    "  --timeout SECONDS       how long to listen (default 3)\n"
    "  --json                  one JSON object per peer: {\"id\":...,\"name\":...,\"addresses\":[...]}\n"
    "  --network-key-file F    the group's network key (the file's first line)\n"
    "  --responder WHO         multicast DNS through avahi-daemon, the beacon's own, or avahi when it\n"
    "                          runs (auto, the default)\n";

int run_id(const std::vector<std::string>& args) {
  std::string file = peerlink::app::default_identity_file();
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") return std::fputs(kIdUsage, stdout), kOk;
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--file") {
      if (i + 1 >= args.size()) return usage_error("--file wants a path", kIdUsage);
      file = args[++i];
    } else {
      return usage_error("unknown option for id: " + args[i], kIdUsage);
    }
  }
  struct stat st {};
  const bool existed = stat(file.c_str(), &st) == 0;
  if (!existed) peerlink::app::make_parent_directories(file);
  peerlink::Result<peerlink::Identity> id = peerlink::Identity::load_or_create(file);
  if (!id) {
    std::fprintf(stderr, "peerlink: %s\n", id.error().message.c_str());
    return kFailed;
  }
  if (json) {
    std::printf("{\"fingerprint\":%s,\"public_key\":\"%s\",\"file\":%s,\"created\":%s}\n",
                json_string(id->fingerprint()).c_str(), hex(id->public_key()).c_str(),
                json_string(file).c_str(), existed ? "false" : "true");
  } else {
    std::printf("%s\n", id->fingerprint().c_str());
    std::fprintf(stderr, "%s %s\n", existed ? "identity in" : "new identity written to", file.c_str());
  }
  return kOk;
}

int run_discover(const std::vector<std::string>& args) {
  peerlink::LanOptions lan;
  double seconds = 3;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return std::fputs(kDiscoverUsage, stdout), kOk;
    if (a == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= args.size()) return usage_error(a + " wants a value (or is unknown)", kDiscoverUsage);
    const std::string& v = args[++i];
    if (a == "--service") {
      lan.service = v;
    } else if (a == "--interface") {
      lan.interfaces.push_back(v);
    } else if (a == "--timeout") {
      char* end = nullptr;
      seconds = std::strtod(v.c_str(), &end);
      if (!end || *end || !(seconds > 0) || seconds > 3600)
        return usage_error("--timeout wants a number of seconds from 0 to 3600, not '" + v + "'",
                           kDiscoverUsage);
    } else if (a == "--network-key-file") {
      std::ifstream in(v);
      if (!in || !std::getline(in, lan.network_key)) {
        std::fprintf(stderr, "peerlink: cannot read the network key from %s\n", v.c_str());
        return kFailed;
      }
    } else if (a == "--responder") {
      const std::optional<peerlink::LanResponder> who = peerlink::parse_lan_responder(v);
      if (!who) return usage_error("--responder wants auto, own or avahi, not '" + v + "'", kDiscoverUsage);
      lan.responder = *who;
    } else {
      return usage_error("unknown option for discover: " + a, kDiscoverUsage);
    }
  }
  // A throwaway identity: discovery needs none of its own, and nothing connects to it.
  peerlink::HostConfig config;
  lan.identity = config.identity;
  lan.display_name = "peerlink discover";
  if (peerlink::Result<void> ok = lan.validate(); !ok) {
    std::fprintf(stderr, "peerlink: %s\n", ok.error().message.c_str());
    return kUsage;
  }
  auto beacon = std::make_shared<peerlink::LanBeacon>(lan);
  config.signaling.push_back(beacon);
  peerlink::Result<std::unique_ptr<peerlink::Host>> host = peerlink::Host::create(config);
  if (!host) {
    std::fprintf(stderr, "peerlink: %s\n", host.error().message.c_str());
    return kFailed;
  }
  peerlink::LanEvent event;
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until)
    beacon->next_event(event, std::chrono::milliseconds(50));  // the list is read at the end
  const std::vector<peerlink::LanPeer> peers = beacon->peers();
  for (const peerlink::LanPeer& p : peers) {
    std::string addresses;
    for (const peerlink::LanPeer::Link& link : p.links)
      for (const peerlink::Address& a : link.addresses) {
        peerlink::Address shown = a;
        shown.set_port(p.port);
        const std::string text = shown.to_string() + (json ? "" : " (" + link.interface + ")");
        addresses += (addresses.empty() ? "" : json ? "," : ", ") + (json ? json_string(text) : text);
      }
    if (json)
      std::printf("{\"id\":%s,\"name\":%s,\"addresses\":[%s]}\n", json_string(p.id.str()).c_str(),
                  json_string(p.display_name).c_str(), addresses.c_str());
    else
      std::printf("%-24s %s  %s\n", p.display_name.c_str(), p.id.str().c_str(), addresses.c_str());
  }
  if (!json) {
    std::string served;
    for (const std::string& i : beacon->interfaces())
      served += (served.empty() ? "" : " ") + i;
    std::fprintf(stderr, "%zu peer%s of service '%s' in %.1f s (interfaces: %s)\n", peers.size(),
                 peers.size() == 1 ? "" : "s", lan.service.c_str(), seconds,
                 served.empty() ? "none" : served.c_str());
  }
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("no command given", kUsageText);
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "help" || command == "--help" || command == "-h") return std::fputs(kUsageText, stdout), kOk;
  if (command == "id") return run_id(args);
  if (command == "discover") return run_discover(args);
  if (command == "netcheck") return run_netcheck(args);
  if (command == "send") return run_send(args);
  if (command == "receive") return run_receive(args);
  return usage_error("unknown command '" + command + "'", kUsageText);
}
