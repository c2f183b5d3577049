// The plugin's options: where the password comes from, options that cannot work, and TLS that does not
// verify (a clear final state) or is explicitly not verified (a warning on every connect).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "xmpp/xmpp_test_util.hpp"

namespace peerlink::test {
namespace {

using namespace std::chrono_literals;

TEST(XmppOptions, InvalidOptionsAreRefusedSayingWhich) {
  auto message = [](const XmppOptions& o) {
    Result<void> r = o.validate();
    return r ? std::string() : r.error().message;
  };
  XmppOptions o;
  o.jid = "alice@example.org";
  o.password = "x";
  EXPECT_EQ(message(o), "");
  XmppOptions bad = o;
  bad.jid = "example.org";
  EXPECT_NE(message(bad).find("no user part"), std::string::npos);
  bad = o;
  bad.jid = "alice@";
  EXPECT_NE(message(bad).find("not a JID"), std::string::npos);
  bad = o;
  bad.password_env = "X";
  EXPECT_NE(message(bad).find("one of password"), std::string::npos);
  bad = o;
  bad.password.clear();
  EXPECT_NE(message(bad).find("no credentials"), std::string::npos);
  bad = o;
  bad.client_cert_file = "c.pem";
  EXPECT_NE(message(bad).find("both"), std::string::npos);
  bad = o;
  bad.reconnect_max = std::chrono::milliseconds(1);
  EXPECT_NE(message(bad).find("reconnect_max"), std::string::npos);
  bad = o;
  bad.ping_timeout = std::chrono::milliseconds(0);
  EXPECT_NE(message(bad).find("ping_timeout"), std::string::npos);
  // A valid JID (parts up to 1023 bytes) too long to be a PeerId (1000): the plugin crashed on login.
  bad = o;
  bad.jid = "alice@example.org/" + std::string(990, 'r');
  EXPECT_NE(message(bad).find("cannot name a peer"), std::string::npos) << message(bad);

  bad = o;
  bad.jid = "alice";
  try {
    XmppSignaling plugin(bad);
    ADD_FAILURE() << "constructed";
  } catch (const Exception& e) {
    EXPECT_EQ(e.error().code, ErrorCode::kInvalidConfig);
  }
  bad = o;
  bad.password.clear();
  bad.password_file = "/nonexistent/password";
  try {
    XmppSignaling plugin(bad);
    ADD_FAILURE() << "constructed";
  } catch (const Exception& e) {
    EXPECT_EQ(e.error().code, ErrorCode::kFile);
    EXPECT_NE(e.error().message.find("/nonexistent/password"), std::string::npos);
  }
  bad = o;
  bad.password.clear();
  bad.password_env = "PEERLINK_TEST_NO_SUCH_VARIABLE";
  EXPECT_THROW(XmppSignaling plugin(bad), Exception);
}

TEST(XmppOptions, PasswordFromAFileOrTheEnvironmentLogsIn) {
  XMPP_REQUIRE_PROSODY();
  // Set before any thread of this test runs (setenv is not safe against concurrent getenv).
  setenv("PEERLINK_TEST_XMPP_PASSWORD", ProsodyServer::password("bob").c_str(), 1);
  ProsodyServer server;
  server.start();
  char path[] = "/tmp/peerlink-password-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << ProsodyServer::password("alice") << "\r\nsecond line ignored\n";
  XmppOptions from_file = server.client("alice", "file");
  from_file.password.clear();
  from_file.password_file = path;
  XmppPeer a(from_file);
  EXPECT_TRUE(a.online());
  std::remove(path);

  XmppOptions from_env = server.client("bob", "env");
  from_env.password.clear();
  from_env.password_env = "PEERLINK_TEST_XMPP_PASSWORD";
  XmppPeer b(from_env);
  EXPECT_TRUE(b.online());
}

// A certificate that does not verify against the CA file is a final TLS failure naming the CA file; the
// explicitly insecure option logs in and warns on every connect.
TEST(XmppOptions, UnverifiableCertificateFailsClearlyInsecureOptionWarns) {
  XMPP_REQUIRE_PROSODY();
  ProsodyServer server, other;  // other's certificate is a CA that did not sign server's
  server.start();
  XmppOptions o = server.client("alice");
  o.ca_file = other.ca_file();
  o.log_sink = [](LogLevel, const std::string&) {};
  XmppPeer refused(o);
  EXPECT_FALSE(refused.plugin->wait_online(10s));
  XmppStatus s = refused.plugin->status();
  EXPECT_EQ(s.state, XmppState::kFailed);
  EXPECT_EQ(s.failure, XmppFailure::kTls);
  EXPECT_NE(s.reason.find(other.ca_file()), std::string::npos) << s.reason;

  std::vector<std::string> warnings;
  std::mutex m;
  XmppOptions insecure = server.client("bob");
  insecure.ca_file.clear();
  insecure.tls = XmppTls::kInsecureForTestsOnly;
  insecure.log_sink = [&](LogLevel level, const std::string& line) {
    std::lock_guard<std::mutex> lock(m);
    if (level == LogLevel::kWarning) warnings.push_back(line);
  };
  XmppPeer bob(insecure);
  EXPECT_TRUE(bob.online());
  std::lock_guard<std::mutex> lock(m);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings.front().find("verification is OFF"), std::string::npos) << warnings.front();
}

}  // namespace
}  // namespace peerlink::test
