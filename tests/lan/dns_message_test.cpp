// The LAN beacon's DNS codec: DNS-SD records written and read back, messages from the RFCs' layout read,
// and hostile messages refused with the reason.
#include "dns_message.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace peerlink::lan::dns {
namespace {

Record record(const char* name, Type type, uint32_t ttl = 120) {
  Record r;
  r.name = name_of(name);
  r.type = static_cast<uint16_t>(type);
  r.ttl = ttl;
  return r;
}

// What a peer announces: PTR service -> instance, SRV, TXT, A and AAAA.
Message announcement() {
  Message m;
  m.response = true;
  m.authoritative = true;
  Record ptr = record("_chat._udp.local", Type::kPtr, 4500);
  ptr.target = {"Alice's laptop. Kitchen", "_chat", "_udp", "local"};
  Record srv = record("x", Type::kSrv);
  srv.name = ptr.target;
  srv.cache_flush = true;
  srv.port = 40123;
  srv.target = name_of("pl1-abcd.local");
  Record txt = record("x", Type::kTxt, 4500);
  txt.name = ptr.target;
  txt.cache_flush = true;
  txt.strings = {"v=1", "k=" + std::string(32, '\x07'), std::string("s=\0\xff", 4)};
  Record a = record("pl1-abcd.local", Type::kA);
  a.cache_flush = true;
  a.address = {100, 64, 0, 1};
  Record aaaa = record("pl1-abcd.local", Type::kAaaa);
  aaaa.address = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  m.answers = {ptr};
  m.additionals = {srv, txt, a, aaaa};
  return m;
}

std::optional<Message> parse_bytes(const std::vector<uint8_t>& b, std::string* why = nullptr) {
  return parse(b.data(), b.size(), why);
}

TEST(DnsMessage, AnnouncementRoundTripsWithCompression) {
  const Message m = announcement();
  std::optional<std::vector<uint8_t>> wire = serialize(m);
  ASSERT_TRUE(wire);
  std::string why;
  std::optional<Message> back = parse_bytes(*wire, &why);
  ASSERT_TRUE(back) << why;
  EXPECT_TRUE(*back == m);
  EXPECT_EQ(back->additionals[1].strings[2].size(), 4u);  // binary TXT bytes survive
  EXPECT_EQ(txt_value(back->additionals[1].strings, "K"), std::string(32, '\x07'));
  EXPECT_EQ(txt_value(back->additionals[1].strings, "missing"), std::nullopt);
  // The instance name (in the PTR, the SRV and the TXT) and "_udp.local" are written once: later names
  // point to them.
  const std::string bytes(wire->begin(), wire->end());
  for (const char* label : {"Alice's laptop. Kitchen", "_udp", "pl1-abcd"}) {
    const size_t first = bytes.find(label);
    ASSERT_NE(first, std::string::npos) << label;
    EXPECT_EQ(bytes.find(label, first + 1), std::string::npos) << label;
  }
}

TEST(DnsMessage, QuestionWithTheQuBitAndRecordsWithCacheFlush) {
  Message q;
  q.questions.push_back(
      Question{name_of("_chat._udp.local"), static_cast<uint16_t>(Type::kPtr), kClassIn, true});
  std::optional<std::vector<uint8_t>> wire = serialize(q);
  ASSERT_TRUE(wire);
  // Header (12) + name (1+5 +1+4 +1+5 +1) + type + class with the top bit.
  ASSERT_EQ(wire->size(), 12u + 18u + 4u);
  EXPECT_EQ((*wire)[wire->size() - 2], 0x80);
  std::optional<Message> back = parse_bytes(*wire);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->questions[0].unicast_response);
  EXPECT_EQ(back->questions[0].klass, kClassIn);
  EXPECT_FALSE(back->response);
}

TEST(DnsMessage, NamesCompareWithoutCaseAndPrintEscaped) {
  EXPECT_TRUE(same_name(name_of("_Chat._UDP.local"), name_of("_chat._udp.LOCAL")));
  EXPECT_FALSE(same_name(name_of("a.local"), name_of("b.local")));
  EXPECT_EQ(to_text({"My. Laptop", "local"}), "My\\. Laptop.local.");
  EXPECT_EQ(to_text({}), ".");
  EXPECT_EQ(name_of("a..b."), (Name{"a", "b"}));
}

// A header with the given counts, then `body`.
std::vector<uint8_t> message(uint16_t qd, uint16_t an, const std::vector<uint8_t>& body) {
  std::vector<uint8_t> m(12 + body.size(), 0);
  m[2] = 0x84;
  m[5] = static_cast<uint8_t>(qd);
  m[7] = static_cast<uint8_t>(an);
  std::copy(body.begin(), body.end(), m.begin() + 12);
  return m;
}

std::string refusal(const std::vector<uint8_t>& bytes) {
  std::string why;
  EXPECT_FALSE(parse_bytes(bytes, &why));
  return why;
}

