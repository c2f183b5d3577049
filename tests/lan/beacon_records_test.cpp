// The LAN beacon's records: what a peer announces reads back whole through the DNS codec, and forged,
// unsigned, altered, re-signed and wrong-network-key records are told apart.
#include "beacon_records.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "peerlink/identity.hpp"

namespace peerlink::lan {
namespace {

struct BeaconRecords : ::testing::Test {
  Identity id = Identity::generate();
  Identity other = Identity::generate();
  dns::Name service = *service_name("peerlink-chat");
  Announcement a;

  void SetUp() override {
    a.key = id.public_key();
    a.display_name = "Alice's laptop";
    a.port = 40123;
    a.serial = 1764800000123;
    a.aliases = {"xmpp:alice@example.org"};
    in_addr v4{};
    inet_pton(AF_INET, "100.64.1.11", &v4);
    in6_addr v6{};
    inet_pton(AF_INET6, "fe80::1", &v6);
    a.ipv4 = {v4};
    a.ipv6 = {v6};
  }

  // Announced, written, read back: what a receiver gets.
  std::vector<Heard> heard(const dns::Message& m, const std::vector<uint8_t>& network_key = {}) {
    std::optional<std::vector<uint8_t>> wire = dns::serialize(m);
    EXPECT_TRUE(wire);
    std::optional<dns::Message> back = dns::parse(wire->data(), wire->size());
    EXPECT_TRUE(back);
    return read_announcements(service, *back, network_key);
  }
  dns::Message announced(const std::vector<uint8_t>& network_key = {}, bool goodbye = false) {
    std::optional<dns::Message> m = announce(service, a, id.private_key(), network_key, goodbye);
    EXPECT_TRUE(m);
    return *m;
  }
  static dns::Record& find(dns::Message& m, dns::Type type) {
    for (dns::Record& r : m.additionals)
      if (r.kind() == type) return r;
    return m.answers.at(0);
  }
};

TEST_F(BeaconRecords, AnnouncementReadsBackWhole) {
  std::vector<Heard> h = heard(announced());
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].verdict, Verdict::kOk);
  EXPECT_FALSE(h[0].goodbye);
  EXPECT_EQ(h[0].instance, "Alice's laptop [" + id.fingerprint().substr(4, 9) + "]");
  const Announcement& b = h[0].announcement;
  EXPECT_EQ(b.key, a.key);
  EXPECT_EQ(b.display_name, a.display_name);
  EXPECT_EQ(b.port, a.port);
  EXPECT_EQ(b.serial, a.serial);
  EXPECT_EQ(b.aliases, a.aliases);
  ASSERT_EQ(b.ipv4.size(), 1u);
  EXPECT_EQ(b.ipv4[0].s_addr, a.ipv4[0].s_addr);
  ASSERT_EQ(b.ipv6.size(), 1u);
  EXPECT_EQ(std::memcmp(&b.ipv6[0], &a.ipv6[0], 16), 0);
  EXPECT_EQ(Identity::fingerprint_of(b.key), id.fingerprint());

  std::vector<Heard> bye = heard(announced({}, true));
  ASSERT_EQ(bye.size(), 1u);
  EXPECT_EQ(bye[0].verdict, Verdict::kOk);
  EXPECT_TRUE(bye[0].goodbye);
}

