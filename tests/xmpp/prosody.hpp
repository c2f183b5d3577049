// Prosody as a child process of the test: a config, a self-signed certificate (given to clients as their
// CA file) and accounts made with prosodyctl in a temporary directory; started on a free port of the
// loopback or of a NAT lab namespace, polled until it accepts TCP, stopped (or killed) by its PID. s2s is
// off; smacks, carbons, MAM and offline storage are on, as on a real server; mod_limits only when asked.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "peerlink/xmpp.hpp"

namespace peerlink::test {

// True when prosody, prosodyctl and openssl are installed; otherwise false with the reason.
bool have_prosody(std::string* why);

struct ProsodyOptions {
  std::string netns;             // "" = the caller's namespace
  std::string ip = "127.0.0.1";  // c2s listens here
  uint16_t port = 0;             // 0: a free port
  std::string domain = "peerlink.test";
  std::vector<std::string> contacts = {"alice", "bob"};  // accounts in one shared roster group
  std::vector<std::string> strangers;                    // accounts that are nobody's contact
  bool limits = false;  // mod_limits with Prosody's default c2s rate (10 kB/s)
  // Clients log in with certificates (SASL EXTERNAL, prosody-modules' mod_auth_ccert) signed by the
  // fixture's client CA (client_certificate()); passwords do not work then.
  bool certificate_logins = false;
  // XEP-0215 through mod_turn_external when turn_secret is set (coturn's use-auth-secret).
  std::string turn_host;
  uint16_t turn_port = 3478;
  std::string turn_secret;
  int turn_ttl_seconds = 86400;
};

class ProsodyServer {
 public:
  // Writes everything and registers the accounts (password: "<user>-password"); does not start.
  explicit ProsodyServer(ProsodyOptions options = {});
  ~ProsodyServer();  // stop(); removes the directory unless PEERLINK_XMPP_KEEP is set
  ProsodyServer(const ProsodyServer&) = delete;
  ProsodyServer& operator=(const ProsodyServer&) = delete;

  // Starts Prosody and waits until it accepts TCP; throws std::runtime_error with its log otherwise.
  void start(std::chrono::milliseconds ready_timeout = std::chrono::seconds(10));
  void stop();  // SIGTERM (SIGKILL after a grace period)
  void kill();  // SIGKILL at once: connections die without a closing stanza
  // SIGSTOP / SIGCONT: a frozen server keeps its TCP connections open and answers nothing.
  void freeze();
  void thaw();
  bool running() const { return pid_ > 0; }

  const ProsodyOptions& options() const { return options_; }
  uint16_t port() const { return port_; }
  const std::string& ca_file() const { return ca_file_; }
  std::string jid(const std::string& user) const { return user + "@" + options_.domain; }
  static std::string password(const std::string& user) { return user + "-password"; }
  std::string log_tail(size_t max_bytes = 6000) const;

  // A client certificate and key (PEM files) naming user@domain (id-on-xmppAddr), signed by the client CA
  // this server trusts, or (trusted = false) by another CA. Returns {certificate, key}.
  std::pair<std::string, std::string> client_certificate(const std::string& user, bool trusted = true);

  // Options for the plugin to log in as user (with a resource when given): this server, its CA, quick
  // reconnects for tests.
  XmppOptions client(const std::string& user, const std::string& resource = "") const;

 private:
  void write_config();
  void make_certificate();

  ProsodyOptions options_;
  std::string dir_;
  std::string config_path_;
  std::string log_path_;
  std::string ca_file_;
  uint16_t port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace peerlink::test
