// The XMPP plugin's codecs: JIDs, base64, stanzas in and out, entity caps, XEP-0215, dates.
#include <gtest/gtest.h>
#include <strophe.h>

#include <memory>

#include "base64.hpp"
#include "jid.hpp"
#include "stanza_codec.hpp"

namespace peerlink::xmpp {
namespace {

struct Context {
  Context() {
    xmpp_initialize();
    ctx = xmpp_ctx_new(nullptr, nullptr);
  }
  ~Context() { xmpp_ctx_free(ctx); }
  xmpp_ctx_t* ctx;
};

struct Stanza {
  Stanza(Context& c, const std::string& xml) : s(xmpp_stanza_new_from_string(c.ctx, xml.c_str())) {}
  ~Stanza() {
    if (s) xmpp_stanza_release(s);
  }
  xmpp_stanza_t* s;
};

TEST(XmppJid, ParsesAndNormalisesParts) {
  auto j = Jid::parse("Alice@Example.ORG/Laptop");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->local, "alice");
  EXPECT_EQ(j->domain, "example.org");
  EXPECT_EQ(j->resource, "Laptop");  // resources are case-sensitive
  EXPECT_EQ(j->bare(), "alice@example.org");
  EXPECT_EQ(j->full(), "alice@example.org/Laptop");
  EXPECT_EQ(Jid::parse("example.org")->bare(), "example.org");
  EXPECT_EQ(Jid::parse("a@example.org./r/with/slashes")->resource, "r/with/slashes");
  EXPECT_EQ(Jid::parse("a@example.org.")->domain, "example.org");
}

TEST(XmppJid, RefusesMalformedWithAReason) {
  for (const char* bad : {"", "@example.org", "a@", "a@b/", "a b@example.org", "a@exa mple.org", "a@b@c",
                          "a\x01@example.org", "a@.", "x'@example.org", "..", "a@b..c", "a@.b", "a@b../r"}) {
    std::string why;
    EXPECT_FALSE(Jid::parse(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  EXPECT_FALSE(Jid::parse(std::string(1024, 'a') + "@example.org"));
  EXPECT_TRUE(Jid::parse(std::string(1023, 'a') + "@example.org"));
}

TEST(XmppBase64, RoundTripsEverySizeAndRefusesNonCanonicalText) {
  for (size_t n = 0; n < 40; ++n) {
    std::vector<uint8_t> data(n);
    for (size_t i = 0; i < n; ++i)
      data[i] = static_cast<uint8_t>(i * 37 + n);
    std::optional<std::vector<uint8_t>> back = base64_decode(base64_encode(data.data(), n));
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(*back, data);
  }
  EXPECT_EQ(base64_encode(reinterpret_cast<const uint8_t*>("foobar"), 6), "Zm9vYmFy");  // RFC 4648 §10
  EXPECT_EQ(base64_encode(reinterpret_cast<const uint8_t*>("fo"), 2), "Zm8=");
  for (const char* bad :
       {"Zm9", "Zm9v YmFy", "Zm8", "Zm9=", "Zm==Zm8=", "Zg=a", "Zh==", "Zm9\n", "====", "Z==="})
    EXPECT_FALSE(base64_decode(bad)) << bad;
}

TEST(XmppStanza, SignalRoundTripsThroughTheParser) {
  Context c;
  const uint8_t blob[] = {0, 1, 2, 250, 251, 252, 7};
  const std::string xml = signal_iq("bob@example.org/game", "pl1s5", blob, sizeof blob);
  Stanza s(c, xml);
  ASSERT_TRUE(s.s);
  EXPECT_STREQ(xmpp_stanza_get_type(s.s), "set");
  EXPECT_STREQ(xmpp_stanza_get_to(s.s), "bob@example.org/game");
  std::vector<uint8_t> out;
  ASSERT_EQ(decode_signal(s.s, 1200, out), SignalDecode::kOk);
  EXPECT_EQ(out, std::vector<uint8_t>(blob, blob + sizeof blob));
}

TEST(XmppStanza, HostileSignalPayloadsAreRefusedWithTheReason) {
  Context c;
  auto decode = [&](const std::string& payload) {
    Stanza s(c, "<iq type='set' id='x'>" + payload + "</iq>");
    std::vector<uint8_t> out;
    return s.s ? decode_signal(s.s, 1200, out) : SignalDecode::kNotSignal;
  };
  const std::string ns = kSignalNs;
  EXPECT_EQ(decode("<signal xmlns='" + ns + "'>!!!!</signal>"), SignalDecode::kBadBase64);
  EXPECT_EQ(decode("<signal xmlns='" + ns + "'></signal>"), SignalDecode::kEmpty);
  EXPECT_EQ(decode("<signal xmlns='" + ns + "'>" + std::string(1604, 'A') + "</signal>"),
            SignalDecode::kTooLarge);
  EXPECT_EQ(decode("<signal xmlns='" + ns + "'>" + std::string(1600, 'A') + "</signal>"), SignalDecode::kOk);
  EXPECT_EQ(decode("<signal xmlns='urn:other'>AAAA</signal>"), SignalDecode::kNotSignal);
  EXPECT_EQ(decode("<signal>AAAA</signal>"), SignalDecode::kNotSignal);
  EXPECT_EQ(decode("<signal xmlns='" + ns + "'>AA<x/>AA</signal>"), SignalDecode::kOk);  // text nodes joined
}

TEST(XmppStanza, WrittenStanzasEscapeWhatTheyCarry) {
  Context c;
  const std::string to = "a'b\"<&>@example.org/r";
  Stanza s(c, result_iq(to, "id'1"));
  ASSERT_TRUE(s.s);
  EXPECT_EQ(std::string(xmpp_stanza_get_to(s.s)), to);
  EXPECT_EQ(std::string(xmpp_stanza_get_id(s.s)), "id'1");
}

TEST(XmppStanza, ErrorsPresenceRosterDisco) {
  Context c;
  Stanza e(c, "<iq type='error' id='1'><error type='cancel'><service-unavailable xmlns='" +
                  std::string(kStanzaErrorNs) + "'/><text xmlns='" + kStanzaErrorNs +
                  "'>gone</text></error></iq>");
  StanzaError err = parse_stanza_error(e.s);
  EXPECT_EQ(err.type, "cancel");
  EXPECT_EQ(err.condition, "service-unavailable");
  EXPECT_EQ(err.text, "gone");
  Stanza bare_error(c, "<iq type='error' id='1'/>");
  EXPECT_EQ(parse_stanza_error(bare_error.s).condition, "undefined-condition");

  Stanza p(c, "<presence><priority>300</priority><c xmlns='" + std::string(kCapsNs) +
                  "' hash='sha-1' node='n' ver='v='/></presence>");
  PresenceInfo pi = parse_presence(p.s);
  EXPECT_EQ(pi.kind, PresenceInfo::kAvailable);
  EXPECT_EQ(pi.priority, 127);
  EXPECT_EQ(pi.caps_ver, "v=");
  Stanza u(c, "<presence type='unavailable'><priority>x</priority></presence>");
  EXPECT_EQ(parse_presence(u.s).kind, PresenceInfo::kUnavailable);
  EXPECT_EQ(parse_presence(u.s).priority, 0);

  Stanza r(c,
           "<iq type='result'><query xmlns='jabber:iq:roster'><item jid='b@x' subscription='both'/><item/>"
           "<item jid='c@x'/></query></iq>");
  auto items = parse_roster(r.s);
  ASSERT_TRUE(items);
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[1].subscription, "none");

  Stanza d(c, disco_info_result_iq("a@b/c", "1", ""));
  std::optional<DiscoInfo> info = parse_disco_info(d.s);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->has_feature(kSignalNs));
  EXPECT_EQ(caps_ver(*info), our_caps_ver());
}

// XEP-0115 §5.2's worked example.
TEST(XmppCaps, VerificationStringOfTheXepExample) {
  DiscoInfo info;
  info.identities.push_back({"client", "pc", "", "Exodus 0.9.1"});
  info.features = {"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
                   "http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps"};
  EXPECT_EQ(caps_ver(info), "QgayPKawpkPSDYmwT/WM94uAlu0=");
}

TEST(XmppExternalServices, ParsesProsodysAnswerAndSkipsBrokenEntries) {
  Context c;
  Stanza s(c,
           "<iq type='result'><services xmlns='urn:xmpp:extdisco:2'>"
           "<service host='127.0.0.1' port='3478' transport='udp' type='stun'/>"
           "<service host='127.0.0.1' port='3478' transport='udp' username='1796406268' type='turn' "
           "restricted='1' "
           "expires='2026-12-04T17:44:28Z' password='1cOAPm/63Ks23BSMtCE53SyPEhc='/>"
           "<service host='h' port='99999' type='turn'/><service type='turn'/><service host='x'/>"
           "</services></iq>");
  auto list = parse_services(s.s);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].type, "stun");
  EXPECT_EQ((*list)[1].username, "1796406268");
  EXPECT_TRUE((*list)[1].restricted);
  ASSERT_TRUE((*list)[1].expires);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>((*list)[1].expires->time_since_epoch()).count(),
            1796406268);
  Stanza none(c, "<iq type='result'/>");
  EXPECT_FALSE(parse_services(none.s));
}

TEST(XmppDateTime, Xep0082FormsAndGarbage) {
  auto secs = [](std::string_view t) {
    auto v = parse_xmpp_datetime(t);
    return v ? std::chrono::duration_cast<std::chrono::seconds>(v->time_since_epoch()).count() : -1;
  };
  EXPECT_EQ(secs("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(secs("2000-03-01T00:00:00Z"), 951868800);
  EXPECT_EQ(secs("2000-03-01T01:30:00.123+01:30"), 951868800);
  EXPECT_EQ(secs("2000-02-29T23:00:00-01:00"), 951868800);
  for (const char* bad : {"", "2000-03-01", "2000-03-01T00:00:00", "2000-13-01T00:00:00Z",
                          "2000-03-01T00:00:00Zx", "2000-03-01T00:00:00.Z", "20x0-03-01T00:00:00Z",
                          "2000-03-01T00:00:00+0100", "7558-12-04T17:44:28Z", "1969-12-31T23:59:59Z"})
    EXPECT_EQ(secs(bad), -1) << bad;
}

}  // namespace
}  // namespace peerlink::xmpp
