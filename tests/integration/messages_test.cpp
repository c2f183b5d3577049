// The Messages API over real Hosts in one process: in-process signaling, libnice ICE over loopback only.
// Every wait has a deadline; nothing asserts on speed.
#include "peerlink/messages.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "integration/host_test_util.hpp"

namespace peerlink::test {
namespace {

struct Failure {
  PeerId peer;
  uint32_t reason = 0;
  std::string debug;
};

// A Host with a Messages on it, recording session failures and what it received per channel.
class Node {
 public:
  Node(HostConfig host_config, const std::string& name, MessagesConfig config = {})
      : id(SignalingHub::id(name)), host(std::move(host_config)) {
    auto user = std::move(config.on_session_failed);
    config.on_session_failed = [this, user](const PeerId& peer, uint32_t reason, const std::string& debug) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        failures_.push_back({peer, reason, debug});
      }
      if (user) user(peer, reason, debug);
    };
    messages = std::make_unique<Messages>(host, std::move(config));
  }

  std::vector<Failure> failures() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return failures_;
  }
  std::optional<Failure> failure_from(const PeerId& peer) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& f : failures_)
      if (f.peer == peer) return f;
    return std::nullopt;
  }
  // Everything received on channel so far (receive() appends to it).
  std::vector<ChannelMessage>& got(uint32_t channel) {
    messages->receive(channel, got_[channel]);
    return got_[channel];
  }
  SendResult send_raw(const PeerId& to, uint32_t channel, const std::string& text) {
    return messages->send_to(to, channel, text.data(), text.size());
  }
  SendResult send(const Node& to, uint32_t channel, const std::string& text) {
    SendResult r = messages->send_to(to.id, channel, text.data(), text.size());
    EXPECT_EQ(r, SendResult::kOk) << to_string(r);
    return r;
  }

  const PeerId id;
  Host host;
  std::unique_ptr<Messages> messages;

 private:
  mutable std::mutex mutex_;
  std::vector<Failure> failures_;
  std::map<uint32_t, std::vector<ChannelMessage>> got_;
};

// Runs the nodes' callbacks until pred() holds or timeout passes; returns pred().
bool pump(std::initializer_list<Node*> nodes, const std::function<bool()>& pred,
          std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (Node* n : nodes)
      n->messages->run_callbacks();
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    (*nodes.begin())->host.wait(2ms);
  }
}

std::vector<std::string> texts(const std::vector<ChannelMessage>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages)
    out.emplace_back(m.text());
  return out;
}

