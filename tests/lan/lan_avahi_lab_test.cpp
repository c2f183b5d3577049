// The LAN beacon through avahi-daemon (LanResponder::kAvahi): on hosts of a LAN in the lab, each running an
// avahi-daemon with a D-Bus system bus of its own, our peers publish through it (avahi-browse lists them),
// find each other through it and connect; and peers with the beacon's own responder, beside avahi-daemon
// on the same host, see them and are seen by them (and connected to) as well.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/host_test_util.hpp"
#include "lan/lan_lab.hpp"
#include "netlab/netns.hpp"
#include "peerlink/lan.hpp"

namespace peerlink::test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool wait_for_text(const std::string& path, const std::string& text, std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (read_file(path).find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// avahi-daemon in namespace `ns` with a D-Bus system bus of its own (a socket in a temporary directory),
// and a mount namespace of its own with an empty /run (avahi keeps its PID file in /run/avahi-daemon, which
// two daemons on one machine would share). Both are stopped by the destructor.
class AvahiHost {
 public:
  AvahiHost(const std::string& ns, const std::string& host_name) {
    char tmpl[] = "/tmp/peerlink-avahi-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    bus_ = "unix:path=" + dir_ + "/bus";
    std::ofstream(dir_ + "/dbus.conf")
        << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
           " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
           "<busconfig><type>system</type><listen>"
        << bus_
        << "</listen><auth>EXTERNAL</auth>\n"
           "<policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/><allow "
           "send_type=\"method_call\"/>"
           "<allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy></busconfig>\n";
    std::ofstream(dir_ + "/avahi.conf")
        << "[server]\nhost-name=" << host_name
        << "\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6=yes\nallow-interfaces=eth0\n"
           "[wide-area]\nenable-wide-area=no\n"
           "[publish]\npublish-hinfo=no\npublish-workstation=no\n";
    dbus_ = netlab::spawn_in_netns(
        {"dbus-daemon", "--config-file=" + dir_ + "/dbus.conf", "--nofork", "--nopidfile"}, ns,
        dir_ + "/dbus.log");
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (access((dir_ + "/bus").c_str(), F_OK) != 0) {
      if (std::chrono::steady_clock::now() > give_up) throw std::runtime_error("dbus-daemon did not start");
      std::this_thread::sleep_for(5ms);
    }
    avahi_ = netlab::spawn_in_netns(
        {"unshare", "--mount", "--propagation", "private", "sh", "-c",
         "mount -t tmpfs tmpfs /run && mkdir /run/avahi-daemon && exec env DBUS_SYSTEM_BUS_ADDRESS=" + bus_ +
             " avahi-daemon -f " + dir_ + "/avahi.conf --no-drop-root --no-chroot --no-rlimits"},
        ns, dir_ + "/avahi.log");
    if (!wait_for_text(dir_ + "/avahi.log", "Server startup complete", 10s))
      throw std::runtime_error("avahi-daemon did not start: " + read_file(dir_ + "/avahi.log"));
  }
  ~AvahiHost() {
    netlab::stop_child(avahi_);
    netlab::stop_child(dbus_);
    netlab::run_command({"rm", "-rf", dir_});
  }
  AvahiHost(const AvahiHost&) = delete;
  AvahiHost& operator=(const AvahiHost&) = delete;

  // argv prefixed so that libavahi-client (and avahi-browse) find this bus.
  std::vector<std::string> with_bus(std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {"env", "DBUS_SYSTEM_BUS_ADDRESS=" + bus_});
    return argv;
  }
  std::string log() const { return read_file(dir_ + "/avahi.log"); }

 private:
  std::string dir_, bus_;
  pid_t dbus_ = -1, avahi_ = -1;
};

// What `avahi-browse` lists through `avahi` in `ns`, asked again until it shows `text` (10 s at most).
std::string browse_until(const AvahiHost& avahi, const std::string& ns, const std::string& text) {
  std::string listing;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (listing.find(text) == std::string::npos && std::chrono::steady_clock::now() < give_up)
    listing = netlab::run_command(
                  avahi.with_bus({"avahi-browse", "--parsable", "--resolve", "--terminate", "_labtest._udp"}),
                  ns, "", 10s)
                  .output;
  return listing;
}

// A lan-beacon-peer through `avahi` in `ns` that connects to the first peer it finds and waits for the
// echo of its message.
netlab::CommandResult connect_through(const AvahiHost& avahi, const std::string& ns,
                                      const std::string& name) {
  return netlab::run_command(avahi.with_bus({LAN_BEACON_PEER, "--service", "labtest", "--name", name,
                                             "--responder", "avahi", "--connect", "--timeout", "15"}),
                             ns, "", 20s);
}

bool have_avahi_tools(std::string* why) {
  for (const char* tool : {"dbus-daemon", "avahi-daemon", "avahi-browse", "unshare"}) {
    if (netlab::find_executable(tool).empty()) {
      *why = std::string("avahi tests need ") + tool +
             " (Debian packages dbus-daemon, avahi-daemon, avahi-utils)";
      return false;
    }
  }
  return true;
}

TEST(LanAvahiLab, PeersThroughAvahiAndOwnResponderPeersFindEachOther_AvahiBrowseListsThem) {
  std::string why;
  if (!can_build_lan_lab(&why) || !have_avahi_tools(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string h1 = lab.add_host({lan}), h2 = lab.add_host({lan});
  AvahiHost avahi1(h1, "alpha-host"), avahi2(h2, "beta-host");
  const std::string log = ::testing::TempDir() + "lan-avahi-peer-" + std::to_string(getpid()) + ".log";

  // alpha publishes through h1's avahi-daemon.
  const pid_t alpha = netlab::spawn_in_netns(
      avahi1.with_bus({LAN_BEACON_PEER, "--service", "labtest", "--name", "alpha", "--responder", "avahi"}),
      h1, log);
  ASSERT_TRUE(wait_for_text(log, " avahi\n", 10s)) << read_file(log);

  // h2's avahi-browse lists it (its avahi-daemon heard h1's on the LAN); --parsable escapes the instance
  // name "alpha [xxxx-xxxx]" as "alpha\032\091xxxx-xxxx\093".
  const std::string listing = browse_until(avahi2, h2, "alpha\\032\\091");
  EXPECT_NE(listing.find("alpha\\032\\091"), std::string::npos) << listing << "\n" << avahi2.log();
  EXPECT_NE(listing.find("alpha-host.local"), std::string::npos) << listing;

  // beta, through h2's avahi-daemon, finds alpha, connects and has its message echoed.
  const netlab::CommandResult beta = connect_through(avahi2, h2, "beta");
  EXPECT_TRUE(beta.ok()) << beta.output;
  EXPECT_NE(beta.output.find("found lan:"), std::string::npos) << beta.output;
  EXPECT_NE(beta.output.find("echo "), std::string::npos) << beta.output;
  EXPECT_NE(read_file(log).find("message lan:"), std::string::npos) << read_file(log);

  // A peer with the beacon's own responder sees alpha too: on h1, sharing port 5353 with avahi-daemon. It
  // keeps seeing it past the 10 s that avahi gives answers to a querier's own port (RFC 6762 §6.7): it asks
  // again before the records expire.
  {
    netlab::NetnsScope scope(h1);
    HostConfig config = test_config();
    LanOptions o;
    o.identity = config.identity;
    o.service = "labtest";
    o.responder = LanResponder::kOwn;
    auto beacon = std::make_shared<LanBeacon>(o);
    config.signaling.push_back(beacon);
    Host host(config);
    EXPECT_EQ(beacon->responder(), LanResponder::kOwn);
    auto sees_alpha = [&] {
      for (const LanPeer& p : beacon->peers())
        if (p.display_name == "alpha") return true;
      return false;
    };
    EXPECT_TRUE(pump_until({&host}, sees_alpha));
    LanEvent e;
    while (beacon->next_event(e, 0ms)) {
    }
    std::this_thread::sleep_for(15s);
    EXPECT_TRUE(sees_alpha());
    while (beacon->next_event(e, 0ms))
      EXPECT_NE(e.kind, LanEventKind::kLost) << e.peer.display_name;
  }
  netlab::stop_child(alpha);

  // The other way round: gamma with the beacon's own responder (on h1, beside avahi-daemon) is listed by
  // h2's avahi-browse, and delta, through h2's avahi-daemon, finds it and connects.
  const std::string gamma_log = log + ".gamma";
  const pid_t gamma = netlab::spawn_in_netns(
      {LAN_BEACON_PEER, "--service", "labtest", "--name", "gamma", "--responder", "own"}, h1, gamma_log);
  ASSERT_TRUE(wait_for_text(gamma_log, " own\n", 10s)) << read_file(gamma_log);
  EXPECT_NE(browse_until(avahi2, h2, "gamma\\032\\091").find("gamma\\032\\091"), std::string::npos);
  const netlab::CommandResult delta = connect_through(avahi2, h2, "delta");
  EXPECT_TRUE(delta.ok()) << delta.output;
  EXPECT_NE(delta.output.find("echo "), std::string::npos) << delta.output;
  EXPECT_NE(read_file(gamma_log).find("message lan:"), std::string::npos) << read_file(gamma_log);
  netlab::stop_child(gamma);
  std::remove(log.c_str());
  std::remove(gamma_log.c_str());
}

// kAvahi with no avahi-daemon to talk to: the Host does not start, saying why.
TEST(LanAvahiLab, AvahiModeWithoutDaemon_HostRefusesToStart) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const std::string h = lab.add_host({lab.add_lan()});
  netlab::NetnsScope scope(h);
  const char* old = getenv("DBUS_SYSTEM_BUS_ADDRESS");
  const std::string saved = old ? old : "";
  setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/peerlink-test-bus", 1);
  HostConfig config = test_config();
  LanOptions o;
  o.identity = config.identity;
  o.responder = LanResponder::kAvahi;
  config.signaling.push_back(std::make_shared<LanBeacon>(o));
  Result<std::unique_ptr<Host>> host = Host::create(config);
  if (old)
    setenv("DBUS_SYSTEM_BUS_ADDRESS", saved.c_str(), 1);
  else
    unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
  ASSERT_FALSE(host);
  EXPECT_EQ(host.error().code, ErrorCode::kSystem);
  EXPECT_NE(host.error().message.find("avahi-daemon"), std::string::npos) << host.error().message;
}

}  // namespace
}  // namespace peerlink::test
