// peerlink-chat: two people (or two scripts) talk and send files over one encrypted peer-to-peer
// connection, finding each other through an XMPP account (--jid) or on the local network (--lan).
//
//   peerlink-chat --jid alice@example.org --password-file ~/.xmpp-password --connect bob@example.org
//   peerlink-chat --lan --name alice          (then /peers and /connect bob)
//
// Everything here is the public API: the shared code is in ../app (the conversation protocol, the Host set
// up from options, the event loop). --help lists the options and the commands.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "endpoint.hpp"
#include "session.hpp"

namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2;

const char kUsageText[] =
    "usage: peerlink-chat (--jid JID | --lan) [options]\n"
    "  Chat and send files over an encrypted peer-to-peer connection. Lines read on stdin are sent;\n"
    "  the end of input leaves once everything sent was delivered and the peer is done too.\n"
    "\n"
    "session:\n"
    "  --connect PEER            connect at the start (waits up to 30 s for the peer to be online)\n"
    "  --accept                  accept every request to connect (else /accept or /reject each)\n"
    "  --no-listen               take no requests at all\n"
    "  --wait-peer               the end of input leaves only after a peer came and is done\n"
    "  --dir DIR                 where received files go (default: the current directory)\n"
    "  --no-files                refuse files\n"
    "  --json                    one JSON event per line on stdout (connected, message, file, closed, ...)\n"
    "  --timeout SECONDS         give up (exit 1) after this long\n";

int usage_error(const std::string& what) {
  std::fprintf(stderr, "peerlink-chat: %s\n(peerlink-chat --help lists the options)\n", what.c_str());
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  peerlink::app::EndpointOptions endpoint_options;
  peerlink::app::SessionOptions session;
  session.program = "peerlink-chat";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string error;
    if (a == "--help" || a == "-h") {
      std::printf("%s\n%s\n%s", kUsageText, peerlink::app::kEndpointUsage, peerlink::app::kSessionCommands);
      return kOk;
    }
    if (peerlink::app::parse_endpoint_option(args, i, endpoint_options, error)) {
      if (!error.empty()) return usage_error(error);
      continue;
    }
    if (a == "--accept") {
      session.auto_accept = true;
    } else if (a == "--no-listen") {
      session.listen = false;
    } else if (a == "--wait-peer") {
      session.wait_peer = true;
    } else if (a == "--no-files") {
      session.conversation.accept_files = false;
    } else if (a == "--json") {
      session.json = true;
    } else if (a == "--connect" || a == "--dir" || a == "--timeout") {
      if (i + 1 >= args.size()) return usage_error(a + " wants a value");
      const std::string& v = args[++i];
      if (a == "--connect") {
        session.connect.push_back(v);
      } else if (a == "--dir") {
        struct stat st {};
        if (stat(v.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
          return usage_error("--dir wants an existing directory, not '" + v + "'");
        session.conversation.download_dir = v;
      } else {
        char* end = nullptr;
        const double seconds = std::strtod(v.c_str(), &end);
        if (!end || *end || !(seconds > 0) || seconds > 1e6)
          return usage_error("--timeout wants a number of seconds, not '" + v + "'");
        session.time_limit = std::chrono::milliseconds(int64_t(seconds * 1000));
      }
    } else {
      return usage_error("unknown option '" + a + "'");
    }
  }
  if (endpoint_options.jid.empty() && !endpoint_options.lan)
    return usage_error("say how to find peers: --jid JID (XMPP) or --lan (the local network)");

  peerlink::HostConfig config;
  peerlink::Result<std::unique_ptr<peerlink::app::Endpoint>> endpoint =
      peerlink::app::open_endpoint(endpoint_options, std::move(config), "peerlink-chat");
  if (!endpoint) {
    std::fprintf(stderr, "peerlink-chat: %s\n", endpoint.error().message.c_str());
    return endpoint.error().code == peerlink::ErrorCode::kInvalidConfig ? kUsage : kFailed;
  }
  peerlink::app::LineQueue input;
  int status = kFailed;
  {
    peerlink::app::StdinReader reader(input);
    status = peerlink::app::run_session(**endpoint, session, input);
  }
  return status;
}