TEST(Messages, SendToOpensSessionAndDeliversOnTheChannelWithTheSender) {
  auto hub = std::make_shared<SignalingHub>();
  std::vector<PeerId> requests;
  MessagesConfig bc;
  bc.on_session_request = [&](const PeerId& p) {
    requests.push_back(p);
    return true;
  };
  Node a(p2p_config(hub, "a"), "a"), b(p2p_config(hub, "b"), "b", bc);

  ASSERT_EQ(a.send(b, 5, "hello"), SendResult::kOk);  // kept by the Host until connected
  ASSERT_EQ(a.send(b, 5, "second"), SendResult::kOk);
  auto info = a.messages->session_info(b.id);
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->connected);
  EXPECT_EQ(info->open_channels, std::vector<uint32_t>{5});

  ASSERT_TRUE(pump({&a, &b}, [&] { return b.got(5).size() >= 2; })) << b.got(5).size();
  auto& at_b = b.got(5);
  ASSERT_EQ(at_b.size(), 2u);
  EXPECT_EQ(texts(at_b), (std::vector<std::string>{"hello", "second"}));
  for (const auto& m : at_b) {
    EXPECT_EQ(m.peer(), a.id);
    EXPECT_EQ(m.channel(), 5u);
    EXPECT_TRUE(m.reliable());
  }
  std::vector<uint8_t> payload = at_b[0].take_data();
  EXPECT_EQ(std::string(payload.begin(), payload.end()), "hello");
  EXPECT_TRUE(at_b[0].empty());
  EXPECT_TRUE(b.got(4).empty());
  EXPECT_TRUE(b.got(6).empty());
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0], a.id);

  ASSERT_EQ(b.send(a, 5, "reply"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return a.got(5).size() >= 1; }));
  EXPECT_EQ(a.got(5)[0].text(), "reply");
  EXPECT_EQ(a.got(5)[0].peer(), b.id);

  EXPECT_EQ(a.messages->sessions(), std::vector<PeerId>{b.id});
  EXPECT_EQ(b.messages->sessions(), std::vector<PeerId>{a.id});
  ASSERT_TRUE(pump({&a, &b}, [&] { return a.messages->session_info(b.id)->connected; }));
  EXPECT_EQ(a.host.connections(), std::vector<ConnectionHandle>{a.messages->session_info(b.id)->connection});
  EXPECT_EQ(b.host.connections(), std::vector<ConnectionHandle>{b.messages->session_info(a.id)->connection});
  auto ca = a.messages->counters(), cb = b.messages->counters();
  EXPECT_EQ(ca.messages_sent, 2u);
  EXPECT_EQ(ca.messages_received, 1u);
  EXPECT_EQ(cb.messages_sent, 1u);
  EXPECT_EQ(cb.messages_received, 2u);
  EXPECT_EQ(ca.sessions_opened, 1u);
  EXPECT_EQ(cb.sessions_opened, 1u);
  EXPECT_EQ(ca.sessions, 1u);
  EXPECT_EQ(ca.queued_messages, 0u);
  EXPECT_EQ(ca.invalid_messages + cb.invalid_messages, 0u);
  EXPECT_TRUE(a.failures().empty());
  EXPECT_TRUE(b.failures().empty());
}

TEST(Messages, BothSendAtOnce_ExactlyOneConnectionAndEverythingDelivered) {
  const int kRounds = 5, kCount = 20;
  for (int round = 0; round < kRounds; ++round) {
    auto hub = std::make_shared<SignalingHub>();
    Node a(p2p_config(hub, "a"), "a"), b(p2p_config(hub, "b"), "b");
    std::vector<SendResult> from_b(kCount);
    std::thread t([&] {
      for (int i = 0; i < kCount; ++i) {
        std::string m = "b" + std::to_string(i);
        from_b[size_t(i)] = b.messages->send_to(a.id, 1, m.data(), m.size());
      }
    });
    for (int i = 0; i < kCount; ++i)
      ASSERT_EQ(a.send(b, 1, "a" + std::to_string(i)), SendResult::kOk);
    t.join();
    for (SendResult r : from_b)
      ASSERT_EQ(r, SendResult::kOk);
    ASSERT_TRUE(pump({&a, &b},
                     [&] { return a.got(1).size() >= size_t(kCount) && b.got(1).size() >= size_t(kCount); }))
        << "round " << round << ": a got " << a.got(1).size() << ", b got " << b.got(1).size();
    // Give a second connection time to appear, if the race went wrong.
    pump(
        {&a, &b}, [] { return false; }, 300ms);
    ASSERT_EQ(a.got(1).size(), size_t(kCount));
    ASSERT_EQ(b.got(1).size(), size_t(kCount));
    for (int i = 0; i < kCount; ++i) {
      EXPECT_EQ(a.got(1)[size_t(i)].text(), "b" + std::to_string(i));
      EXPECT_EQ(a.got(1)[size_t(i)].peer(), b.id);
      EXPECT_EQ(b.got(1)[size_t(i)].text(), "a" + std::to_string(i));
      EXPECT_EQ(b.got(1)[size_t(i)].peer(), a.id);
    }
    EXPECT_EQ(a.host.connections().size(), 1u) << "round " << round;
    EXPECT_EQ(b.host.connections().size(), 1u) << "round " << round;
    EXPECT_EQ(a.messages->counters().sessions_opened, 1u);
    EXPECT_EQ(b.messages->counters().sessions_opened, 1u);
    EXPECT_EQ(a.messages->counters().sessions_closed, 0u);
    EXPECT_TRUE(a.failures().empty());
    EXPECT_TRUE(b.failures().empty());
  }
}

