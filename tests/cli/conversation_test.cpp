// The conversation protocol of peerlink-chat and `peerlink send` / `receive` (examples/app) against a
// hostile peer: two Hosts over loopback, one speaking through a Conversation, the other sending raw
// messages. Malformed and out-of-place messages are dropped and counted, the connection goes on, and an
// offered name never writes outside the download directory.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "conversation.hpp"
#include "integration/host_test_util.hpp"
#include "temp_dir.hpp"

namespace peerlink::test {
namespace {

// Feeds `conversation` what `host` received on `connection` until pred() or 5 s.
bool feed_until(Host& host, ConnectionHandle connection, app::Conversation& conversation,
                std::vector<app::ConversationEvent>& events, const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::vector<Message> messages;
  while (std::chrono::steady_clock::now() < deadline) {
    host.wait(10ms);
    messages.clear();
    host.receive(connection, messages);
    for (const Message& m : messages)
      conversation.on_message(m, events);
    conversation.pump(events);
    if (pred()) return true;
  }
  return false;
}

std::vector<uint8_t> bytes(std::initializer_list<int> head, const std::string& tail = "") {
  std::vector<uint8_t> out;
  for (int b : head)
    out.push_back(uint8_t(b));
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

size_t count(const std::vector<app::ConversationEvent>& events, app::ConversationEvent::Kind kind) {
  size_t n = 0;
  for (const app::ConversationEvent& e : events)
    n += e.kind == kind;
  return n;
}

// The server side of a connected pair as a Conversation, downloading into a temporary directory.
struct Receiving {
  ConnectedPair p;
  TempDir dir;
  std::unique_ptr<app::Conversation> conversation;
  ::testing::AssertionResult start() {
    if (!p.connect()) return ::testing::AssertionFailure() << "no connection";
    app::ConversationOptions options;
    options.download_dir = dir.path;
    conversation = std::make_unique<app::Conversation>(p.server, p.server_conn, options);
    return ::testing::AssertionSuccess();
  }
};

TEST(Conversation, HostilePeer_MalformedMessagesDroppedAndCounted_NamesStayInTheDirectory) {
  Receiving receiving;
  ASSERT_TRUE(receiving.start());
  ConnectedPair& p = receiving.p;
  const TempDir& dir = receiving.dir;
  app::Conversation& conversation = *receiving.conversation;
  ASSERT_TRUE(p.client.configure_lanes(p.client_conn, {LaneConfig{0, 1}, LaneConfig{1, 1}}));
  const std::vector<std::vector<uint8_t>> hostile = {
      {},                                                 // empty
      bytes({0x63}),                                      // unknown kind
      bytes({0x03, 0, 0}),                                // too short
      bytes({0x03, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0}),  // accept of no offer
      bytes({0x03, 0, 0, 0, 9, 1}),                       // malformed accept
      bytes({0x04, 0, 0, 0, 9}, "no"),                    // refusal of no file
      bytes({0x07, 0, 0, 0, 9, 1}),                       // result of no file
      bytes({0x02, 0, 0, 0, 1, 0}),                       // offer too short
  };
  for (const std::vector<uint8_t>& m : hostile)
    ASSERT_EQ(p.client.send(p.client_conn, m.data(), m.size()), SendResult::kOk);
  // Data and an end for transfers that do not exist are dropped without a word (a transfer given up).
  const std::vector<uint8_t> stray = bytes({0x05, 0, 0, 0, 42}, "data");
  ASSERT_EQ(p.client.send(p.client_conn, stray.data(), stray.size(), send_flags::kReliable, 1),
            SendResult::kOk);
  std::vector<app::ConversationEvent> events;
  ASSERT_TRUE(feed_until(p.server, p.server_conn, conversation, events,
                         [&] { return conversation.protocol_errors() >= 8; }));
  EXPECT_EQ(conversation.protocol_errors(), 8u);  // every one above

  // An offer whose name climbs out of the directory lands inside it, under its last component; one
  // sending more than it offered fails and leaves nothing behind.
  const std::vector<uint8_t> offer =
      bytes({0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0}, "../../../tmp/evil\x1b.txt");
  const std::vector<uint8_t> data = bytes({0x05, 0, 0, 0, 1}, "abcd");
  const std::vector<uint8_t> too_much = bytes({0x05, 0, 0, 0, 1}, "e");
  ASSERT_EQ(p.client.send(p.client_conn, offer.data(), offer.size()), SendResult::kOk);
  ASSERT_EQ(p.client.send(p.client_conn, data.data(), data.size(), send_flags::kReliable, 1),
            SendResult::kOk);
  ASSERT_EQ(p.client.send(p.client_conn, too_much.data(), too_much.size(), send_flags::kReliable, 1),
            SendResult::kOk);
  ASSERT_TRUE(feed_until(p.server, p.server_conn, conversation, events,
                         [&] { return count(events, app::ConversationEvent::Kind::kFileFailed) == 1; }));
  ASSERT_EQ(count(events, app::ConversationEvent::Kind::kFileStarted), 1u);
  for (const app::ConversationEvent& e : events)
    if (e.kind == app::ConversationEvent::Kind::kFileStarted) {
      EXPECT_EQ(e.name, "evil_.txt");
      EXPECT_EQ(e.path, dir.path + "/.evil_.txt.part");
    }
  struct stat st {};
  EXPECT_NE(stat("/tmp/evil\x1b.txt", &st), 0);
  EXPECT_NE(stat((dir.path + "/.evil_.txt.part").c_str(), &st), 0);  // removed: it was not resumable
  EXPECT_FALSE(conversation.receiving());

  // The connection goes on: text still arrives.
  const std::vector<uint8_t> text = bytes({0x01}, "still here");
  ASSERT_EQ(p.client.send(p.client_conn, text.data(), text.size()), SendResult::kOk);
  ASSERT_TRUE(feed_until(p.server, p.server_conn, conversation, events,
                         [&] { return count(events, app::ConversationEvent::Kind::kText) == 1; }));
  EXPECT_EQ(p.server.status(p.server_conn)->state, ConnectionState::kConnected);
}

// Two offers of one name at once (two files of that name, or two peers): the second is refused, else both
// wrote into one partial file and the first to end took the other's bytes, reported as verified.
TEST(Conversation, TwoOffersOfOneNameAtOnce_TheSecondRefused) {
  Receiving receiving;
  ASSERT_TRUE(receiving.start());
  ConnectedPair& p = receiving.p;
  app::Conversation& conversation = *receiving.conversation;
  const std::vector<uint8_t> first =
      bytes({0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0}, "x");
  const std::vector<uint8_t> second =
      bytes({0x02, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0}, "x");
  ASSERT_EQ(p.client.send(p.client_conn, first.data(), first.size()), SendResult::kOk);
  ASSERT_EQ(p.client.send(p.client_conn, second.data(), second.size()), SendResult::kOk);
  std::vector<app::ConversationEvent> events;
  ASSERT_TRUE(feed_until(p.server, p.server_conn, conversation, events,
                         [&] { return count(events, app::ConversationEvent::Kind::kFileFailed) == 1; }));
  EXPECT_EQ(count(events, app::ConversationEvent::Kind::kFileStarted), 1u);
  for (const app::ConversationEvent& e : events) {
    if (e.kind == app::ConversationEvent::Kind::kFileFailed) {
      EXPECT_NE(e.text.find("being received now"), std::string::npos) << e.text;
    }
  }
}

TEST(Conversation, SafeFileName_LastComponentOnlyNoControlsNoDots) {
  EXPECT_EQ(app::safe_file_name("../../etc/passwd"), "passwd");
  EXPECT_EQ(app::safe_file_name("dir/.hidden"), "hidden");
  EXPECT_EQ(app::safe_file_name(".."), "");
  EXPECT_EQ(app::safe_file_name("a\nb\\c"), "a_b_c");
  EXPECT_EQ(app::safe_file_name(std::string(300, 'x')).size(), 200u);
  EXPECT_EQ(app::safe_file_name("photo.jpg"), "photo.jpg");
}

}  // namespace
}  // namespace peerlink::test