TEST_F(BeaconRecords, AlteredMovedUnsignedOrResignedRecordsFail) {
  auto verdict = [&](dns::Message m) {
    std::vector<Heard> h = heard(m);
    return h.size() == 1 ? h[0].verdict : Verdict::kMalformed;
  };
  dns::Message m = announced();
  find(m, dns::Type::kSrv).port = 40124;  // another port
  EXPECT_EQ(verdict(m), Verdict::kBadSignature);
  m = announced();
  find(m, dns::Type::kA).address[3] = 99;  // another address
  EXPECT_EQ(verdict(m), Verdict::kBadSignature);
  m = announced();
  m.additionals.push_back(find(m, dns::Type::kA));  // an address added
  m.additionals.back().address[3] = 98;
  EXPECT_EQ(verdict(m), Verdict::kBadSignature);
  m = announced();
  std::vector<std::string>& txt = find(m, dns::Type::kTxt).strings;
  txt.erase(
      std::remove_if(txt.begin(), txt.end(), [](const std::string& x) { return x.rfind("s=", 0) == 0; }),
      txt.end());  // no signature
  EXPECT_EQ(verdict(m), Verdict::kBadSignature);
  m = announced();
  find(m, dns::Type::kTxt).strings[3] = "n=Bob";  // another name
  EXPECT_EQ(verdict(m), Verdict::kBadSignature);
  // A genuine record replayed as a goodbye (every TTL set to 0): the goodbye is signed, this is not.
  m = announced();
  m.answers[0].ttl = 0;
  for (dns::Record& r : m.additionals)
    r.ttl = 0;
  EXPECT_EQ(verdict(m), Verdict::kBadSignature);
  // Someone else's key signing records that name alice's key.
  std::optional<dns::Message> forged = announce(service, a, other.private_key(), {});
  ASSERT_TRUE(forged);
  EXPECT_EQ(verdict(*forged), Verdict::kBadSignature);
  // Alice's signed records with the key swapped for another: the host name no longer matches the key.
  m = announced();
  find(m, dns::Type::kTxt).strings[1] =
      "k=" + std::string(other.public_key().begin(), other.public_key().end());
  EXPECT_EQ(verdict(m), Verdict::kMalformed);
  // Missing records and fields.
  m = announced();
  m.additionals.erase(m.additionals.begin() + 1);  // the TXT
  EXPECT_EQ(verdict(m), Verdict::kMalformed);
  m = announced();
  find(m, dns::Type::kTxt).strings[1] = "k=short";
  EXPECT_EQ(verdict(m), Verdict::kMalformed);
  m = announced();
  find(m, dns::Type::kTxt).strings[2] = "q=12x";
  EXPECT_EQ(verdict(m), Verdict::kMalformed);
}

TEST_F(BeaconRecords, TheVerifiedCacheNeverPassesAChangedRecord) {
  VerifiedCache cache;
  const dns::Message m = announced();
  for (int i = 0; i < 2; ++i) {  // verified, then taken from the cache
    std::vector<Heard> h = read_announcements(service, m, {}, &cache);
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0].verdict, Verdict::kOk);
  }
  EXPECT_EQ(cache.last.size(), 1u);
  dns::Message altered = m;
  find(altered, dns::Type::kSrv).port = 1;  // same signature, other content
  std::vector<Heard> h = read_announcements(service, altered, {}, &cache);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].verdict, Verdict::kBadSignature);
}

TEST_F(BeaconRecords, NetworkKeyLimitsTheGroup) {
  const std::vector<uint8_t> key(32, 0x11), another(32, 0x22);
  auto verdicts = [&](const dns::Message& m, const std::vector<uint8_t>& k) {
    std::vector<Heard> h = heard(m, k);
    return h.size() == 1 ? h[0].verdict : Verdict::kMalformed;
  };
  EXPECT_EQ(verdicts(announced(key), key), Verdict::kOk);
  EXPECT_EQ(verdicts(announced(key), another), Verdict::kWrongNetworkKey);
  EXPECT_EQ(verdicts(announced(key), {}), Verdict::kWrongNetworkKey);  // a closed group's records
  EXPECT_EQ(verdicts(announced(), key), Verdict::kWrongNetworkKey);    // a stranger's
}

TEST_F(BeaconRecords, OtherServicesAndBadFieldsAreNotOurs) {
  EXPECT_TRUE(heard(announced()).size() == 1);
  const dns::Name mine = service;
  service = *service_name("another");
  EXPECT_TRUE(heard(announced()).size() == 1);  // its own
  dns::Message theirs = announced();
  service = mine;
  EXPECT_TRUE(heard(theirs).empty());
  EXPECT_FALSE(service_name(""));
  EXPECT_FALSE(service_name("a-very-long-service-name"));
  EXPECT_FALSE(service_name("bad.name"));
  EXPECT_FALSE(service_name("-x"));
  EXPECT_FALSE(service_name("123"));
  a.display_name = std::string(kMaxDisplayName + 1, 'x');
  EXPECT_FALSE(announce(service, a, id.private_key(), {}));
  SetUp();
  a.aliases.assign(kMaxAliases + 1, "xmpp:x@y");
  EXPECT_FALSE(announce(service, a, id.private_key(), {}));
}

