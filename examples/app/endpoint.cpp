#include "endpoint.hpp"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "text.hpp"

namespace peerlink::app {
namespace {

bool parse_hex_key(const std::string& text, PublicKey& key) {
  if (text.size() != key.size() * 2) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    unsigned v = 0;
    const std::string byte = text.substr(2 * i, 2);
    if (byte.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return false;
    std::sscanf(byte.c_str(), "%2x", &v);
    key[i] = uint8_t(v);
  }
  return true;
}

// Reads a password from the terminal with echo off; empty when there is no terminal.
std::string prompt_password(const std::string& jid) {
  FILE* tty = std::fopen("/dev/tty", "r+");
  if (!tty) return {};
  std::fprintf(tty, "password for %s: ", jid.c_str());
  std::fflush(tty);
  termios saved{};
  const bool have_termios = tcgetattr(fileno(tty), &saved) == 0;
  if (have_termios) {
    termios quiet = saved;
    quiet.c_lflag &= tcflag_t(~ECHO);
    tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
  }
  char line[1024];
  std::string password;
  if (std::fgets(line, sizeof line, tty)) password = line;
  if (have_termios) tcsetattr(fileno(tty), TCSAFLUSH, &saved);
  std::fprintf(tty, "\n");
  std::fclose(tty);
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
    password.pop_back();
  return password;
}

bool lower_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// "xmpp:bob@example.org/laptop" -> "bob@example.org"; "" for other schemes.
std::string bare_jid(const PeerId& peer) {
  if (peer.scheme() != "xmpp") return {};
  const std::string name(peer.name());
  return name.substr(0, name.find('/'));
}

}  // namespace

std::string config_path(const std::string& file) {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/peerlink/" + file;
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.config/peerlink/" + file;
  return file;
}

std::string default_identity_file() {
  if (const char* p = std::getenv("PEERLINK_IDENTITY"); p && *p) return p;
  return config_path("identity.key");
}

void make_parent_directories(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1))
    mkdir(path.substr(0, slash).c_str(), 0700);  // an existing one is fine; a failure shows when writing
}

Result<void> KnownPeers::load(const std::string& path) {
  path_ = path;
  keys_.clear();
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return {};
    return Error{ErrorCode::kFile, "cannot read the known peers in " + path + ": " + std::strerror(errno)};
  }
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t hash = line.find('#');
    std::istringstream fields(line.substr(0, hash));
    std::string id_text, key_text, extra;
    if (!(fields >> id_text)) continue;  // blank or a comment
    PublicKey key{};
    Result<PeerId> id = PeerId::parse(id_text);
    if (!(fields >> key_text) || (fields >> extra) || !id || !parse_hex_key(key_text, key))
      return Error{ErrorCode::kFile, path + ":" + std::to_string(number) +
                                         ": not '<peer id> <64 hex digits>' (fix or remove the line)"};
    keys_[*id] = key;
  }
  return {};
}