TEST(DnsMessage, HostileMessagesAreRefusedSayingWhy) {
  // A pointer to itself, and two names pointing at each other: no loop.
  EXPECT_EQ(refusal(message(1, 0, {0xC0, 12, 0, 1, 0, 1})),
            "a compression pointer that does not point backward");
  EXPECT_EQ(refusal(message(2, 0, {1, 'a', 0xC0, 18, 0, 1, 0, 1, 0xC0, 12, 0, 1, 0, 1})),
            "a compression pointer that does not point backward");
  // A pointer forward, past the end, a reserved label type, a truncated label.
  EXPECT_EQ(refusal(message(1, 0, {0xC0, 200, 0, 1, 0, 1})),
            "a compression pointer that does not point backward");
  EXPECT_EQ(refusal(message(1, 0, {0x40, 0, 0, 1, 0, 1})), "a label of a reserved type");
  EXPECT_EQ(refusal(message(1, 0, {5, 'a', 'b'})), "truncated name");
  // A name of more than 255 bytes (five labels of 63).
  std::vector<uint8_t> long_name;
  for (int i = 0; i < 5; ++i) {
    long_name.push_back(63);
    long_name.insert(long_name.end(), 63, 'x');
  }
  long_name.insert(long_name.end(), {0, 0, 1, 0, 1});
  EXPECT_EQ(refusal(message(1, 0, long_name)), "a name longer than 255 bytes");
  // Counts that claim more than the message holds, or more than mDNS allows.
  EXPECT_EQ(refusal(message(3, 0, {0, 0, 1, 0, 1})), "truncated name");
  std::vector<uint8_t> many = message(0, 0, {});
  many[4] = 0x01;  // 256 questions + 1 answer
  many[7] = 1;
  EXPECT_EQ(refusal(many), "more questions and records than an mDNS message holds");
  // An A record of 3 bytes; RDATA longer than the message; a PTR whose name ends before its RDATA.
  EXPECT_EQ(refusal(message(0, 1, {0, 0, 1, 0, 1, 0, 0, 0, 120, 0, 3, 1, 2, 3})),
            "an address record of the wrong length");
  EXPECT_EQ(refusal(message(0, 1, {0, 0, 1, 0, 1, 0, 0, 0, 120, 0, 9, 1, 2, 3, 4})), "truncated RDATA");
  EXPECT_EQ(refusal(message(0, 1, {0, 0, 12, 0, 1, 0, 0, 0, 120, 0, 2, 1, 'a'})), "truncated name");
  EXPECT_EQ(refusal(message(0, 1, {0, 0, 12, 0, 1, 0, 0, 0, 120, 0, 4, 1, 'a', 0, 0})),
            "RDATA whose length does not match its content");
  // A TXT string running past its record; an empty TXT; bytes after the last record; a giant message.
  EXPECT_EQ(refusal(message(0, 1, {0, 0, 16, 0, 1, 0, 0, 0, 120, 0, 2, 5, 'a', 0, 0, 0})),
            "a TXT string past its record");
  EXPECT_EQ(refusal(message(0, 1, {0, 0, 16, 0, 1, 0, 0, 0, 120, 0, 0})), "a TXT record without strings");
  EXPECT_EQ(refusal(message(0, 0, {0})), "bytes after the last record");
  EXPECT_EQ(refusal(std::vector<uint8_t>(kMaxMessage + 1, 0)), "larger than the largest mDNS message");
  EXPECT_EQ(refusal({0, 0, 0}), "truncated");
}

TEST(DnsMessage, WhatCannotBeWrittenIsRefused) {
  Message m = announcement();
  m.answers[0].target[0] = std::string(64, 'x');  // a label over 63 bytes
  EXPECT_FALSE(serialize(m));
  m = announcement();
  m.answers[0].name.insert(m.answers[0].name.begin(), std::string());  // an empty label
  EXPECT_FALSE(serialize(m));
  m = announcement();
  m.additionals[1].strings.push_back(std::string(256, 'x'));  // a TXT string over 255 bytes
  EXPECT_FALSE(serialize(m));
  m = announcement();
  Record big = record("big.local", Type::kNsec);
  big.raw.assign(4000, 1);
  m.additionals.insert(m.additionals.end(), {big, big, big});  // over 9000 bytes
  EXPECT_FALSE(serialize(m));
  Message q;
  q.questions.resize(kMaxEntries + 1, Question{name_of("a.local"), 1, kClassIn, false});
  EXPECT_FALSE(serialize(q));
}

TEST(DnsMessage, UnknownTypesAndAnEmptyTxtReadBackWhole) {
  Message m;
  m.response = true;
  Record nsec = record("pl1-abcd.local", Type::kNsec);
  nsec.raw = {0xC0, 0x0C, 0, 4, 0x40, 0, 0, 8};
  Record txt = record("pl1-abcd.local", Type::kTxt);  // no strings: written as one empty string
  m.answers = {nsec, txt};
  std::optional<std::vector<uint8_t>> wire = serialize(m);
  ASSERT_TRUE(wire);
  std::optional<Message> back = parse_bytes(*wire);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->answers[0].raw, nsec.raw);
  EXPECT_EQ(back->answers[1].strings, std::vector<std::string>{""});
}

}  // namespace
}  // namespace peerlink::lan::dns