// Version 2, published through a system responder: the TXT strings alone verify, in any order; altered,
// re-signed or wrongly keyed ones do not.
TEST_F(BeaconRecords, PortableTxtVerifiesAloneAndInAnyOrder) {
  a.aliases = {"xmpp:alice@example.org", "myapp:alice"};
  const std::vector<uint8_t> key(32, 7);
  std::vector<std::string> txt = *portable_txt(service, a, id.private_key(), key);
  Heard h = read_portable(service, a.port, txt, key);
  ASSERT_EQ(h.verdict, Verdict::kOk);
  EXPECT_EQ(h.announcement.key, a.key);
  EXPECT_EQ(h.announcement.display_name, a.display_name);
  EXPECT_EQ(h.announcement.serial, a.serial);
  EXPECT_EQ(h.announcement.port, a.port);
  EXPECT_EQ(h.announcement.aliases.size(), 2u);
  std::reverse(txt.begin(), txt.end());  // a responder's string list may come back reversed
  EXPECT_EQ(read_portable(service, a.port, txt, key).verdict, Verdict::kOk);
  EXPECT_EQ(read_portable(service, a.port + 1, txt, key).verdict,
            Verdict::kWrongNetworkKey);  // moved: the MAC fails first
  EXPECT_EQ(read_portable(*service_name("other"), a.port, txt, key).verdict, Verdict::kWrongNetworkKey);
  EXPECT_EQ(read_portable(service, a.port, txt, {}).verdict, Verdict::kWrongNetworkKey);
  EXPECT_EQ(read_portable(service, a.port, txt, std::vector<uint8_t>(32, 8)).verdict,
            Verdict::kWrongNetworkKey);
  for (std::string& str : txt)
    if (str.rfind("n=", 0) == 0) str = "n=Mallory";
  EXPECT_NE(read_portable(service, a.port, txt, key).verdict, Verdict::kOk);
  // Re-signed by another key under alice's: fails.
  Announcement forged = a;
  std::vector<std::string> other_txt = *portable_txt(service, forged, other.private_key(), {});
  EXPECT_EQ(read_portable(service, a.port, other_txt, {}).verdict, Verdict::kBadSignature);
  // Version 1 strings without their version 2 signature are not enough.
  EXPECT_EQ(read_portable(service, a.port, {"v=1"}, {}).verdict, Verdict::kMalformed);
}

// The own responder's (version 1) records carry the version 2 signature and MAC too: a peer reading them
// through a system responder's resolver (TXT strings and the SRV port only) verifies them.
TEST_F(BeaconRecords, OwnRecordsAlsoVerifyAsPortable) {
  const std::vector<uint8_t> key(32, 7);
  for (const std::vector<uint8_t>& network_key : {std::vector<uint8_t>{}, key}) {
    dns::Message m = *announce(service, a, id.private_key(), network_key);
    std::vector<std::string> txt = find(m, dns::Type::kTxt).strings;
    const Heard h = read_portable(service, a.port, txt, network_key);
    ASSERT_EQ(h.verdict, Verdict::kOk) << network_key.size();
    EXPECT_EQ(h.announcement.key, a.key);
    EXPECT_NE(read_portable(service, a.port + 1, txt, network_key).verdict, Verdict::kOk);  // moved
    for (std::string& str : txt)
      if (str.rfind("p=", 0) == 0) str[5] ^= 1;
    EXPECT_NE(read_portable(service, a.port, txt, network_key).verdict, Verdict::kOk);
  }
  // A goodbye carries no version 2 signature (a responder's removal comes from its cache).
  dns::Message bye = *announce(service, a, id.private_key(), {}, true);
  EXPECT_FALSE(dns::txt_value(find(bye, dns::Type::kTxt).strings, "p"));
}

}  // namespace
}  // namespace peerlink::lan
