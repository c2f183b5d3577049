// `peerlink netcheck` as a user meets it, run in the NAT lab (namespaces: never the machine's own network):
// behind each NAT type it names the mapping and filtering behaviour the lab's nftables rules implement,
// found by the RFC 5780 tests against a coturn with two addresses; it says "UDP blocked" (exit 0) where UDP
// does not get out; it reaches and uses the lab's TURN servers, static and REST credentials; it reports an
// XMPP server's XEP-0215 services and tests them; and hostile command lines get plain words and the
// documented exit statuses (2 bad usage, 1 nothing could be tested).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "netlab/lab.hpp"
#include "netlab/netns.hpp"
#include "xmpp/prosody.hpp"

namespace peerlink::test {
namespace {

using namespace std::chrono_literals;
using netlab::Lab;
using netlab::NatType;

netlab::CommandResult netcheck(std::vector<std::string> args, const std::string& ns = "") {
  args.insert(args.begin(), {PEERLINK_CLI, "netcheck"});
  return netlab::run_command(args, ns, "", 40s);
}

// The value of "key" in the tool's JSON: a string without its quotes, or the literal (true, null, ...).
std::string json_value(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  const size_t at = json.find(k);
  if (at == std::string::npos) return "<no " + key + ">";
  const size_t v = at + k.size();
  if (json[v] == '"') return json.substr(v + 1, json.find('"', v + 1) - v - 1);
  return json.substr(v, json.find_first_of(",}]", v) - v);
}

// The lab, plus a coturn with two addresses on its internet (203.0.113.5 and .6, ports 3478 and 3479), which
// does RFC 5780: OTHER-ADDRESS and CHANGE-REQUEST.
struct NatLab {
  Lab lab;  // first: destroyed last
  std::unique_ptr<netlab::TurnServer> rfc5780;

