// Helpers for the XMPP plugin's tests: a Host with an XmppSignaling logged in to the fixture's Prosody,
// and a raw libstrophe client (a "normal" XMPP client, or a hostile one) that records what it receives.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <strophe.h>
#include "integration/host_test_util.hpp"

#include "peerlink/xmpp.hpp"
#include "xmpp/prosody.hpp"

namespace peerlink::test {

#define XMPP_REQUIRE_PROSODY()                      \
  do {                                              \
    std::string why_;                               \
    if (!have_prosody(&why_)) GTEST_SKIP() << why_; \
  } while (0)

inline PeerId xmpp_id(const std::string& jid) {
  return *PeerId::parse("xmpp:" + jid);
}

// A Host whose only signaling is XMPP, logged in as `options` says, ICE on loopback.
struct XmppPeer {
  // host_log: the Host's log at kInfo, when given.
  explicit XmppPeer(XmppOptions options, std::chrono::milliseconds connect_timeout = std::chrono::seconds(10),
                    std::vector<std::string> interfaces = {"lo"}, LogSink host_log = {}) {
    plugin = std::make_shared<XmppSignaling>(std::move(options));
    HostConfig c = test_config();
    if (host_log) {
      c.log_level = LogLevel::kInfo;
      c.log_sink = std::move(host_log);
    }
    c.signaling.push_back(plugin);
    c.ice.interfaces_allow = std::move(interfaces);
    c.connect_timeout = connect_timeout;
    host = std::make_unique<Host>(std::move(c));
    events = std::make_unique<EventRecorder>(*host);
  }
  ::testing::AssertionResult online(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    if (plugin->wait_online(timeout)) return ::testing::AssertionSuccess();
    const XmppStatus s = plugin->status();
    return ::testing::AssertionFailure() << "not online: " << to_string(s.state) << " " << s.reason;
  }
  PeerId self() const { return plugin->local_peer(); }

  std::shared_ptr<XmppSignaling> plugin;
  std::unique_ptr<Host> host;
  std::unique_ptr<EventRecorder> events;
};

// True once `p` sees `other` (a full-JID PeerId) online and running peerlink signaling: a contact's presence
// arrives some milliseconds after its login, and until then its bare JID is "offline".
inline bool sees(const XmppSignaling& p, const PeerId& other,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (const PeerId& id : p.contacts())
      if (id == other) return true;
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Each peer logged in (kOnline), listening for peer-to-peer connections, and seeing the others online (the
// peers are each other's contacts).
inline ::testing::AssertionResult online_and_listening(std::initializer_list<XmppPeer*> peers) {
  for (XmppPeer* p : peers) {
    if (::testing::AssertionResult r = p->online(); !r) return r;
    if (!p->host->listen_p2p()) return ::testing::AssertionFailure() << "listen_p2p failed";
  }
  for (XmppPeer* p : peers)
    for (XmppPeer* q : peers)
      if (p != q && !sees(*p->plugin, q->self()))
        return ::testing::AssertionFailure() << p->self().str() << " does not see " << q->self().str();
  return ::testing::AssertionSuccess();
}

// a connects to `to`; waits until a's connection and one on b are connected (or either closes).
inline ::testing::AssertionResult xmpp_connect(XmppPeer& a, XmppPeer& b, const PeerId& to,
                                               ConnectionHandle& ca, ConnectionHandle& cb,
                                               std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  // A contact's bare JID is reachable once its presence has arrived.
  if (to.name().find('/') == std::string_view::npos && !sees(*a.plugin, b.self()))
    return ::testing::AssertionFailure() << a.self().str() << " does not see " << b.self().str() << " online";
  Result<ConnectionHandle> c = a.host->connect(to);
  if (!c) return ::testing::AssertionFailure() << "connect: " << c.error().message;
  ca = *c;
  const size_t before = b.events->count(ConnectionEventKind::kConnected);
  pump_until(
      {a.host.get(), b.host.get()},
      [&] {
        return (a.events->find(ConnectionEventKind::kConnected, ca) &&
                b.events->count(ConnectionEventKind::kConnected) > before) ||
               a.events->find(ConnectionEventKind::kClosed, ca);
      },
      timeout);
  if (auto closed = a.events->find(ConnectionEventKind::kClosed, ca))
    return ::testing::AssertionFailure()
           << "closed: " << closed->info.end_reason << " " << closed->info.end_debug;
  if (!a.events->find(ConnectionEventKind::kConnected, ca) ||
      b.events->count(ConnectionEventKind::kConnected) <= before)
    return ::testing::AssertionFailure() << "not connected within " << timeout.count() << " ms";
  cb = kInvalidConnection;
  for (const ConnectionEvent& e : b.events->events())
    if (e.kind == ConnectionEventKind::kConnected) cb = e.info.handle;  // the newest
  return ::testing::AssertionSuccess();
}

// A plain XMPP client on libstrophe with a thread of its own: logs in (TLS verified against the fixture's
// CA), sends initial presence with `priority` unless told not to, records every stanza it receives as
// text, and sends raw XML given to it. libstrophe 0.12's SCRAM is not thread-safe (xmpp_session.cpp's
// login_lock()): wait for a RawClient's login before plugins of the same process log in, or after.
class RawClient {
 public:
  // presence: send initial presence once logged in. answer_iqs: behave like a normal client and answer
  // disco#info (a chat client's features) and refuse other IQ requests.
  RawClient(const ProsodyServer& server, const std::string& user, const std::string& resource,
            int priority = 0, bool presence = true, bool answer_iqs = true);
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool wait_online(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void send(const std::string& xml);
  std::vector<std::string> received() const;
  size_t count_received(const std::string& needle) const;
  // Waits until a received stanza contains needle; true if one did within the timeout.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
  std::string full_jid() const;

 private:
  void run();

  std::string jid_, password_, host_, ca_file_;
  uint16_t port_;
  int priority_;
  bool presence_;
  bool answer_iqs_;
  std::thread thread_;
  xmpp_conn_t* conn_ = nullptr;  // the client's thread only
  mutable std::mutex mutex_;
  std::vector<std::string> received_;
  std::vector<std::string> outbox_;
  std::string bound_;
  bool online_ = false, failed_ = false, stop_ = false;
};

}  // namespace peerlink::test