TEST(Messages, SeveralChannelsKeptApart) {
  auto hub = std::make_shared<SignalingHub>();
  Node a(p2p_config(hub, "a"), "a"), b(p2p_config(hub, "b"), "b");
  // Channel numbers of every header length.
  const std::vector<uint32_t> channels = {0, 1, 127, 128, 16383, 16384, 300000, 0xFFFFFFFFu};
  const int kRounds = 20;
  for (int r = 0; r < kRounds; ++r)
    for (uint32_t ch : channels)
      ASSERT_EQ(a.send(b, ch, std::to_string(ch) + "/" + std::to_string(r)), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] {
    for (uint32_t ch : channels)
      if (b.got(ch).size() < size_t(kRounds)) return false;
    return true;
  }));
  for (uint32_t ch : channels) {
    const auto& got = b.got(ch);
    ASSERT_EQ(got.size(), size_t(kRounds)) << ch;
    for (int r = 0; r < kRounds; ++r) {
      EXPECT_EQ(got[size_t(r)].text(), std::to_string(ch) + "/" + std::to_string(r));
      EXPECT_EQ(got[size_t(r)].channel(), ch);
      EXPECT_EQ(got[size_t(r)].peer(), a.id);
    }
  }
  EXPECT_TRUE(b.got(2).empty());
  EXPECT_EQ(b.messages->counters().messages_received, channels.size() * kRounds);
  EXPECT_EQ(b.messages->session_info(a.id)->open_channels, channels);
}

TEST(Messages, ReliableOrderingOf1000Messages) {
  auto hub = std::make_shared<SignalingHub>();
  Node a(p2p_config(hub, "a"), "a"), b(p2p_config(hub, "b"), "b");
  const uint64_t kCount = 1000;
  for (uint64_t i = 0; i < kCount; ++i) {
    auto m = make_message(i, 12 + (i * 37) % 3000);
    ASSERT_EQ(a.messages->send_to(b.id, 9, m.data(), m.size()), SendResult::kOk) << i;
  }
  std::vector<ChannelMessage> got;
  ASSERT_TRUE(pump({&a, &b}, [&] {
    size_t before = got.size();
    size_t n = b.messages->receive(9, got, 100);  // at most 100 per call
    EXPECT_LE(n, 100u);
    EXPECT_EQ(got.size() - before, n);
    return got.size() >= kCount;
  }));
  ASSERT_EQ(got.size(), kCount);
  for (uint64_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(got[i].size(), 12 + (i * 37) % 3000) << i;
    ASSERT_EQ(message_index(got[i].data()), i);
    ASSERT_TRUE(check_message(i, got[i].data(), got[i].size())) << i;
  }
}

TEST(Messages, RequestDeclined_SenderSessionFailsAtItsConnectTimeout) {
  auto hub = std::make_shared<SignalingHub>();
  int asked = 0;
  MessagesConfig bc;
  bc.on_session_request = [&](const PeerId& p) {
    EXPECT_EQ(p, SignalingHub::id("a"));
    ++asked;
    return false;
  };
  Node a(p2p_config(hub, "a", 2s), "a"), b(p2p_config(hub, "b", 2s), "b", bc);
  ASSERT_EQ(a.send(b, 1, "anyone?"), SendResult::kOk);
  ASSERT_TRUE(pump(
      {&a, &b}, [&] { return a.failure_from(b.id).has_value(); }, 15s));
  auto f = *a.failure_from(b.id);
  EXPECT_EQ(f.reason, uint32_t(EndReason::kMiscConnectTimeout)) << f.reason << " " << f.debug;
  EXPECT_EQ(asked, 1);
  EXPECT_TRUE(a.messages->sessions().empty());
  EXPECT_EQ(a.messages->counters().sessions_failed, 1u);
  EXPECT_TRUE(a.host.connections().empty());
  // The ignored request is released when b's Host gives up on it.
  ASSERT_TRUE(pump(
      {&a, &b}, [&] { return b.host.connections().empty(); }, 15s));
  EXPECT_TRUE(b.messages->sessions().empty());
  EXPECT_EQ(b.messages->counters().requests_ignored, 1u);
  EXPECT_EQ(b.messages->counters().sessions_opened, 0u);
  EXPECT_EQ(b.messages->counters().messages_received, 0u);
  EXPECT_TRUE(b.got(1).empty());
  EXPECT_TRUE(b.failures().empty());
}