std::optional<PublicKey> KnownPeers::find(const PeerId& peer) const {
  auto it = keys_.find(peer);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

Result<void> KnownPeers::add(const PeerId& peer, const PublicKey& key) {
  make_parent_directories(path_);
  std::ofstream out(path_, std::ios::app);
  out << peer.str() << " " << hex(key.data(), key.size()) << " # " << Identity::fingerprint_of(key) << "\n";
  out.flush();
  if (!out)
    return Error{ErrorCode::kFile, "cannot write the known peers in " + path_ + ": " + std::strerror(errno)};
  keys_[peer] = key;
  return {};
}

PeerId pin_name(const PeerId& peer) {
  const std::string bare = bare_jid(peer);
  if (bare.empty()) return peer;
  Result<PeerId> id = PeerId::parse("xmpp:" + bare);
  return id ? *id : peer;
}

const char kEndpointUsage[] =
    "signaling (at least one of --jid and --lan):\n"
    "  --jid JID                 log in to XMPP as JID (user@domain) and find peers through it\n"
    "  --password-file FILE      the XMPP password: the file's first line\n"
    "  --password-env VAR        the XMPP password: this environment variable's value\n"
    "                            (neither: asked for on the terminal)\n"
    "  --server HOST[:PORT]      the XMPP server (default: the JID's domain, through DNS SRV)\n"
    "  --ca-file FILE            CA certificates (PEM) that the server's certificate must verify against\n"
    "  --insecure-tls-for-tests  accept any server certificate (tests only: anyone can read the stream)\n"
    "  --lan                     find peers on the local network (the LAN beacon)\n"
    "  --name NAME               the name LAN peers see (default: this machine's host name)\n"
    "  --service NAME            the LAN service (only peers of the same service see each other)\n"
    "  --network-key-file FILE   the LAN group's secret (the file's first line)\n"
    "  --responder WHO           multicast DNS through auto|own|avahi (default auto)\n"
    "identity and network:\n"
    "  --interface IF            use only this interface (repeatable; loopback only when named)\n"
    "  --identity FILE           the key file (default: $PEERLINK_IDENTITY, else\n"
    "                            ~/.config/peerlink/identity.key; created when missing)\n"
    "  --known-peers FILE        pinned peer keys (default: ~/.config/peerlink/known_peers)\n"
    "  --verbose                 the library's log on stderr\n";

bool parse_endpoint_option(const std::vector<std::string>& args, size_t& i, EndpointOptions& options,
                           std::string& error) {
  const std::string& a = args[i];
  if (a == "--lan") return options.lan = true;
  if (a == "--insecure-tls-for-tests") return options.insecure_tls = true;
  if (a == "--verbose") return options.verbose = true;
  static const char* const kValued[] = {
      "--jid",     "--password-file",    "--password-env", "--server",    "--ca-file",  "--name",
      "--service", "--network-key-file", "--responder",    "--interface", "--identity", "--known-peers"};
  bool valued = false;
  for (const char* name : kValued)
    valued = valued || a == name;
  if (!valued) return false;
  if (i + 1 >= args.size()) {
    error = a + " wants a value";
    return true;
  }
  const std::string& v = args[++i];
  if (a == "--jid") {
    options.jid = v.rfind("xmpp:", 0) == 0 ? v.substr(5) : v;
    const std::string& jid = options.jid;
    const size_t at = jid.find('@');
    if (at == std::string::npos || at == 0 || at + 1 >= jid.size() || jid[at + 1] == '/' ||
        jid.find_first_of(" \t\r\n") != std::string::npos)
      error = "--jid wants user@domain, not '" + v + "'";
  } else if (a == "--password-file") {
    options.password_file = v;
  } else if (a == "--password-env") {
    options.password_env = v;
  } else if (a == "--server") {
    options.server = v;
  } else if (a == "--ca-file") {
    options.ca_file = v;
  } else if (a == "--name") {
    options.name = v;
  } else if (a == "--service") {
    options.service = v;
  } else if (a == "--network-key-file") {
    options.network_key_file = v;
  } else if (a == "--responder") {
    const std::optional<LanResponder> who = parse_lan_responder(v);
    if (!who)
      error = "--responder wants auto, own or avahi, not '" + v + "'";
    else
      options.responder = *who;
  } else if (a == "--interface") {
    options.interfaces.push_back(v);
  } else if (a == "--identity") {
    options.identity_file = v;
  } else if (a == "--known-peers") {
    options.known_peers_file = v;
  }
  return true;
}

PeerId Endpoint::resolve(const std::string& text, std::string& why) const {
  why.clear();
  if (text.rfind("xmpp:", 0) == 0 || text.rfind("lan:", 0) == 0) {
    Result<PeerId> id = PeerId::parse(text);
    if (!id) {
      why = id.error().message;
      return {};
    }
    if ((id->scheme() == "xmpp" && !xmpp) || (id->scheme() == "lan" && !lan)) {
      why = "no " + std::string(id->scheme()) + " signaling here (start with " +
            (id->scheme() == "xmpp" ? "--jid" : "--lan") + ")";
      return {};
    }
    return *id;
  }
  if (xmpp && text.find('@') != std::string::npos) {
    Result<PeerId> id = PeerId::parse("xmpp:" + text);
    if (!id) why = id.error().message;
    return id ? *id : PeerId{};
  }
  if (lan) {
    std::vector<LanPeer> matches;
    for (const LanPeer& p : lan->peers())
      if (p.display_name == text || lower_equal(Identity::fingerprint_of(p.key), text)) matches.push_back(p);
    if (matches.size() == 1) return matches.front().id;
    why = matches.empty() ? "no peer called '" + text + "' on the LAN now (/peers lists them)"
                          : "several peers are called '" + text + "': name one by its id (/peers lists them)";
    return {};
  }
  why = "'" + text + "' is not a JID (user@domain)";
  return {};
}

bool Endpoint::reachable_now(const PeerId& peer) const {
  if (peer.scheme() == "xmpp" && xmpp) {
    const std::string name(peer.name());
    const bool full = name.find('/') != std::string::npos;
    for (const PeerId& c : xmpp->contacts()) {
      if (c == peer) return true;
      if (!full && c.name().substr(0, name.size()) == name && c.name().size() > name.size() &&
          c.name()[name.size()] == '/')
        return true;
    }
    return false;
  }
  if (peer.scheme() == "lan" && lan) return lan->peer(peer).has_value();
  return false;
}

std::vector<std::string> Endpoint::peers_now() const {
  std::vector<std::string> all;
  if (xmpp)
    for (const PeerId& c : xmpp->contacts())
      all.push_back(c.str());
  if (lan)
    for (const LanPeer& p : lan->peers())
      all.push_back(p.display_name + "  " + p.id.str());
  return all;
}

bool Endpoint::check_pin(const PeerId& peer, const PublicKey& key, std::string& why) {
  why.clear();
  const PeerId name = pin_name(peer);
  if (std::optional<PublicKey> pinned = known.find(name)) {
    if (*pinned == key) return true;
    why = "WARNING: " + name.str() + " now presents another key (" + Identity::fingerprint_of(key) +
          ") than the one pinned in " + known.path() + " (" + Identity::fingerprint_of(*pinned) +
          "). Someone may be impersonating it, or it got a new identity. Refused. If the change is expected, "
          "remove its line from that file.";
    return false;
  }
  if (Result<void> added = known.add(name, key); !added) why = added.error().message;
  return true;
}

Result<std::unique_ptr<Endpoint>> open_endpoint(const EndpointOptions& options, HostConfig config,
                                                const std::string& default_service) {
  if (options.jid.empty() && !options.lan)
    return Error{ErrorCode::kInvalidConfig,
                 "no signaling: say --jid JID (XMPP) or --lan (the local network)"};
  auto endpoint = std::make_unique<Endpoint>();
  const std::string identity_file =
      options.identity_file.empty() ? default_identity_file() : options.identity_file;
  make_parent_directories(identity_file);
  Result<Identity> identity = Identity::load_or_create(identity_file);
  if (!identity) return identity.error();
  endpoint->identity = *identity;
  config.identity = *identity;
  if (Result<void> loaded = endpoint->known.load(options.known_peers_file.empty() ? config_path("known_peers")
                                                                                  : options.known_peers_file);
      !loaded)
    return loaded.error();
  for (const auto& [peer, key] : endpoint->known.all())
    config.known_keys[peer] = key;
  config.ice.interfaces_allow = options.interfaces;
  if (options.verbose) config.log_level = LogLevel::kInfo;

  if (!options.jid.empty()) {
    XmppOptions x;
    x.jid = options.jid;
    x.password_file = options.password_file;
    x.password_env = options.password_env;
    if (!options.password_file.empty() + !options.password_env.empty() > 1)
      return Error{ErrorCode::kInvalidConfig, "give the password one way: --password-file or --password-env"};
    if (options.password_file.empty() && options.password_env.empty()) {
      x.password = prompt_password(options.jid);
      if (x.password.empty())
        return Error{
            ErrorCode::kInvalidConfig,
            "no XMPP password: give --password-file FILE or --password-env VAR (no terminal to ask on)"};
    }
    if (!options.server.empty()) {
      // "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address.
      std::string host = options.server, port;
      if (host.front() == '[') {
        const size_t close = host.find(']');
        if (close == std::string::npos || (close + 1 < host.size() && host[close + 1] != ':'))
          return Error{ErrorCode::kInvalidConfig, "--server wants HOST[:PORT], not '" + options.server + "'"};
        if (close + 1 < host.size()) port = host.substr(close + 2);
        host = host.substr(1, close - 1);
      } else if (host.find(':') != std::string::npos && host.find(':') == host.rfind(':')) {
        port = host.substr(host.find(':') + 1);
        host = host.substr(0, host.find(':'));
      }
      if (!port.empty() || options.server.back() == ':') {
        char* end = nullptr;
        const unsigned long value = std::strtoul(port.c_str(), &end, 10);
        if (port.empty() || *end || value == 0 || value > 65535)
          return Error{ErrorCode::kInvalidConfig, "--server wants HOST[:PORT], not '" + options.server + "'"};
        x.port = uint16_t(value);
      }
      if (host.empty())
        return Error{ErrorCode::kInvalidConfig, "--server wants HOST[:PORT], not '" + options.server + "'"};
      x.host = host;
    }
    x.ca_file = options.ca_file;
    if (!x.ca_file.empty() && access(x.ca_file.c_str(), R_OK) != 0)
      return Error{ErrorCode::kFile, "cannot read the CA file " + x.ca_file + ": " + std::strerror(errno)};
    if (options.insecure_tls) x.tls = XmppTls::kInsecureForTestsOnly;
    if (options.verbose) x.log_level = LogLevel::kInfo;
    if (Result<void> ok = x.validate(); !ok) return ok.error();
    try {
      endpoint->xmpp = std::make_shared<XmppSignaling>(x);
    } catch (const Exception& e) {
      return e.error();
    }
    config.signaling.push_back(endpoint->xmpp);
  }
  if (options.lan) {
    LanOptions l;
    l.identity = *identity;
    l.service = options.service.empty() ? default_service : options.service;
    l.display_name = options.name;
    l.interfaces = options.interfaces;
    l.responder = options.responder;
    if (!options.network_key_file.empty()) {
      std::ifstream in(options.network_key_file);
      if (!in || !std::getline(in, l.network_key))
        return Error{ErrorCode::kFile, "cannot read the network key from " + options.network_key_file};
    }
    if (!options.jid.empty()) {
      Result<PeerId> alias = PeerId::parse("xmpp:" + options.jid.substr(0, options.jid.find('/')));
      if (alias) l.aliases.push_back(*alias);
    }
    if (options.verbose) l.log_level = LogLevel::kInfo;
    if (Result<void> ok = l.validate(); !ok) return ok.error();
    try {
      endpoint->lan = std::make_shared<LanBeacon>(l);
    } catch (const Exception& e) {
      return e.error();
    }
    config.signaling.push_back(endpoint->lan);
  }
  Result<std::unique_ptr<Host>> host = Host::create(std::move(config));
  if (!host) return host.error();
  endpoint->host = std::move(*host);
  return endpoint;
}

}  // namespace peerlink::app
