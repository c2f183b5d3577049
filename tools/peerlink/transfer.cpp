// `peerlink send` and `peerlink receive`: files over one peer-to-peer connection, found through XMPP or on
// the LAN, with the protocol and the event loop peerlink-chat uses (examples/app): SHA-256 verified,
// streamed with bounded memory, and resumed where an interrupted transfer stopped.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "commands.hpp"
#include "endpoint.hpp"
#include "session.hpp"

namespace {

using namespace peerlink::cli;

const char kSendUsage[] =
    "usage: peerlink send FILE... --to PEER (--jid JID | --lan) [options]\n"
    "  Connects to PEER (a JID, or a LAN name or id) and sends the files, one after the other. Each is\n"
    "  confirmed by the receiver's SHA-256; sending a file again after an interruption resumes it.\n"
    "  --to PEER             the receiver\n"
    "  --json                one JSON event per line on stdout\n"
    "  --timeout SECONDS     give up (exit 1) after this long\n"
    "  --wait SECONDS        how long to wait for PEER to come online (default 30)\n";

const char kReceiveUsage[] =
    "usage: peerlink receive (--jid JID | --lan) [options]\n"
    "  Waits for a sender, takes its files into DIR and exits once it is done. A file arrives as\n"
    "  DIR/.NAME.part and is renamed to DIR/NAME (NAME.1, ... when taken) once its SHA-256 checks out;\n"
    "  an interrupted transfer leaves the part, and the same file sent again resumes there.\n"
    "  --dir DIR             where the files go (default: the current directory)\n"
    "  --from PEER           take requests from this peer only (a JID, a LAN name or id)\n"
    "  --keep-going          serve sender after sender until interrupted\n"
    "  --json                one JSON event per line on stdout\n"
    "  --timeout SECONDS     give up (exit 1) after this long\n";

// The options both share; false when args[i] is none of them (error set when it is one but wrong).
bool parse_common(const std::vector<std::string>& args, size_t& i, peerlink::app::SessionOptions& session,
                  std::string& error) {
  const std::string& a = args[i];
  if (a == "--json") return session.json = true;
  if (a != "--timeout" && a != "--wait") return false;
  if (i + 1 >= args.size()) {
    error = a + " wants a number of seconds";
    return true;
  }
  const std::string& v = args[++i];
  char* end = nullptr;
  const double seconds = std::strtod(v.c_str(), &end);
  if (!end || *end || !(seconds > 0) || seconds > 1e6) {
    error = a + " wants a number of seconds, not '" + v + "'";
    return true;
  }
  const auto ms = std::chrono::milliseconds(int64_t(seconds * 1000));
  if (a == "--timeout")
    session.time_limit = ms;
  else
    session.connect_wait = ms;
  return true;
}

int run(const peerlink::app::EndpointOptions& endpoint_options, const peerlink::app::SessionOptions& session,
        const std::vector<std::string>& lines) {
  peerlink::Result<std::unique_ptr<peerlink::app::Endpoint>> endpoint =
      peerlink::app::open_endpoint(endpoint_options, peerlink::HostConfig{}, "peerlink");
  if (!endpoint) {
    std::fprintf(stderr, "peerlink: %s\n", endpoint.error().message.c_str());
    return endpoint.error().code == peerlink::ErrorCode::kInvalidConfig ? kUsage : kFailed;
  }
  peerlink::app::LineQueue input;
  for (const std::string& line : lines)
    input.push(line);
  input.close();
  return peerlink::app::run_session(**endpoint, session, input);
}

}  // namespace

int run_send(const std::vector<std::string>& args) {
  peerlink::app::EndpointOptions endpoint_options;
  peerlink::app::SessionOptions session;
  session.listen = false;
  std::vector<std::string> files;
  std::string to;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string error;
    if (a == "--help" || a == "-h")
      return std::printf("%s%s", kSendUsage, peerlink::app::kEndpointUsage), kOk;
    if (peerlink::app::parse_endpoint_option(args, i, endpoint_options, error) ||
        parse_common(args, i, session, error)) {
      if (!error.empty()) return usage_error(error, kSendUsage);
    } else if (a == "--to") {
      if (i + 1 >= args.size()) return usage_error("--to wants a peer", kSendUsage);
      to = args[++i];
    } else if (!a.empty() && a[0] == '-') {
      return usage_error("unknown option for send: " + a, kSendUsage);
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) return usage_error("no file to send", kSendUsage);
  if (to.empty()) return usage_error("--to PEER says whom to send to", kSendUsage);
  if (endpoint_options.jid.empty() && !endpoint_options.lan)
    return usage_error("say how to find the peer: --jid JID (XMPP) or --lan", kSendUsage);
  std::vector<std::string> lines;
  for (const std::string& f : files) {
    struct stat st {};
    if (stat(f.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      std::fprintf(stderr, "peerlink: cannot send %s: %s\n", f.c_str(),
                   stat(f.c_str(), &st) != 0 ? "no such file" : "not a regular file");
      return kFailed;
    }
    lines.push_back("/file " + f);
  }
  session.connect.push_back(to);
  return run(endpoint_options, session, lines);
}

int run_receive(const std::vector<std::string>& args) {
  peerlink::app::EndpointOptions endpoint_options;
  peerlink::app::SessionOptions session;
  session.auto_accept = true;
  session.wait_peer = true;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string error;
    if (a == "--help" || a == "-h")
      return std::printf("%s%s", kReceiveUsage, peerlink::app::kEndpointUsage), kOk;
    if (peerlink::app::parse_endpoint_option(args, i, endpoint_options, error) ||
        parse_common(args, i, session, error)) {
      if (!error.empty()) return usage_error(error, kReceiveUsage);
    } else if (a == "--keep-going") {
      session.keep_going = true;
    } else if (a == "--dir" || a == "--from") {
      if (i + 1 >= args.size()) return usage_error(a + " wants a value", kReceiveUsage);
      const std::string& v = args[++i];
      if (a == "--from") {
        session.accept_from.push_back(v);
        continue;
      }
      struct stat st {};
      if (stat(v.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return usage_error("--dir wants an existing directory, not '" + v + "'", kReceiveUsage);
      session.conversation.download_dir = v;
    } else {
      return usage_error("unknown option for receive: " + a, kReceiveUsage);
    }
  }
  if (endpoint_options.jid.empty() && !endpoint_options.lan)
    return usage_error("say how to be found: --jid JID (XMPP) or --lan", kReceiveUsage);
  return run(endpoint_options, session, {});
}
