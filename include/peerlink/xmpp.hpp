// XMPP signaling: peers reach each other through the XMPP account they already have, on any standard
// server (Prosody, ejabberd, Openfire, ...), with no server of our own. A SignalingPlugin (scheme "xmpp"):
// PeerIds are "xmpp:<bare JID>" or "xmpp:<full JID>". Link peerlink::xmpp (it brings libstrophe).
//
//   peerlink::XmppOptions o;
//   o.jid = "alice@example.org";
//   o.password_file = "/home/alice/.config/mygame/xmpp-password";
//   auto xmpp = std::make_shared<peerlink::XmppSignaling>(o);
//   peerlink::HostConfig config;
//   config.signaling.push_back(xmpp);
//   peerlink::Host host(config);                                     // logs in in the background
//   (void)host.listen_p2p();
//   auto conn = host.connect(*peerlink::PeerId::parse("xmpp:bob@example.org"));
//
// docs/XMPP.md is the manual: how a bare JID finds bob's resource, what travels on the wire, what servers
// need, and what each state and failure means.
//
// Thread-safety: every method may be called from any thread. The plugin has a thread of its own, which owns
// the XMPP connection; the status callback runs on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "peerlink/error.hpp"
#include "peerlink/log.hpp"
#include "peerlink/signaling.hpp"

namespace peerlink {

enum class XmppState : uint8_t {
  kIdle,          // not started (the Host has not started the plugin yet)
  kConnecting,    // connecting, TLS, authenticating, binding
  kOnline,        // logged in: blobs flow
  kReconnecting,  // the connection was lost; the next attempt is at XmppStatus::next_attempt
  kFailed,        // given up: wrong credentials, TLS refused, ... (XmppStatus::failure and reason say which)
  kStopped,       // the Host stopped the plugin
};
const char* to_string(XmppState state);

// Why the plugin gave up (kFailed), or why the last attempt failed (kReconnecting).
enum class XmppFailure : uint8_t {
  kNone,
  kCredentials,    // the server refused the password or the client certificate: fix them, nothing retries
  kTls,            // no TLS, or a certificate that does not verify (XmppOptions::ca_file, tls)
  kNetwork,        // the server cannot be reached, or the connection dropped (retried with backoff)
  kServer,         // the server closed the stream with an error (retried unless it is final)
  kConfiguration,  // the options cannot work (no password anywhere, a JID without a domain, ...)
};
const char* to_string(XmppFailure failure);

struct XmppStatus {
  XmppState state = XmppState::kIdle;
  XmppFailure failure = XmppFailure::kNone;
  std::string reason;  // for people: "authentication failed: not-authorized", ...
  std::string jid;     // the full JID bound by the server once online ("alice@example.org/laptop")
  std::chrono::system_clock::time_point next_attempt{};  // kReconnecting
  uint32_t attempts = 0;                                 // connection attempts so far
};

enum class XmppTls : uint8_t {
  kRequired,              // STARTTLS (or the connection fails), certificate verified: the default
  kInsecureForTestsOnly,  // STARTTLS, but any certificate accepted: logged as a warning on every connect
};

struct XmppOptions {
  // The account: "user@domain" (the server picks a resource) or "user@domain/resource".
  std::string jid;
  // The password: exactly one of these, or a client certificate.
  std::string password;
  std::string password_file;  // its first line
  std::string password_env;   // the name of an environment variable holding it
  // SASL EXTERNAL with a client certificate and its key (PEM files) instead of a password.
  std::string client_cert_file, client_key_file;
  // The server: empty host = the JID's domain through DNS SRV (_xmpp-client._tcp), as clients do.
  std::string host;
  uint16_t port = 0;  // 0: 5222, or what SRV says
  XmppTls tls = XmppTls::kRequired;
  std::string ca_file;  // PEM; empty: the system's CAs
  // Keepalive: the server is pinged (XEP-0199) after this long without traffic; no answer within
  // ping_timeout means the connection is dead and it is reconnected.
  std::chrono::milliseconds ping_interval{std::chrono::seconds(30)};
  std::chrono::milliseconds ping_timeout{std::chrono::seconds(10)};
  // An attempt that has not logged in after this long (a server that accepts TCP and then says nothing) is
  // abandoned and retried.
  std::chrono::milliseconds login_timeout{std::chrono::seconds(20)};
  // Reconnection with exponential backoff and jitter between these, resuming the session (XEP-0198)
  // where the server allows it.
  std::chrono::milliseconds reconnect_min{std::chrono::milliseconds(500)};
  std::chrono::milliseconds reconnect_max{std::chrono::seconds(60)};
  // Ask the server for STUN/TURN services (XEP-0215) and offer them to the Host, refreshed before their
  // credentials expire.
  bool external_services = true;
  // Called on the plugin's thread whenever the status changes (not for kStopped: stop() returning says
  // that). Keep it short; it must not call stop().
  std::function<void(const XmppStatus& status)> on_status;
  // Where the plugin logs (state changes, failures, hostile input; libstrophe's own lines at kTrace):
  // stderr when unset. PEERLINK_LOG overrides the level, as for the Host.
  LogSink log_sink;
  LogLevel log_level = LogLevel::kWarning;

