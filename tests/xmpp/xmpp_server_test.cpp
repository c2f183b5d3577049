// The plugin and its server: Prosody killed and restarted under a live connection, Prosody's default rate
// limit, a process with more than 1,024 open files, servers that misbehave.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>
#include <atomic>
#include <thread>

#include "xmpp/xmpp_test_util.hpp"

namespace peerlink::test {
namespace {

using namespace std::chrono_literals;

// Prosody dies (SIGKILL) in the middle of a transfer and comes back: the peer-to-peer data keeps flowing
// (it never touched the server), both plugins reconnect by themselves, and a new connection then works.
TEST(XmppServer, ProsodyKilledAndRestartedMidTransfer_DataFlowsPluginsReconnectNewConnectionWorks) {
  XMPP_REQUIRE_PROSODY();
  ProsodyServer server;
  server.start();
  XmppPeer alice(server.client("alice")), bob(server.client("bob"));
  ASSERT_TRUE(online_and_listening({&alice, &bob}));
  ConnectionHandle ca, cb;
  ASSERT_TRUE(xmpp_connect(alice, bob, xmpp_id(server.jid("bob")), ca, cb));
  ASSERT_TRUE(transfer(*alice.host, ca, *bob.host, cb, 32, 64 << 10));

  server.kill();
  ASSERT_TRUE(pump_until({alice.host.get(), bob.host.get()}, [&] {
    return alice.plugin->status().state == XmppState::kReconnecting &&
           bob.plugin->status().state == XmppState::kReconnecting;
  })) << to_string(alice.plugin->status().state);
  EXPECT_EQ(alice.plugin->status().failure, XmppFailure::kNetwork) << alice.plugin->status().reason;
  // While the server is down, and while it comes back, data flows.
  EXPECT_TRUE(transfer(*alice.host, ca, *bob.host, cb, 64, 64 << 10));
  server.start();
  EXPECT_TRUE(transfer(*bob.host, cb, *alice.host, ca, 64, 64 << 10));
  ASSERT_TRUE(alice.online(15s));
  ASSERT_TRUE(bob.online(15s));
  EXPECT_GE(alice.plugin->counters().reconnects, 1u);
  EXPECT_EQ(alice.plugin->status().failure, XmppFailure::kNone);

  // A new connection (the other way) through the restarted server; the old one is still there.
  ConnectionHandle cb2, ca2;
  ASSERT_TRUE(xmpp_connect(bob, alice, xmpp_id(server.jid("alice")), cb2, ca2));
  EXPECT_TRUE(transfer(*bob.host, cb2, *alice.host, ca2, 8, 1000));
  EXPECT_TRUE(transfer(*alice.host, ca, *bob.host, cb, 8, 1000));
}

// The server freezes (its TCP connections stay open, nothing answers): the keepalive ping notices, the
// plugin reconnects, and once the server is back the session is resumed (XEP-0198), not started anew; a
// connection then works.
TEST(XmppServer, FrozenServer_PingTimeoutNoticesItSessionResumedAfterwards) {
  XMPP_REQUIRE_PROSODY();
  ProsodyServer server;
  server.start();
  XmppOptions o = server.client("alice");
  o.ping_interval = 300ms;
  o.ping_timeout = 300ms;
  o.login_timeout = 1s;
  o.log_sink = [](LogLevel, const std::string&) {};
  XmppPeer alice(o), bob(server.client("bob"));
  ASSERT_TRUE(alice.online());
  ASSERT_TRUE(bob.online());
  const PeerId before = alice.self();

  server.freeze();
  ASSERT_TRUE(pump_until(
      {alice.host.get()}, [&] { return alice.plugin->status().state == XmppState::kReconnecting; }, 5s));
  EXPECT_NE(alice.plugin->status().reason.find("lost"), std::string::npos) << alice.plugin->status().reason;
  server.thaw();
  ASSERT_TRUE(alice.online(15s));
  EXPECT_EQ(alice.plugin->counters().resumed, 1u);
  EXPECT_EQ(alice.self(), before);  // the same resource: the session went on

  ASSERT_TRUE(bob.online());
  ASSERT_TRUE(bob.host->listen_p2p());
  ConnectionHandle ca, cb;
  ASSERT_TRUE(xmpp_connect(alice, bob, xmpp_id(server.jid("bob")), ca, cb));
  EXPECT_TRUE(transfer(*alice.host, ca, *bob.host, cb, 4, 1000));
}

// Prosody's default mod_limits (10 kB/s per client): a connection still establishes; how long it took and
// how many stanza bytes each side sent are printed.
TEST(XmppServer, AtProsodysDefaultRateLimit_AConnectionEstablishes) {
  XMPP_REQUIRE_PROSODY();
  ProsodyOptions po;
  po.limits = true;
  ProsodyServer server(po);
  server.start();
  XmppPeer alice(server.client("alice")), bob(server.client("bob"));
  ASSERT_TRUE(online_and_listening({&alice, &bob}));
  const uint64_t bytes_a = alice.plugin->counters().stanza_bytes_sent,
                 bytes_b = bob.plugin->counters().stanza_bytes_sent;
  const auto start = std::chrono::steady_clock::now();
  ConnectionHandle ca, cb;
  ASSERT_TRUE(xmpp_connect(alice, bob, xmpp_id(server.jid("bob")), ca, cb));
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  const uint64_t sent_a = alice.plugin->counters().stanza_bytes_sent - bytes_a;
  const uint64_t sent_b = bob.plugin->counters().stanza_bytes_sent - bytes_b;
  std::printf(
      "connect through Prosody with mod_limits (10 kB/s): %lld ms; signaling stanza bytes: %llu (alice), "
      "%llu (bob)\n",
      static_cast<long long>(took.count()), static_cast<unsigned long long>(sent_a),
      static_cast<unsigned long long>(sent_b));
  EXPECT_LT(sent_a, 10000u);
  EXPECT_LT(sent_b, 10000u);
  EXPECT_TRUE(transfer(*alice.host, ca, *bob.host, cb, 4, 1000));
}

// More than 1,024 descriptors open before the plugins connect: libstrophe's select() must never see one
// of them (it would write past its fd_set).
TEST(XmppServer, ElevenHundredOpenDescriptors_ConnectThroughXmppWorks) {
  XMPP_REQUIRE_PROSODY();
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < 4096) {
    rlimit raised = limit;
    raised.rlim_cur = std::max<rlim_t>(4096, limit.rlim_cur);
    raised.rlim_max = std::max(raised.rlim_max, raised.rlim_cur);
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) GTEST_SKIP() << "cannot raise RLIMIT_NOFILE to 4096";
  }
  ProsodyServer server;
  server.start();
  // The plugins are made first (as an application makes them at start-up), then the process fills up.
  auto alice_plugin = std::make_shared<XmppSignaling>(server.client("alice"));
  auto bob_plugin = std::make_shared<XmppSignaling>(server.client("bob"));
  std::vector<int> fds;
  while (fds.size() < 1100) {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  ASSERT_GE(fds.back(), 1100);
  {
    auto host_with = [](std::shared_ptr<XmppSignaling> p) {
      HostConfig c = test_config();
      c.signaling.push_back(std::move(p));
      c.ice.interfaces_allow = {"lo"};
      return std::make_unique<Host>(std::move(c));
    };
    std::unique_ptr<Host> a = host_with(alice_plugin), b = host_with(bob_plugin);
    EventRecorder ea(*a), eb(*b);
    ASSERT_TRUE(alice_plugin->wait_online(10s)) << alice_plugin->status().reason;
    ASSERT_TRUE(bob_plugin->wait_online(10s)) << bob_plugin->status().reason;
    ASSERT_TRUE(b->listen_p2p());
    ASSERT_TRUE(sees(*alice_plugin, bob_plugin->local_peer()));
    ConnectionHandle c = a->connect(xmpp_id(server.jid("bob"))).value();
    ASSERT_TRUE(pump_until({a.get(), b.get()}, [&] {
      return ea.find(ConnectionEventKind::kConnected, c) || ea.find(ConnectionEventKind::kClosed, c);
    }));
    ASSERT_TRUE(ea.find(ConnectionEventKind::kConnected, c));
    ASSERT_EQ(a->send(c, "x", 1), SendResult::kOk);
    ASSERT_TRUE(
        pump_until({a.get(), b.get()}, [&] { return eb.find(ConnectionEventKind::kConnected).has_value(); }));
    EXPECT_EQ(receive_n(*b, eb.find(ConnectionEventKind::kConnected)->info.handle, 1).size(), 1u);
    // Every TCP socket to Prosody in this process is below FD_SETSIZE.
    for (int fd = 0; fd < 8192; ++fd) {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0 && peer.sin_family == AF_INET &&
          ntohs(peer.sin_port) == server.port()) {
        EXPECT_LT(fd, FD_SETSIZE);
      }
    }
  }
  for (int fd : fds)
    close(fd);
}