TEST(Messages, UnreachablePeer_SessionFailedWithSignalingUnreachable) {
  auto hub = std::make_shared<SignalingHub>();
  Node a(p2p_config(hub, "a"), "a");
  std::string m = "hello?";
  ASSERT_EQ(a.messages->send_to(SignalingHub::id("nobody"), 1, m.data(), m.size()), SendResult::kOk);
  ASSERT_TRUE(pump({&a}, [&] { return a.failure_from(SignalingHub::id("nobody")).has_value(); }));
  auto f = *a.failure_from(SignalingHub::id("nobody"));
  EXPECT_EQ(f.reason, uint32_t(EndReason::kMiscSignalingUnreachable));
  EXPECT_NE(f.debug.find("no such peer"), std::string::npos) << f.debug;
  EXPECT_TRUE(a.messages->sessions().empty());
  for (ConnectionHandle c : a.host.connections()) {
    auto info = a.host.connection_info(c);
    ADD_FAILURE() << "connection " << c << " left: " << to_string(info->state) << " " << info->end_reason
                  << " " << info->end_debug;
  }
  EXPECT_EQ(a.messages->counters().sessions_failed, 1u);
  EXPECT_EQ(a.failures().size(), 1u);
}

TEST(Messages, UnknownSchemeOrInvalidPeer_ClearErrorAndNoSession) {
  auto hub = std::make_shared<SignalingHub>();
  Node a(p2p_config(hub, "a"), "a");
  const PeerId bob = *PeerId::parse("xmpp:bob@example.org");
  EXPECT_EQ(a.messages->send_to(bob, 1, "x", 1), SendResult::kNoConnection);
  EXPECT_EQ(a.messages->send_to(PeerId(), 1, "x", 1), SendResult::kNoConnection);
  EXPECT_EQ(a.messages->send_to(a.id, 1, "x", 1), SendResult::kNoConnection);  // ourselves
  a.messages->run_callbacks();
  auto f = a.failure_from(bob);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->reason, uint32_t(EndReason::kMiscSignalingUnreachable));
  EXPECT_NE(f->debug.find("no signaling plugin for scheme 'xmpp'"), std::string::npos) << f->debug;
  f = a.failure_from(a.id);
  ASSERT_TRUE(f);
  EXPECT_NE(f->debug.find("own peer id"), std::string::npos) << f->debug;
  EXPECT_TRUE(a.messages->sessions().empty());
  EXPECT_TRUE(a.host.connections().empty());
  EXPECT_EQ(a.messages->counters().sessions_opened, 0u);
  EXPECT_EQ(a.messages->counters().messages_sent, 0u);

  // A Host that cannot listen for peer-to-peer requests cannot carry a Messages.
  Host plain(test_config());
  auto expect_refused = [](Host& host, MessagesConfig config, ErrorCode code) {
    Result<std::unique_ptr<Messages>> m = Messages::create(host, config);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, code) << m.error().message;
    EXPECT_THROW(Messages(host, config), Exception);
  };
  expect_refused(plain, {}, ErrorCode::kNoSignaling);
  expect_refused(a.host, {}, ErrorCode::kAlreadyExists);  // a.messages listens on that virtual port
  MessagesConfig bad;
  bad.idle_timeout = -1ms;
  expect_refused(a.host, bad, ErrorCode::kInvalidConfig);
}

