// The custom signaling example across the NAT lab (tests/netlab): its rendezvous server on the lab's
// "internet", the two peer programs behind real kernel NATs, STUN and TURN from the lab's coturn. The
// template a plugin writer starts from must connect two machines, not only two processes on loopback.
// Needs root, iproute2, nftables and coturn; skips with the reason otherwise.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "netlab/lab.hpp"

namespace {

using namespace std::chrono_literals;
using peerlink::netlab::Lab;
using peerlink::netlab::NatType;
using peerlink::netlab::Site;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A program started in a namespace, stopped (and reaped) when this goes out of scope unless it exited.
class Program {
 public:
  Program(const std::vector<std::string>& argv, const std::string& netns, std::string log)
      : log_(std::move(log)), pid_(peerlink::netlab::spawn_in_netns(argv, netns, log_)) {}
  ~Program() {
    if (pid_ > 0) peerlink::netlab::stop_child(pid_);
  }
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  std::string output() const { return read_file(log_); }
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }
  // Its exit status, or -1 if it is still running after timeout (it is then stopped).
  int wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(20ms);
    }
  }

 private:
  std::string log_;
  pid_t pid_;
};

struct Pairing {
  const char* name;
  NatType alice, bob;
  bool relayed;      // only a TURN relay can connect them
  bool rest_secret;  // time-limited TURN credentials (--turn-secret) instead of the static user
  bool relay_only;   // --relay-only on both sides
};

void PrintTo(const Pairing& p, std::ostream* os) {
  *os << p.name;
}

class CustomSignalingAcrossNats : public ::testing::TestWithParam<Pairing> {};

TEST_P(CustomSignalingAcrossNats, PeersConnectThroughTheRendezvousServerAndTalk) {
  std::string why;
  if (!peerlink::netlab::have_root_and_tools(&why)) GTEST_SKIP() << why;
  const Pairing& p = GetParam();
  Lab lab;  // first: destroyed last
  const Site a = lab.add_site(p.alice), b = lab.add_site(p.bob);
  const std::string server_ip = lab.internet_host_ip(0);
  Program server({CUSTOM_SIGNALING_SERVER, "--bind", server_ip, "7000"}, lab.internet_ns(),
                 lab.work_dir() + "/server.log");
  ASSERT_TRUE(server.wait_for_output("listening on", 5s)) << server.output();

  const auto turn = p.rest_secret ? lab.turn_rest_server() : lab.turn_server();
  const std::string turn_at = turn.ip + ":" + std::to_string(turn.port);
  auto peer_args = [&](const std::string& name) {
    std::vector<std::string> args = {CUSTOM_SIGNALING_PEER,
                                     "--server",
                                     server_ip + ":7000",
                                     "--name",
                                     name,
                                     "--interface",
                                     "eth0",
                                     "--stun",
                                     lab.turn_server().ip + ":3478",
                                     "--turn",
                                     turn_at,
                                     "--timeout",
                                     "40"};
    if (p.rest_secret) {
      args.insert(args.end(), {"--turn-secret", lab.turn_secret()});
    } else {
      const auto creds = lab.turn_credentials();
      args.insert(args.end(), {"--turn-user", creds.username, "--turn-password", creds.password});
    }
    if (p.relay_only) args.push_back("--relay-only");
    return args;
  };
  Program bob(peer_args("bob"), b.peer_ns(0), lab.work_dir() + "/bob.log");
  ASSERT_TRUE(bob.wait_for_output("[bob] waiting for a peer", 10s)) << bob.output();
  std::vector<std::string> alice_args = peer_args("alice");
  alice_args.insert(alice_args.end(), {"--connect", "bob"});
  Program alice(alice_args, a.peer_ns(0), lab.work_dir() + "/alice.log");

  const int alice_rc = alice.wait_exit(45s), bob_rc = bob.wait_exit(15s);
  const std::string alice_out = alice.output(), bob_out = bob.output();
  ASSERT_EQ(alice_rc, 0) << "alice:\n" << alice_out << "\nbob:\n" << bob_out;
  ASSERT_EQ(bob_rc, 0) << "alice:\n" << alice_out << "\nbob:\n" << bob_out;
  for (int i = 1; i <= 3; ++i) {
    EXPECT_NE(bob_out.find("[bob] heard: message " + std::to_string(i) + "/3 from alice"), std::string::npos)
        << bob_out;
    EXPECT_NE(alice_out.find("[alice] heard: message " + std::to_string(i) + "/3 from bob"),
              std::string::npos)
        << alice_out;
  }
  const std::string route = p.relayed ? "route relay, relayed)" : "direct)";
  EXPECT_NE(alice_out.find("[alice] connected to line:bob"), std::string::npos) << alice_out;
  EXPECT_NE(alice_out.find(route), std::string::npos) << alice_out;
  EXPECT_NE(bob_out.find(route), std::string::npos) << bob_out;
}

INSTANTIATE_TEST_SUITE_P(
    Pairings, CustomSignalingAcrossNats,
    ::testing::Values(Pairing{"port_restricted_x_full_cone", NatType::kPortRestricted, NatType::kFullCone,
                              false, false, false},
                      Pairing{"symmetric_x_symmetric_rest_turn", NatType::kSymmetric, NatType::kSymmetric,
                              true, true, false},
                      Pairing{"public_relay_only", NatType::kNone, NatType::kNone, true, false, true}),
    [](const ::testing::TestParamInfo<Pairing>& info) { return std::string(info.param.name); });

}  // namespace