// A TCP server on the loopback that misbehaves in one of a few ways, for every connection it accepts.
class BadServer {
 public:
  enum Mode { kGarbage, kClosesMidStanza, kSilent, kSilentAfterStartTls };
  explicit BadServer(Mode mode) : mode_(mode) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { run(); });
  }
  ~BadServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
    for (int c : held_)
      close(c);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void run() {
    while (!stop_) {
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      ++accepted_;
      char buf[1024];
      (void)!read(c, buf, sizeof buf);  // the client's stream header
      const std::string open =
          "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
          "xmlns:stream='http://etherx.jabber.org/streams' "
          "from='peerlink.test' id='x' version='1.0'>";
      if (mode_ == kGarbage) {
        const std::string junk =
            open + std::string("<<<\x00\xff>>>&;</nope>", 17) + std::string(5000, '\x01');
        (void)!send(c, junk.data(), junk.size(), MSG_NOSIGNAL);
        close(c);
      } else if (mode_ == kClosesMidStanza) {
        const std::string part =
            open + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><requ";
        (void)!send(c, part.data(), part.size(), MSG_NOSIGNAL);
        close(c);
      } else if (mode_ == kSilentAfterStartTls) {
        // Lets the client start TLS, then says nothing (libstrophe's handshake retries without end).
        const std::string features =
            open +
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
            "</starttls></stream:features>";
        (void)!send(c, features.data(), features.size(), MSG_NOSIGNAL);
        (void)!read(c, buf, sizeof buf);  // <starttls/>
        const std::string proceed = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
        (void)!send(c, proceed.data(), proceed.size(), MSG_NOSIGNAL);
        held_.push_back(c);
      } else {
        held_.push_back(c);  // says nothing, never closes
      }
    }
  }
  Mode mode_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<int> held_;
};