  explicit NatLab(bool lab_turn = false) : lab(options(lab_turn)) {
    netlab::TurnServerConfig c;
    c.netns = lab.internet_ns();
    c.listen_ip = lab.internet_host_ip(0);
    c.alt_listen_ip = lab.internet_host_ip(1);
    c.realm = lab.turn_realm();
    c.user = lab.turn_credentials().username;
    c.password = lab.turn_credentials().password;
    c.work_dir = lab.work_dir();
    c.name = "turn-rfc5780";
    rfc5780 = std::make_unique<netlab::TurnServer>(c);
    rfc5780->start();
  }
  static netlab::LabOptions options(bool lab_turn) {
    netlab::LabOptions o;
    o.start_turn = lab_turn;
    return o;
  }
  std::string stun() const { return rfc5780->address().str(); }
};

#define NETCHECK_REQUIRE_LAB()                                     \
  do {                                                             \
    std::string why_;                                              \
    if (!netlab::have_root_and_tools(&why_)) GTEST_SKIP() << why_; \
  } while (0)

TEST(NetcheckCli, HelpAndHostileCommandLines_PlainWordsAndTheDocumentedExitStatus) {
  const netlab::CommandResult help = netcheck({"--help"});
  EXPECT_EQ(help.status, 0) << help.output;
  EXPECT_EQ(help.output.rfind("usage: peerlink netcheck", 0), 0u) << help.output;
  const netlab::CommandResult top = netlab::run_command({PEERLINK_CLI, "--help"}, "", "", 20s);
  EXPECT_NE(top.output.find("netcheck"), std::string::npos) << top.output;
  struct Case {
    std::vector<std::string> args;
    int status;
    const char* says;
  };
  for (const Case& c : {
           Case{{"--bogus"}, 2, "unknown option for netcheck: --bogus"},
           Case{{"--stun"}, 2, "--stun wants a value"},
           Case{{"--stun", "203.0.113.5:0"}, 2, "--stun wants HOST:PORT"},
           Case{{"--stun", "203.0.113.5:65536"}, 2, "--stun wants HOST:PORT"},
           Case{{"--stun", "203.0.113.5:stun"}, 2, "--stun wants HOST:PORT"},
           Case{{"--stun", ":3478"}, 2, "--stun wants HOST:PORT"},
           Case{{"--stun", "a host:3478"}, 2, "--stun wants HOST:PORT"},
           Case{{"--stun", "[::1"}, 2, "--stun wants HOST:PORT"},
           Case{{"--turn", "203.0.113.1:"}, 2, "--turn wants HOST:PORT"},
           Case{{"--stun", "203.0.113.5", "--timeout", "soon"}, 2, "--timeout wants a number of seconds"},
           Case{{"--stun", "203.0.113.5", "--timeout", "0"}, 2, "--timeout wants a number of seconds"},
           Case{{"--stun", "203.0.113.5", "--turn-user", "u"}, 2, "--turn-user wants --turn-password"},
           Case{{"--turn", "203.0.113.1", "--turn-password", "p"}, 2, "--turn-password wants --turn-user"},
           Case{{"--turn", "203.0.113.1", "--turn-user", "u", "--turn-password", "p", "--turn-secret", "s"},
                2,
                "not both"},
           Case{{"--stun", "203.0.113.5", "--turn-secret", "s"}, 2, "TURN credentials given without --turn"},
           Case{{"--xmpp", "alice@example.org"}, 2, "--xmpp wants --password-file"},
           Case{{"--stun", "203.0.113.5", "--password-file", "/dev/null"}, 2, "go with --xmpp"},
           Case{{"--xmpp", "no-domain", "--password-file", "/dev/null"}, 2, "--xmpp: "},
           Case{{"--stun", "203.0.113.5", "--interface", "a", "--interface", "b"},
                2,
                "--interface is given twice"},
           Case{{}, 1, "nothing to test: give a STUN server"},
           Case{{"--json"}, 1, "nothing to test"},
           Case{{"--stun", "203.0.113.5", "--interface", "no-such-if0"}, 1, "no interface 'no-such-if0'"},
       }) {
    const netlab::CommandResult r = netcheck(c.args);
    EXPECT_EQ(r.status, c.status) << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << r.output;
  }
}

// A name that does not resolve, asked in a namespace of its own with nothing but a loopback that is down:
// the resolver's query cannot leave (ENETUNREACH at once), so no packet goes anywhere.
TEST(NetcheckCli, NamesThatDoNotResolve_Exit1SayingSo_OthersAreStillTested) {
  NETCHECK_REQUIRE_LAB();
  const std::string ns = "plnl" + std::to_string(getpid()) + "nodns";
  netlab::run_checked({"ip", "netns", "add", ns});
  struct Remove {
    std::string ns;
    ~Remove() { netlab::run_command({"ip", "netns", "delete", ns}); }
  } remove{ns};
  const auto t0 = std::chrono::steady_clock::now();
  const netlab::CommandResult r =
      netcheck({"--stun", "no-such-host.invalid:3478", "--turn", "neither.invalid", "--timeout", "2"}, ns);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("nothing could be tested"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("STUN no-such-host.invalid:3478: does not resolve"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("TURN neither.invalid:3478: does not resolve"), std::string::npos) << r.output;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  // One name that does not resolve among addresses that do: the others are tested, exit 0. (Nothing
  // answers here either: UDP cannot leave this namespace, which is a finding.)
  const netlab::CommandResult mixed =
      netcheck({"--stun", "no-such-host.invalid", "--stun", "127.0.0.1:9", "--timeout", "2", "--json"}, ns);
  EXPECT_EQ(mixed.status, 0) << mixed.output;
  EXPECT_NE(mixed.output.find("does not resolve"), std::string::npos) << mixed.output;
  EXPECT_EQ(json_value(mixed.output, "udp"), "false") << mixed.output;
}

TEST(NetcheckLab, FullCone_MappingAndFilteringEndpointIndependent) {
  NETCHECK_REQUIRE_LAB();
  NatLab n;
  const netlab::Site site = n.lab.add_site(NatType::kFullCone);
  const netlab::CommandResult json = netcheck({"--stun", n.stun(), "--json"}, site.peer_ns(0));
  ASSERT_EQ(json.status, 0) << json.output;
  EXPECT_EQ(json_value(json.output, "udp"), "true") << json.output;
  EXPECT_EQ(json_value(json.output, "mapping"), "endpoint-independent") << json.output;
  EXPECT_EQ(json_value(json.output, "filtering"), "endpoint-independent") << json.output;
  EXPECT_EQ(json_value(json.output, "rfc5780"), "true") << json.output;
  EXPECT_EQ(json_value(json.output, "other_address"), n.lab.internet_host_ip(1) + ":3479") << json.output;
  EXPECT_EQ(json_value(json.output, "mapped").rfind(site.wan_ip() + ":", 0), 0u) << json.output;
  EXPECT_NE(json.output.find("{\"interface\":\"eth0\",\"address\":\"" + site.peer_ip(0) + "\"}"),
            std::string::npos)
      << json.output;
  const netlab::CommandResult text = netcheck({"--stun", n.stun()}, site.peer_ns(0));
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("NAT mapping: endpoint-independent"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("NAT filtering: endpoint-independent"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("UDP: works"), std::string::npos) << text.output;
  std::printf("--- full cone, text:\n%s--- json:\n%s", text.output.c_str(), json.output.c_str());
}

TEST(NetcheckLab, PortRestricted_MappingEndpointIndependent_FilteringAddressAndPortDependent) {
  NETCHECK_REQUIRE_LAB();
  NatLab n;
  const netlab::Site site = n.lab.add_site(NatType::kPortRestricted);
  const netlab::CommandResult json = netcheck({"--stun", n.stun(), "--json"}, site.peer_ns(0));
  ASSERT_EQ(json.status, 0) << json.output;
  EXPECT_EQ(json_value(json.output, "mapping"), "endpoint-independent") << json.output;
  EXPECT_EQ(json_value(json.output, "filtering"), "address-and-port-dependent") << json.output;
  const netlab::CommandResult text = netcheck({"--stun", n.stun()}, site.peer_ns(0));
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("NAT filtering: address-and-port-dependent"), std::string::npos) << text.output;
  std::printf("--- port-restricted, text:\n%s--- json:\n%s", text.output.c_str(), json.output.c_str());
}

TEST(NetcheckLab, Symmetric_MappingAddressAndPortDependent_AlsoSeenAcrossTwoPlainServers) {
  NETCHECK_REQUIRE_LAB();
  NatLab n(/*lab_turn=*/true);
  const netlab::Site site = n.lab.add_site(NatType::kSymmetric);
  const netlab::CommandResult json = netcheck({"--stun", n.stun(), "--json"}, site.peer_ns(0));
  ASSERT_EQ(json.status, 0) << json.output;
  EXPECT_EQ(json_value(json.output, "mapping"), "address-and-port-dependent") << json.output;
  EXPECT_EQ(json_value(json.output, "filtering"), "address-and-port-dependent") << json.output;
  const netlab::CommandResult text = netcheck({"--stun", n.stun()}, site.peer_ns(0));
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("NAT mapping: address-and-port-dependent"), std::string::npos) << text.output;
  // Without RFC 5780 (the lab's two coturns have one address each), two servers see two ports.
  const netlab::CommandResult plain =
      netcheck({"--stun", n.lab.turn_server().str(), "--stun", n.lab.turn_rest_server().str(), "--json"},
               site.peer_ns(0));
  ASSERT_EQ(plain.status, 0) << plain.output;
  EXPECT_EQ(json_value(plain.output, "mapping"), "unknown") << plain.output;
  EXPECT_EQ(json_value(plain.output, "mapping_varies_by_destination"), "true") << plain.output;
  EXPECT_EQ(json_value(plain.output, "rfc5780"), "false") << plain.output;
  std::printf("--- symmetric, text:\n%s--- json:\n%s--- two plain servers:\n%s", text.output.c_str(),
              json.output.c_str(), plain.output.c_str());
}

TEST(NetcheckLab, NoNat_MappingNone_OnlyTheNamedInterface) {
  NETCHECK_REQUIRE_LAB();
  NatLab n;
  const netlab::Site site = n.lab.add_site(NatType::kNone);
  const netlab::CommandResult json =
      netcheck({"--stun", n.stun(), "--interface", "eth0", "--json"}, site.peer_ns(0));
  ASSERT_EQ(json.status, 0) << json.output;
  EXPECT_EQ(json_value(json.output, "mapping"), "none") << json.output;
  EXPECT_EQ(json_value(json.output, "filtering"), "endpoint-independent") << json.output;
  EXPECT_EQ(json_value(json.output, "mapped").rfind(site.peer_ip(0) + ":", 0), 0u) << json.output;
  EXPECT_NE(json.output.find("\"local_addresses\":[{\"interface\":\"eth0\",\"address\":\"" + site.peer_ip(0) +
                             "\"}],"),
            std::string::npos)
      << json.output;  // eth0 alone: no lo
  const netlab::CommandResult text = netcheck({"--stun", n.stun(), "--interface", "eth0"}, site.peer_ns(0));
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("NAT mapping: no NAT"), std::string::npos) << text.output;
  std::printf("--- no NAT, text:\n%s--- json:\n%s", text.output.c_str(), json.output.c_str());
}

TEST(NetcheckLab, PortRestrictedAcrossTwoPlainServers_SameMappingIsEndpointIndependent) {
  NETCHECK_REQUIRE_LAB();
  Lab lab;
  const netlab::Site site = lab.add_site(NatType::kPortRestricted);
  const netlab::CommandResult text =
      netcheck({"--stun", lab.turn_server().str(), "--stun", lab.turn_rest_server().str()}, site.peer_ns(0));
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("NAT mapping: endpoint-independent (compared across 2 STUN servers"),
            std::string::npos)
      << text.output;
  EXPECT_NE(text.output.find("NAT filtering: unknown"), std::string::npos) << text.output;
}

