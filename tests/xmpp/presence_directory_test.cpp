// Which resource a bare JID reaches (the rule in presence_directory.hpp and docs/XMPP.md).
#include "presence_directory.hpp"

#include <gtest/gtest.h>

namespace peerlink::xmpp {
namespace {

using Clock = PresenceDirectory::Clock;

Jid jid(const char* text) {
  return *Jid::parse(text);
}

struct Directory : ::testing::Test {
  void SetUp() override {
    d.reset(jid("alice@x/me"));
    d.know_caps("PEER", true);
    d.know_caps("CHAT", false);
    d.set_roster_item("bob@x", "both");
  }
  std::string chosen(const char* bare) {
    auto c = d.choose(bare);
    return c.resource ? c.resource->resource : (c.pending ? "(pending)" : "(none)");
  }
  PresenceDirectory d;
  Clock::time_point t0 = Clock::now();
};

TEST_F(Directory, SignalingResourcesAreThoseWithTheFeatureNotOurselves) {
  const uint64_t g0 = d.generation();
  d.available(jid("bob@x/chat"), 0, "CHAT", t0);
  d.available(jid("bob@x/game"), 0, "PEER", t0);
  EXPECT_TRUE(d.available(jid("alice@x/tablet"), 0, "", t0));  // features unknown: asked
  EXPECT_NE(d.generation(), g0);
  std::vector<Jid> r = d.signaling_resources();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].full(), "bob@x/game");
  d.set_features(jid("alice@x/tablet"), true, "");
  EXPECT_EQ(d.signaling_resources().size(), 2u);
  d.unavailable(jid("bob@x"));
  r = d.signaling_resources();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].full(), "alice@x/tablet");
}

TEST_F(Directory, HighestPriorityThenMostRecentAmongResourcesWithTheFeature) {
  EXPECT_FALSE(d.available(jid("bob@x/chat"), 50, "CHAT", t0));
  EXPECT_FALSE(d.available(jid("bob@x/old"), 0, "PEER", t0));
  EXPECT_FALSE(d.available(jid("bob@x/new"), 0, "PEER", t0 + std::chrono::seconds(1)));
  EXPECT_EQ(chosen("bob@x"), "new");  // chat has a higher priority but no feature; new is more recent
  d.available(jid("bob@x/old"), 1, "PEER", t0 + std::chrono::seconds(2));
  EXPECT_EQ(chosen("bob@x"), "old");  // priority first
  d.unavailable(jid("bob@x/old"));
  EXPECT_EQ(chosen("bob@x"), "new");
  d.unavailable(jid("bob@x"));
  EXPECT_EQ(chosen("bob@x"), "(none)");
  EXPECT_NE(d.explain("bob@x").find("offline"), std::string::npos);
}

TEST_F(Directory, UnknownFeaturesAreAskedOnceThenDecide) {
  EXPECT_TRUE(d.available(jid("bob@x/a"), 0, "", t0));   // no caps: ask
  EXPECT_FALSE(d.available(jid("bob@x/a"), 0, "", t0));  // already asked
  EXPECT_EQ(chosen("bob@x"), "(pending)");
  d.set_features(jid("bob@x/a"), true, "");
  EXPECT_EQ(chosen("bob@x"), "a");
  EXPECT_TRUE(d.available(jid("bob@x/b"), 5, "NEWVER", t0));
  d.set_features(jid("bob@x/b"), false, "NEWVER");  // verified: every resource with NEWVER lacks it
  EXPECT_FALSE(d.available(jid("bob@x/c"), 9, "NEWVER", t0));
  EXPECT_EQ(chosen("bob@x"), "a");
  EXPECT_NE(d.explain("bob@x").find("none of its resources"), std::string::npos);
}