// Messages keeps to its virtual port, poll group and callback: the application runs its own peer-to-peer
// connections on the same Host, to the same peer, with its own callback and service(), and neither sees
// the other's events or messages.
TEST(Messages, SharesTheHostWithTheApplication) {
  auto hub = std::make_shared<SignalingHub>();
  Node a(p2p_config(hub, "a"), "a"), b(p2p_config(hub, "b"), "b");
  ListenOptions lo;
  std::vector<ConnectionEvent> b_events;
  lo.callback = [&](const ConnectionEvent& e) { b_events.push_back(e); };
  ASSERT_TRUE(b.host.listen_p2p(lo));
  // The application's own symmetric connection to the peer Messages also talks to.
  ConnectOptions sym;
  sym.symmetric = true;
  Result<ConnectionHandle> app = a.host.connect(b.id, sym);
  ASSERT_TRUE(app) << app.error().message;
  ASSERT_EQ(a.send(b, 7, "to messages"), SendResult::kOk);
  ASSERT_EQ(a.host.send(*app, "to the app", 10), SendResult::kOk);

  // a: the application reads its events and messages with service(); Messages' never show up there.
  std::vector<std::string> app_got;
  bool app_connected = false;
  HostEvent ev;
  ASSERT_TRUE(pump({&a, &b}, [&] {
    while (a.host.service(ev, 0ms)) {
      EXPECT_EQ(ev.connection, *app) << to_string(ev.kind) << " of another connection";
      if (ev.kind == HostEventKind::kConnected) app_connected = true;
      if (ev.kind == HostEventKind::kMessage) app_got.emplace_back(ev.message.text());
    }
    // b's listener callback runs when b's turn in this loop comes: wait for its kConnected too.
    const bool b_connected = std::any_of(b_events.begin(), b_events.end(), [](const ConnectionEvent& e) {
      return e.kind == ConnectionEventKind::kConnected;
    });
    return app_connected && b_connected && b.got(7).size() == 1;
  }));
  EXPECT_EQ(b.got(7)[0].text(), "to messages");
  ASSERT_EQ(a.messages->sessions().size(), 1u);
  EXPECT_NE(a.messages->session_info(b.id)->connection, *app);
  // b: the application's listener callback saw its connection and only it; its message is on it.
  ConnectionHandle b_app = kInvalidConnection;
  for (const auto& e : b_events)
    if (e.kind == ConnectionEventKind::kConnected) b_app = e.info.handle;
  ASSERT_NE(b_app, kInvalidConnection);
  for (const auto& e : b_events)
    EXPECT_EQ(e.info.handle, b_app);
  EXPECT_NE(b.messages->session_info(a.id)->connection, b_app);
  EXPECT_EQ(receive_n(b.host, b_app, 1).size(), 1u);
  EXPECT_TRUE(app_got.empty());
}

TEST(Messages, IdleTimeout_ClosesBothSidesAndALaterSendOpensANewSession) {
  auto hub = std::make_shared<SignalingHub>();
  MessagesConfig mc;
  mc.idle_timeout = 300ms;
  Node a(p2p_config(hub, "a"), "a", mc), b(p2p_config(hub, "b"), "b", mc);
  ASSERT_EQ(a.send(b, 1, "x"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.got(1).size() == 1; }));
  ASSERT_TRUE(pump({&a, &b}, [&] {
    return a.messages->sessions().empty() && b.messages->sessions().empty() && a.host.connections().empty() &&
           b.host.connections().empty();
  }));
  // Each side closed it itself, or was told by the peer that the peer's idle timer did.
  auto closed_by_idle = [](const Node& n, const Node& peer) {
    auto f = n.failure_from(peer.id);
    return n.messages->counters().sessions_idle_closed == 1 || (f && f->reason == messages_end_reason::kIdle);
  };
  EXPECT_TRUE(closed_by_idle(a, b));
  EXPECT_TRUE(closed_by_idle(b, a));
  EXPECT_GE(a.messages->counters().sessions_idle_closed + b.messages->counters().sessions_idle_closed, 1u);
  for (const auto& f : a.failures())
    EXPECT_EQ(f.reason, messages_end_reason::kIdle) << f.debug;
  for (const auto& f : b.failures())
    EXPECT_EQ(f.reason, messages_end_reason::kIdle) << f.debug;

  ASSERT_EQ(a.send(b, 1, "y"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.got(1).size() == 2; }));
  EXPECT_EQ(b.got(1)[1].text(), "y");
  EXPECT_EQ(b.got(1)[1].peer(), a.id);
  EXPECT_EQ(a.messages->counters().sessions_opened, 2u);
  EXPECT_EQ(b.messages->counters().sessions_opened, 2u);
}