  // Fails (kInvalidConfig) saying what is wrong.
  Result<void> validate() const;
};

// What happened to stanzas, for diagnostics and tests.
struct XmppCounters {
  uint64_t blobs_sent = 0, blobs_received = 0;
  uint64_t stanza_bytes_sent = 0;    // of signaling IQs (and their results) we sent
  uint64_t invalid_stanzas = 0;      // signaling IQs that did not decode (bad base64, too large): refused
  uint64_t unknown_iqs_refused = 0;  // IQs of other namespaces answered with an error
  uint64_t answers_refused = 0;      // results and errors with an id of ours, from someone we did not ask
  uint64_t requests_limited = 0;     // signaling IQs over a sender's rate limit: refused or dropped
  uint64_t unreachable_reports = 0;  // peers reported unreachable to the Host
  uint64_t pings_answered = 0;
  uint64_t reconnects = 0;
  uint64_t resumed = 0;                // reconnects that resumed the session (XEP-0198)
  uint64_t dropped_while_offline = 0;  // blobs to send dropped because the queue was full while offline
};

class XmppSignaling final : public SignalingPlugin {
 public:
  // Throws peerlink::Exception (kInvalidConfig, kFile for a password file that cannot be read) if the
  // options cannot work. Nothing touches the network before the Host starts the plugin.
  explicit XmppSignaling(XmppOptions options);
  ~XmppSignaling() override;  // stops (as stop()) if the Host has not
  XmppSignaling(const XmppSignaling&) = delete;
  XmppSignaling& operator=(const XmppSignaling&) = delete;

  XmppStatus status() const;
  XmppCounters counters() const;
  // Blocks until online, failed or the timeout passes; true if online. For programs that want to wait for
  // the login before connecting (the Host queues blobs meanwhile anyway).
  bool wait_online(std::chrono::milliseconds timeout) const;
  // The resources seen online, of contacts and of this account's other logins, that run peerlink signaling,
  // as full-JID PeerIds ("xmpp:bob@example.org/game"): whom `xmpp:<bare JID>` can reach now. Empty while
  // not online. Presence arrives some milliseconds after a contact logs in: until it has, a connect to the
  // contact's bare JID ends at once as unreachable ("offline").
  std::vector<PeerId> contacts() const;

  // --- SignalingPlugin ---
  std::string scheme() const override { return "xmpp"; }
  PeerId local_peer() const override;  // "xmpp:<bound full JID>" once online
  void start(SignalingSink& sink) override;
  void send(const PeerId& to, const void* blob, size_t size) override;
  void stop() override;

  class Impl;  // opaque: the library's own

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace peerlink