TEST_F(Directory, StickyToTheResourceThatSignaledUntilItLeavesOrFails) {
  d.available(jid("bob@x/a"), 0, "PEER", t0);
  d.available(jid("bob@x/b"), 0, "PEER", t0 + std::chrono::seconds(1));
  d.signaled_from(jid("bob@x/a"));
  EXPECT_EQ(chosen("bob@x"), "a");
  d.failed(jid("bob@x/a"));
  EXPECT_EQ(chosen("bob@x"), "b");
  d.signaled_from(jid("carol@y/phone"));  // a stranger whose presence we do not see
  EXPECT_EQ(chosen("carol@y"), "phone");
  d.unavailable(jid("carol@y/phone"));
  EXPECT_EQ(chosen("carol@y"), "(none)");
  EXPECT_NE(d.explain("carol@y").find("not a contact"), std::string::npos);
}

// A resource whose disco#info says it lacks the feature is not asked again at every presence it sends.
TEST_F(Directory, NoFeatureFromDisco_NotAskedAgainAtEveryPresence) {
  EXPECT_TRUE(d.available(jid("bob@x/chat"), 0, "", t0));
  d.set_features(jid("bob@x/chat"), false, "");
  EXPECT_FALSE(d.available(jid("bob@x/chat"), 0, "", t0 + std::chrono::seconds(1)));  // "away"
  EXPECT_EQ(chosen("bob@x"), "(none)");
}

TEST_F(Directory, ARefusedResourceIsChosenAgainOnceItAnnouncesItself) {
  d.available(jid("bob@x/game"), 0, "PEER", t0);
  d.failed(jid("bob@x/game"));  // an error reply: ruled out (it was so until bob went offline)
  EXPECT_EQ(chosen("bob@x"), "(none)");
  EXPECT_FALSE(d.available(jid("bob@x/game"), 0, "PEER", t0 + std::chrono::seconds(1)));  // caps known
  EXPECT_EQ(chosen("bob@x"), "game");
}

TEST_F(Directory, StrangersThatSignaled_TheLatestKeptOnly) {
  for (size_t i = 0; i < PresenceDirectory::kMaxStrangers + 100; ++i) {
    d.signaled_from(jid(("s" + std::to_string(i) + "@y/r").c_str()));
    d.signaled_from(jid("s1@y/r"));  // signals all along: kept
  }
  EXPECT_EQ(chosen("s0@y"), "(none)");  // forgotten
  EXPECT_EQ(chosen("s1@y"), "r");
  EXPECT_EQ(chosen(("s" + std::to_string(PresenceDirectory::kMaxStrangers + 99) + "@y").c_str()), "r");
  d.available(jid("bob@x/game"), 0, "PEER", t0);
  d.signaled_from(jid("bob@x/game"));  // a contact: not a stranger, never forgotten this way
  for (size_t i = 0; i < PresenceDirectory::kMaxStrangers + 10; ++i)
    d.signaled_from(jid(("t" + std::to_string(i) + "@y/r").c_str()));
  EXPECT_EQ(chosen("bob@x"), "game");
}

TEST_F(Directory, NeverChoosesItselfButOtherResourcesOfItsAccount) {
  EXPECT_FALSE(d.available(jid("alice@x/me"), 10, "PEER", t0));
  d.available(jid("alice@x/tablet"), 0, "PEER", t0);
  EXPECT_EQ(chosen("alice@x"), "tablet");
  EXPECT_EQ(d.resources("alice@x"), std::vector<std::string>{"tablet"});
}

TEST_F(Directory, ContactsWithoutPresenceSharingAreExplained) {
  d.set_roster_item("eve@x", "from");
  EXPECT_TRUE(d.in_roster("eve@x"));
  EXPECT_FALSE(d.sees_presence("eve@x"));
  EXPECT_NE(d.explain("eve@x").find("does not share its presence"), std::string::npos);
  d.set_roster_item("eve@x", "remove");
  EXPECT_FALSE(d.in_roster("eve@x"));
}

}  // namespace
}  // namespace peerlink::xmpp