TEST(Messages, CloseSession_PeerToldReceivedStaysReadableAndNewSessionLater) {
  auto hub = std::make_shared<SignalingHub>();
  Node a(p2p_config(hub, "a"), "a"), b(p2p_config(hub, "b"), "b");
  ASSERT_EQ(a.send(b, 1, "x"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.got(1).size() == 1; }));
  ASSERT_EQ(b.send(a, 1, "late"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return a.messages->counters().queued_messages == 1; }));

  EXPECT_TRUE(a.messages->close_session(b.id));
  EXPECT_FALSE(a.messages->close_session(b.id));
  EXPECT_TRUE(a.messages->sessions().empty());
  EXPECT_TRUE(a.host.connections().empty());
  ASSERT_EQ(a.got(1).size(), 1u);  // received before the close: still readable
  EXPECT_EQ(a.got(1)[0].text(), "late");
  EXPECT_EQ(a.messages->counters().sessions_closed, 1u);

  ASSERT_TRUE(pump({&a, &b}, [&] { return b.failure_from(a.id).has_value(); }));
  EXPECT_EQ(b.failure_from(a.id)->reason, messages_end_reason::kClosed) << b.failure_from(a.id)->debug;
  EXPECT_TRUE(b.messages->sessions().empty());
  EXPECT_TRUE(b.host.connections().empty());
  EXPECT_TRUE(a.failures().empty());

  ASSERT_EQ(b.send(a, 2, "again"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return a.got(2).size() == 1; }));
  EXPECT_EQ(a.got(2)[0].text(), "again");
  EXPECT_EQ(a.messages->counters().sessions_opened, 2u);
  EXPECT_EQ(b.messages->counters().sessions_opened, 2u);
}

// close_session() lingers: what was sent just before still arrives, then the peer sees the close.
TEST(Messages, CloseSessionRightAfterSending_EverythingArrivesFirst) {
  auto hub = std::make_shared<SignalingHub>();
  Node a(p2p_config(hub, "a"), "a"), b(p2p_config(hub, "b"), "b");
  ASSERT_EQ(a.send(b, 3, "first"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.got(3).size() == 1; }));
  const std::string big(16 << 10, 'z');
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(a.send(b, 3, std::to_string(i) + big), SendResult::kOk);
  EXPECT_TRUE(a.messages->close_session(b.id));
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.failure_from(a.id).has_value(); }));
  EXPECT_EQ(b.failure_from(a.id)->reason, messages_end_reason::kClosed);
  ASSERT_EQ(b.got(3).size(), 201u);
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(b.got(3)[size_t(i) + 1].text(), std::to_string(i) + big) << i;
}

