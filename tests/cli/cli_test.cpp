// The `peerlink` tool as a user meets it: --help everywhere, plain-words errors with the documented exit
// statuses (0 done, 1 failed, 2 bad usage), `id` creating then showing one identity, and `discover` listing
// a peer on a LAN of the lab (namespaces: never the machine's own network).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

#include "lan/lan_lab.hpp"
#include "netlab/netns.hpp"
#include "temp_dir.hpp"

namespace peerlink::test {
namespace {

using namespace std::chrono_literals;

netlab::CommandResult peerlink(std::vector<std::string> args, const std::string& ns = "") {
  args.insert(args.begin(), PEERLINK_CLI);
  return netlab::run_command(args, ns, "", 20s);
}

TEST(PeerlinkCli, HelpEverywhere_BadUsageIsExit2WithTheReason) {
  for (const std::vector<std::string>& help :
       {std::vector<std::string>{"--help"}, {"help"}, {"id", "--help"}, {"discover", "--help"}}) {
    const netlab::CommandResult r = peerlink(help);
    EXPECT_EQ(r.status, 0) << help[0] << ": " << r.output;
    EXPECT_NE(r.output.find("usage: peerlink"), std::string::npos) << r.output;
  }
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  for (const Case& c : {Case{{}, "no command given"}, Case{{"frobnicate"}, "unknown command 'frobnicate'"},
                        Case{{"id", "--bogus"}, "unknown option for id: --bogus"},
                        Case{{"id", "--file"}, "--file wants a path"},
                        Case{{"discover", "--timeout", "soon"}, "--timeout wants a number of seconds"},
                        Case{{"discover", "--timeout", "-1"}, "--timeout wants a number of seconds"},
                        Case{{"discover", "--responder", "bonjour"}, "--responder wants auto, own or avahi"},
                        Case{{"discover", "--service", "has space"}, "service 'has space' is not"},
                        Case{{"discover", "--interface"}, "--interface wants a value"}}) {
    const netlab::CommandResult r = peerlink(c.args);
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << r.output;
  }
}

TEST(PeerlinkCli, IdCreatesOnceThenShowsTheSame_UnusableFilesFailWithTheReason) {
  TempDir dir;
  const std::string file = dir.path + "/config/peerlink/identity.key";
  const netlab::CommandResult first = peerlink({"id", "--file", file, "--json"});
  ASSERT_EQ(first.status, 0) << first.output;
  EXPECT_NE(first.output.find("\"created\":true"), std::string::npos) << first.output;
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const size_t at = first.output.find("pl1-");
  ASSERT_NE(at, std::string::npos);
  const std::string fingerprint = first.output.substr(at, first.output.find('"', at) - at);
  const netlab::CommandResult again = peerlink({"id", "--file", file});
  EXPECT_EQ(again.status, 0) << again.output;
  EXPECT_NE(again.output.find(fingerprint + "\n"), std::string::npos) << again.output;  // the same identity
  EXPECT_NE(again.output.find("identity in " + file), std::string::npos) << again.output;
  // The environment names the default file.
  const std::string env_file = dir.path + "/env.key";
  const netlab::CommandResult by_env =
      netlab::run_command({"env", "PEERLINK_IDENTITY=" + env_file, PEERLINK_CLI, "id"}, "", "", 20s);
  EXPECT_EQ(by_env.status, 0) << by_env.output;
  EXPECT_EQ(access(env_file.c_str(), F_OK), 0);
  // A file that is no identity, and one that cannot be written: exit 1, naming the file.
  const std::string junk = dir.path + "/junk.key";
  std::ofstream(junk) << "not a key\n";
  chmod(junk.c_str(), 0600);
  const netlab::CommandResult bad = peerlink({"id", "--file", junk});
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_NE(bad.output.find(junk), std::string::npos) << bad.output;
  const netlab::CommandResult unwritable = peerlink({"id", "--file", "/proc/peerlink-no-such-dir/id.key"});
  EXPECT_EQ(unwritable.status, 1) << unwritable.output;
  EXPECT_NE(unwritable.output.find("/proc/peerlink-no-such-dir/id.key"), std::string::npos)
      << unwritable.output;
}

TEST(PeerlinkCli, DiscoverListsTheLanPeersOfItsService) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string h1 = lab.add_host({lan}), h2 = lab.add_host({lan});
  TempDir dir;
  const pid_t peer = netlab::spawn_in_netns(
      {LAN_BEACON_PEER, "--service", "clitest", "--name", "the-other-one", "--responder", "own"}, h2,
      dir.path + "/peer.log");
  const netlab::CommandResult json =
      peerlink({"discover", "--service", "clitest", "--timeout", "1.5", "--json", "--responder", "own"}, h1);
  EXPECT_EQ(json.status, 0) << json.output;
  EXPECT_NE(json.output.find("\"name\":\"the-other-one\""), std::string::npos) << json.output;
  EXPECT_NE(json.output.find("\"id\":\"lan:pl1-"), std::string::npos) << json.output;
  EXPECT_NE(json.output.find(lab.ipv4(h2) + ":"), std::string::npos) << json.output;
  const netlab::CommandResult text =
      peerlink({"discover", "--service", "clitest", "--timeout", "1", "--responder", "own"}, h1);
  EXPECT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("the-other-one"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("(eth0)"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("1 peer of service 'clitest'"), std::string::npos) << text.output;
  // Another service sees nobody.
  const netlab::CommandResult other =
      peerlink({"discover", "--service", "other", "--timeout", "1", "--responder", "own"}, h1);
  EXPECT_EQ(other.status, 0) << other.output;
  EXPECT_NE(other.output.find("0 peers of service 'other'"), std::string::npos) << other.output;
  netlab::stop_child(peer);
}

}  // namespace
}  // namespace peerlink::test