TEST(NetcheckLab, UdpBlocked_SaysSoAndExits0) {
  NETCHECK_REQUIRE_LAB();
  NatLab n(/*lab_turn=*/true);
  const netlab::Site site = n.lab.add_site(NatType::kUdpBlocked);
  const auto t0 = std::chrono::steady_clock::now();
  const netlab::CommandResult text =
      netcheck({"--stun", n.stun(), "--turn", n.lab.turn_server().str(), "--timeout", "3"}, site.peer_ns(0));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("UDP blocked"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("no answer"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("not reachable"), std::string::npos) << text.output;
  const netlab::CommandResult json =
      netcheck({"--stun", n.stun(), "--json", "--timeout", "3"}, site.peer_ns(0));
  ASSERT_EQ(json.status, 0) << json.output;
  EXPECT_EQ(json_value(json.output, "udp"), "false") << json.output;
  EXPECT_EQ(json_value(json.output, "mapping"), "unknown") << json.output;
  EXPECT_EQ(json_value(json.output, "mapped"), "null") << json.output;
  std::printf("--- udp-blocked, text:\n%s--- json:\n%s", text.output.c_str(), json.output.c_str());
}

TEST(NetcheckLab, Turn_ReachableWithoutCredentials_AllocatesAndFreesWithThem_StaticAndRest) {
  NETCHECK_REQUIRE_LAB();
  Lab lab;
  const netlab::Site site = lab.add_site(NatType::kPortRestricted);
  const std::string turn = lab.turn_server().str(), rest = lab.turn_rest_server().str();
  // No credentials: the 401 challenge is the answer.
  const netlab::CommandResult bare = netcheck({"--turn", turn, "--json"}, site.peer_ns(0));
  ASSERT_EQ(bare.status, 0) << bare.output;
  EXPECT_EQ(json_value(bare.output, "reachable"), "true") << bare.output;
  EXPECT_EQ(json_value(bare.output, "realm"), lab.turn_realm()) << bare.output;
  EXPECT_EQ(json_value(bare.output, "authenticated"), "false") << bare.output;
  EXPECT_EQ(json_value(bare.output, "udp"), "true") << bare.output;
  // Long-term credentials: a relay on the server's address, freed again.
  const netlab::CommandResult stat = netcheck({"--turn", turn, "--turn-user", lab.turn_credentials().username,
                                               "--turn-password", lab.turn_credentials().password, "--json"},
                                              site.peer_ns(0));
  ASSERT_EQ(stat.status, 0) << stat.output;
  EXPECT_EQ(json_value(stat.output, "reachable"), "true") << stat.output;
  EXPECT_EQ(json_value(stat.output, "authenticated"), "true") << stat.output;
  EXPECT_EQ(json_value(stat.output, "integrity"), "true") << stat.output;
  EXPECT_EQ(json_value(stat.output, "relayed").rfind(lab.turn_server().ip + ":", 0), 0u) << stat.output;
  const std::string turn_part = stat.output.substr(stat.output.find("\"turn\":["));
  EXPECT_EQ(json_value(turn_part, "mapped").rfind(site.wan_ip() + ":", 0), 0u) << stat.output;
  EXPECT_EQ(json_value(stat.output, "mapped"), json_value(turn_part, "mapped")) << stat.output;  // no STUN
  EXPECT_EQ(json_value(stat.output, "freed"), "true") << stat.output;
  // Wrong password: reachable, and the refusal in plain words.
  const netlab::CommandResult wrong =
      netcheck({"--turn", turn, "--turn-user", lab.turn_credentials().username, "--turn-password", "nope"},
               site.peer_ns(0));
  ASSERT_EQ(wrong.status, 0) << wrong.output;
  EXPECT_NE(wrong.output.find("reachable"), std::string::npos) << wrong.output;
  EXPECT_NE(wrong.output.find("the credentials were refused (401"), std::string::npos) << wrong.output;
  // The REST scheme's shared secret.
  const netlab::CommandResult by_secret =
      netcheck({"--turn", rest, "--turn-secret", lab.turn_secret()}, site.peer_ns(0));
  ASSERT_EQ(by_secret.status, 0) << by_secret.output;
  EXPECT_NE(by_secret.output.find("relay " + lab.turn_rest_server().ip + ":"), std::string::npos)
      << by_secret.output;
  EXPECT_NE(by_secret.output.find(":netcheck and freed"), std::string::npos) << by_secret.output;
  std::printf("--- TURN, static credentials:\n%s--- REST secret:\n%s", stat.output.c_str(),
              by_secret.output.c_str());
}

TEST(NetcheckLab, Xmpp_ReportsTheOfferedServicesAndTestsThem) {
  NETCHECK_REQUIRE_LAB();
  std::string why;
  if (!have_prosody(&why)) GTEST_SKIP() << why;
  Lab lab;
  const netlab::Site site = lab.add_site(NatType::kPortRestricted);
  ProsodyOptions po;
  po.netns = lab.internet_ns();
  po.ip = lab.internet_host_ip(2);
  po.turn_host = lab.turn_rest_server().ip;
  po.turn_port = lab.turn_rest_server().port;
  po.turn_secret = lab.turn_secret();
  ProsodyServer server(po);
  server.start();
  const std::string password_file = lab.work_dir() + "/alice-password";
  std::ofstream(password_file) << ProsodyServer::password("alice") << "\n";
  const std::vector<std::string> login = {"--xmpp",          server.jid("alice"),
                                          "--password-file", password_file,
                                          "--server",        po.ip + ":" + std::to_string(server.port()),
                                          "--ca-file",       server.ca_file()};
  std::vector<std::string> args = login;
  args.push_back("--json");
  const netlab::CommandResult json = netcheck(args, site.peer_ns(0));
  ASSERT_EQ(json.status, 0) << json.output;
  EXPECT_EQ(json_value(json.output, "online"), "true") << json.output;
  EXPECT_EQ(json_value(json.output, "offered"), "true") << json.output;
  EXPECT_NE(json.output.find("\"from\":\"xmpp\""), std::string::npos) << json.output;
  EXPECT_EQ(json_value(json.output, "authenticated"), "true") << json.output;  // the offered credentials
  EXPECT_EQ(json_value(json.output, "freed"), "true") << json.output;
  EXPECT_EQ(json_value(json.output, "mapped").rfind(site.wan_ip() + ":", 0), 0u) << json.output;
  const netlab::CommandResult text = netcheck(login, site.peer_ns(0));
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("online; offers 1 STUN and 1 TURN server(s)"), std::string::npos) << text.output;
  // A wrong password, and nothing else to test: exit 1, saying why.
  std::ofstream(password_file) << "wrong\n";
  std::vector<std::string> wrong = login;
  wrong.insert(wrong.end(), {"--timeout", "3"});
  const netlab::CommandResult refused = netcheck(wrong, site.peer_ns(0));
  EXPECT_EQ(refused.status, 1) << refused.output;
  EXPECT_NE(refused.output.find("nothing could be tested"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("failed"), std::string::npos) << refused.output;
  std::printf("--- XMPP, text:\n%s--- json:\n%s--- wrong password:\n%s", text.output.c_str(),
              json.output.c_str(), refused.output.c_str());
}

}  // namespace
}  // namespace peerlink::test