TEST(Messages, CloseChannel_DropsThatChannelAndClosesTheSessionWithTheLastOne) {
  auto hub = std::make_shared<SignalingHub>();
  Node a(p2p_config(hub, "a"), "a"), b(p2p_config(hub, "b"), "b");
  ASSERT_EQ(a.send(b, 1, "one-1"), SendResult::kOk);
  ASSERT_EQ(a.send(b, 2, "two-1"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.got(1).size() == 1 && b.got(2).size() == 1; }));
  EXPECT_EQ(b.messages->session_info(a.id)->open_channels,
            (std::vector<uint32_t>{1, 2}));  // opened by arrival

  // Closed channel: later messages on it are dropped, the other channel goes on.
  EXPECT_TRUE(b.messages->close_channel(a.id, 1));
  EXPECT_EQ(b.messages->session_info(a.id)->open_channels, std::vector<uint32_t>{2});
  EXPECT_EQ(b.messages->session_info(a.id)->closed_channels, std::vector<uint32_t>{1});
  ASSERT_EQ(a.send(b, 1, "one-2"), SendResult::kOk);
  ASSERT_EQ(a.send(b, 2, "two-2"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.got(2).size() == 2; }));
  // One reliable stream: "one-2" was handled before "two-2".
  EXPECT_EQ(b.messages->counters().dropped_closed_channel, 1u);
  EXPECT_EQ(b.got(1).size(), 1u);

  // Messages queued but not yet received on a channel being closed are dropped too.
  ASSERT_EQ(a.send(b, 3, "three"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.messages->counters().queued_messages == 1; }));
  EXPECT_TRUE(b.messages->close_channel(a.id, 3));
  EXPECT_EQ(b.messages->counters().dropped_closed_channel, 2u);
  EXPECT_EQ(b.messages->counters().queued_messages, 0u);
  EXPECT_TRUE(b.got(3).empty());
  EXPECT_EQ(b.messages->sessions().size(), 1u);

  // send_to() opens a closed channel again.
  ASSERT_EQ(b.send(a, 1, "b-one"), SendResult::kOk);
  ASSERT_EQ(a.send(b, 1, "one-3"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.got(1).size() == 2 && a.got(1).size() == 1; }));
  EXPECT_EQ(b.got(1)[1].text(), "one-3");
  EXPECT_EQ(b.messages->session_info(a.id)->open_channels, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(b.messages->session_info(a.id)->closed_channels, std::vector<uint32_t>{3});

  // Closing the last open channels closes the session; the peer is told why.
  EXPECT_TRUE(b.messages->close_channel(a.id, 1));
  EXPECT_EQ(b.messages->sessions().size(), 1u);
  EXPECT_TRUE(b.messages->close_channel(a.id, 2));
  EXPECT_TRUE(b.messages->sessions().empty());
  EXPECT_TRUE(b.host.connections().empty());
  EXPECT_EQ(b.messages->counters().sessions_closed, 1u);
  EXPECT_FALSE(b.messages->close_channel(a.id, 2));
  ASSERT_TRUE(pump({&a, &b}, [&] { return a.failure_from(b.id).has_value(); }));
  EXPECT_EQ(a.failure_from(b.id)->reason, messages_end_reason::kChannelsClosed);
  EXPECT_TRUE(a.messages->sessions().empty());
  EXPECT_TRUE(b.failures().empty());
}

TEST(Messages, MessagesWithoutAValidHeader_DroppedAndCounted) {
  auto hub = std::make_shared<SignalingHub>();
  Node m(p2p_config(hub, "m"), "m");
  Host raw(p2p_config(hub, "raw"));  // a plain Host: sends whatever it likes
  EventRecorder events(raw);
  ConnectOptions to_messages;  // not symmetric: a request like any other, on Messages' virtual port
  to_messages.virtual_port = kMessagesVirtualPort;
  ConnectionHandle c = raw.connect(SignalingHub::id("m"), to_messages).value_or(kInvalidConnection);
  ASSERT_NE(c, kInvalidConnection);
  ASSERT_TRUE(pump({&m}, [&] {
    raw.run_callbacks();
    return events.find(ConnectionEventKind::kConnected, c).has_value();
  }));
  using Bytes = std::vector<uint8_t>;
  const std::vector<Bytes> garbage = {
      Bytes{},                                              // empty
      Bytes{'g', 'a', 'r', 'b', 'a', 'g', 'e'},             // no marker
      Bytes{0xC1},                                          // no channel
      Bytes{0xC1, 0x80},                                    // truncated channel
      Bytes{0xC1, 0x85, 0x00, 'x'},                         // not minimal
      Bytes{0xC1, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F},            // beyond 32 bits
      Bytes{0xC1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 'x'}  // more than 5 bytes of channel
  };
  for (const auto& g : garbage)
    ASSERT_EQ(raw.send(c, g.data(), g.size()), SendResult::kOk);
  const Bytes ok = {0xC1, 0x05, 'o', 'k'};                                // channel 5
  const Bytes top = {0xC1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 't', 'o', 'p'};  // channel 0xFFFFFFFF
  const Bytes empty_payload = {0xC1, 0x00};                               // channel 0, nothing in it
  ASSERT_EQ(raw.send(c, ok.data(), ok.size()), SendResult::kOk);
  ASSERT_EQ(raw.send(c, top.data(), top.size()), SendResult::kOk);
  ASSERT_EQ(raw.send(c, empty_payload.data(), empty_payload.size()), SendResult::kOk);
  ASSERT_TRUE(pump({&m}, [&] {
    raw.run_callbacks();
    return m.got(0).size() == 1;
  }));
  ASSERT_EQ(m.got(5).size(), 1u);
  EXPECT_EQ(m.got(5)[0].text(), "ok");
  EXPECT_EQ(m.got(5)[0].peer(), SignalingHub::id("raw"));
  ASSERT_EQ(m.got(0xFFFFFFFFu).size(), 1u);
  EXPECT_EQ(m.got(0xFFFFFFFFu)[0].text(), "top");
  EXPECT_TRUE(m.got(0)[0].empty());
  // Everything before the last valid message has been handled (one reliable stream).
  EXPECT_EQ(m.messages->counters().invalid_messages, garbage.size());
  EXPECT_EQ(m.messages->counters().messages_received, 3u);
  EXPECT_EQ(m.messages->sessions(), std::vector<PeerId>{SignalingHub::id("raw")});  // the session goes on
  EXPECT_FALSE(events.find(ConnectionEventKind::kClosed, c).has_value());
}