// Garbage, a stream cut mid-stanza, a server that says nothing, before TLS or once TLS started: the plugin
// reports it, retries with backoff, never crashes or hangs, and stops at once. (Silent after <proceed/>,
// libstrophe's handshake never returned: no retry, and stop() waited for good.)
TEST(XmppServer, ServerSendsGarbageClosesMidStanzaOrSaysNothing_RetriedWithBackoffStopsAtOnce) {
  for (BadServer::Mode mode : {BadServer::kGarbage, BadServer::kClosesMidStanza, BadServer::kSilent,
                               BadServer::kSilentAfterStartTls}) {
    SCOPED_TRACE(mode);
    BadServer bad(mode);
    XmppOptions o;
    o.jid = "alice@peerlink.test";
    o.password = "x";
    o.host = "127.0.0.1";
    o.port = bad.port();
    o.reconnect_min = 50ms;
    o.reconnect_max = 200ms;
    o.login_timeout = 300ms;
    o.log_sink = [](LogLevel, const std::string&) {};
    auto plugin = std::make_shared<XmppSignaling>(o);
    HostConfig c = test_config();
    c.signaling.push_back(plugin);
    auto host = std::make_unique<Host>(std::move(c));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (bad.accepted() < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    EXPECT_GE(bad.accepted(), 3);
    const XmppStatus s = plugin->status();
    EXPECT_TRUE(s.state == XmppState::kReconnecting || s.state == XmppState::kConnecting)
        << to_string(s.state);
    EXPECT_GE(s.attempts, 3u);
    std::printf("mode %d: %s (%s)\n", int(mode), to_string(s.failure), s.reason.c_str());
    if (mode == BadServer::kSilent || mode == BadServer::kSilentAfterStartTls) {
      EXPECT_EQ(s.failure, XmppFailure::kServer) << s.reason;  // the login timeout's
    }
    const auto stop_start = std::chrono::steady_clock::now();
    host.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - stop_start, 2s);
    EXPECT_EQ(plugin->status().state, XmppState::kStopped);
  }
}

}  // namespace
}  // namespace peerlink::test
