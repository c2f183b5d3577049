// A Host on XMPP or LAN signaling, set up from command-line options, with the identity and the known
// peers kept in files: what peerlink-chat and `peerlink send` / `receive` share.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peerlink/host.hpp"
#include "peerlink/lan.hpp"
#include "peerlink/xmpp.hpp"

namespace peerlink::app {

// "$XDG_CONFIG_HOME/peerlink/<file>", else "~/.config/peerlink/<file>", else "<file>".
std::string config_path(const std::string& file);
// $PEERLINK_IDENTITY, else config_path("identity.key").
std::string default_identity_file();
// Creates the directories above `path` (mode 0700) where missing.
void make_parent_directories(const std::string& path);

// Peers' keys pinned on first contact, like ssh's known_hosts: one "<peer id> <key in hex>" per line
// (a trailing "# fingerprint" for people; "#" lines are comments).
class KnownPeers {
 public:
  // A missing file is an empty list; an unreadable or malformed one fails (kFile), naming the line.
  Result<void> load(const std::string& path);
  const std::string& path() const { return path_; }
  std::optional<PublicKey> find(const PeerId& peer) const;
  // Pins the key (appending a line to the file); fails (kFile) if it cannot be written.
  Result<void> add(const PeerId& peer, const PublicKey& key);
  const std::map<PeerId, PublicKey>& all() const { return keys_; }

 private:
  std::string path_;
  std::map<PeerId, PublicKey> keys_;
};

// The name a key is pinned under: an XMPP peer's bare JID (its resources share the account's key file),
// else the PeerId itself.
PeerId pin_name(const PeerId& peer);

struct EndpointOptions {
  // XMPP (when jid is set).
  std::string jid, password_file, password_env, server, ca_file;
  bool insecure_tls = false;
  // LAN (when lan is set).
  bool lan = false;
  std::string name;     // display name; default: the host name
  std::string service;  // the LAN service; the program's default when empty
  std::string network_key_file;
  LanResponder responder = LanResponder::kAuto;
  // Interfaces for the LAN beacon and for ICE host candidates (every usable one when empty).
  std::vector<std::string> interfaces;
  std::string identity_file;     // default_identity_file() when empty
  std::string known_peers_file;  // config_path("known_peers") when empty
  bool verbose = false;          // the library's log at kInfo
};

// The usage lines of these options, for --help.
extern const char kEndpointUsage[];
// If args[i] is one of these options, takes it (and its value, advancing i) and returns true; error is set
// when its value is missing or wrong. False when it is not one of them.
bool parse_endpoint_option(const std::vector<std::string>& args, size_t& i, EndpointOptions& options,
                           std::string& error);

struct Endpoint {
  Identity identity = Identity::generate();
  KnownPeers known;
  std::shared_ptr<XmppSignaling> xmpp;
  std::shared_ptr<LanBeacon> lan;
  std::unique_ptr<Host> host;

  // The peer a person named: a JID (with or without "xmpp:"), or on the LAN a display name, a "lan:" id or
  // a fingerprint. Empty with why set when there is no such peer (now).
  PeerId resolve(const std::string& text, std::string& why) const;
  // Whether connect() can reach the peer now: its presence (XMPP) or its announcement (LAN) was seen.
  bool reachable_now(const PeerId& peer) const;
  // The peers one can /connect to now, for people.
  std::vector<std::string> peers_now() const;
  // Pins on first contact, refuses a changed key: true if `key` is (now) the pinned key of `peer`; false
  // with a warning in `why` if another key is pinned for it.
  bool check_pin(const PeerId& peer, const PublicKey& key, std::string& why);
};

// Loads the identity and known peers, prompts for the XMPP password on a terminal when no file or variable
// gives it, and starts the Host with `config` plus the signaling. Errors in plain words: kFile, kUsage-like
// kInvalidConfig, or what Host::create says.
Result<std::unique_ptr<Endpoint>> open_endpoint(const EndpointOptions& options, HostConfig config,
                                                const std::string& default_service);

}  // namespace peerlink::app