TEST(Messages, DestroyingMessages_ClosesItsSessions) {
  auto hub = std::make_shared<SignalingHub>();
  Node a(p2p_config(hub, "a"), "a"), b(p2p_config(hub, "b"), "b");
  ASSERT_EQ(a.send(b, 1, "x"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.got(1).size() == 1; }));
  a.messages.reset();
  EXPECT_TRUE(a.host.connections().empty());
  ASSERT_TRUE(pump({&b}, [&] { return b.failure_from(a.id).has_value(); }));
  EXPECT_EQ(b.failure_from(a.id)->reason, messages_end_reason::kClosed);
  // The Host can carry a new Messages.
  a.messages = std::make_unique<Messages>(a.host);
  ASSERT_EQ(b.send(a, 1, "back"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return a.got(1).size() == 1; }));
  EXPECT_EQ(a.got(1)[0].text(), "back");
}

TEST(Messages, ServiceCallbackThread_CallbacksStillRunInRunCallbacks) {
  auto hub = std::make_shared<SignalingHub>();
  HostConfig ha = p2p_config(hub, "a"), hb = p2p_config(hub, "b");
  ha.callback_thread = hb.callback_thread = CallbackThread::kService;
  std::thread::id request_thread;
  MessagesConfig bc;
  bc.on_session_request = [&](const PeerId&) {
    request_thread = std::this_thread::get_id();
    return true;
  };
  Node a(std::move(ha), "a"), b(std::move(hb), "b", bc);
  ASSERT_EQ(a.send(b, 3, "svc"), SendResult::kOk);
  ASSERT_TRUE(pump({&a, &b}, [&] { return b.got(3).size() == 1; }));
  EXPECT_EQ(b.got(3)[0].text(), "svc");
  EXPECT_EQ(request_thread, std::this_thread::get_id());
  ASSERT_TRUE(pump({&a, &b}, [&] { return a.messages->session_info(b.id)->connected; }));
  EXPECT_EQ(a.host.connections().size(), 1u);
  EXPECT_EQ(b.host.connections().size(), 1u);
}

// A request raised for Messages but not yet delivered when the Messages object goes: the Host releases it
// when it delivers the event (nobody else would), instead of holding the handle for good.
TEST(Messages, DestroyedWithARequestNotYetDelivered_TheHostReleasesIt) {
  auto hub = std::make_shared<SignalingHub>();
  Host a_host(p2p_config(hub, "a"));
  auto a_messages = std::make_unique<Messages>(a_host);
  Node b(p2p_config(hub, "b"), "b");
  ASSERT_EQ(b.send_raw(SignalingHub::id("a"), 1, "hello"), SendResult::kOk);
  // The request reaches a's Host (a handle is held for it); nobody runs a's callbacks yet.
  ASSERT_TRUE(pump({&b}, [&] { return a_host.connections().size() == 1; }));
  a_messages.reset();
  ASSERT_TRUE(pump_until({&a_host}, [&] { return a_host.connections().empty(); }))
      << a_host.connections().size() << " handles left";
}

}  // namespace
}  // namespace peerlink::test
