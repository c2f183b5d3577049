// peerlink-chat and `peerlink send` / `receive` as users and scripts meet them, run as processes:
//   - two `peerlink-chat --json` peers through a real Prosody on 127.0.0.1 (ICE on loopback only): messages
//     both ways and a 100 MB file, its SHA-256 checked by both and by the test; the keys pinned on first
//     contact, and a peer presenting another key later refused;
//   - the same between two hosts of a LAN in network namespaces (the LAN beacon; root only);
//   - `peerlink send` interrupted (SIGTERM) mid-file, then sent again: it resumes at what the receiver kept,
//     and the file arrives exact;
//   - hostile command lines and unusable files get plain words and the documented exit statuses.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "lan/lan_lab.hpp"
#include "netlab/netns.hpp"
#include "temp_dir.hpp"
#include "xmpp/prosody.hpp"

namespace peerlink::test {
namespace {

using namespace std::chrono_literals;

// A file of `size` pseudo-random bytes.
void write_random_file(const std::string& path, uint64_t size, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> block(1 << 17);
  std::ofstream out(path, std::ios::binary);
  for (uint64_t left = size; left > 0;) {
    for (uint64_t& v : block)
      v = rng();
    const size_t n = size_t(std::min<uint64_t>(left, block.size() * 8));
    out.write(reinterpret_cast<const char*>(block.data()), std::streamsize(n));
    left -= n;
  }
}

std::string sha256_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "<cannot read " + path + ">";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in.read(buf.data(), std::streamsize(buf.size())) || in.gcount() > 0)
    EVP_DigestUpdate(ctx, buf.data(), size_t(in.gcount()));
  unsigned char digest[32];
  unsigned size = 0;
  EVP_DigestFinal_ex(ctx, digest, &size);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < size; ++i) {
    std::snprintf(b, sizeof b, "%02x", digest[i]);
    hex += b;
  }
  return hex;
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

// The JSON events in a program's output (its other lines, the library's log, are skipped).
std::vector<nlohmann::json> events_of(const std::string& output) {
  std::vector<nlohmann::json> events;
  size_t start = 0;
  while (start < output.size()) {
    size_t end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    const std::string line = output.substr(start, end - start);
    if (!line.empty() && line[0] == '{') {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded()) events.push_back(std::move(j));
    }
    start = end + 1;
  }
  return events;
}

// The events named `name`.
std::vector<nlohmann::json> named(const std::vector<nlohmann::json>& events, const std::string& name) {
  std::vector<nlohmann::json> out;
  for (const nlohmann::json& e : events)
    if (e.value("event", "") == name) out.push_back(e);
  return out;
}

netlab::CommandResult run(std::vector<std::string> argv, const std::string& input = "",
                          const std::string& ns = "", std::chrono::milliseconds timeout = 30s) {
  return netlab::run_command(argv, ns, input, timeout);
}

// A Prosody with alice and bob in one roster group, and each one's files: password, identity, known peers,
// a download directory.
struct XmppPair {
  TempDir dir;
  ProsodyServer server;
  XmppPair() {
    server.start();
    for (const char* user : {"alice", "bob"}) {
      std::ofstream(dir.path + "/" + user + ".password") << ProsodyServer::password(user) << "\n";
      mkdir((dir.path + "/" + user).c_str(), 0700);
    }
  }
  std::vector<std::string> args(const std::string& user, const std::string& identity = "") const {
    return {"--jid",           server.jid(user),
            "--password-file", dir.path + "/" + user + ".password",
            "--server",        "127.0.0.1:" + std::to_string(server.port()),
            "--ca-file",       server.ca_file(),
            "--interface",     "lo",
            "--identity",      identity.empty() ? dir.path + "/" + user + ".key" : identity,
            "--known-peers",   dir.path + "/" + user + ".known"};
  }
  std::vector<std::string> chat(const std::string& user, std::vector<std::string> extra,
                                const std::string& identity = "") const {
    std::vector<std::string> argv = {PEERLINK_CHAT};
    for (const std::string& a : args(user, identity))
      argv.push_back(a);
    for (const std::string& a : {std::string("--dir"), dir.path + "/" + user, std::string("--json"),
                                 std::string("--timeout"), std::string("120")})
      argv.push_back(a);
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
};

#define CHAT_REQUIRE_PROSODY()                      \
  do {                                              \
    std::string why_;                               \
    if (!have_prosody(&why_)) GTEST_SKIP() << why_; \
  } while (0)

// Bob waits for a peer and accepts it; alice connects to him. Each sends its lines; both exit 0 once all
// was delivered. Returns {alice, bob}.
std::pair<netlab::CommandResult, netlab::CommandResult> chat_pair(const std::vector<std::string>& alice,
                                                                  const std::string& alice_input,
                                                                  const std::vector<std::string>& bob,
                                                                  const std::string& bob_input,
                                                                  const std::string& alice_ns = "",
                                                                  const std::string& bob_ns = "") {
  auto bob_run = std::async(std::launch::async, [&] { return run(bob, bob_input, bob_ns, 150s); });
  std::this_thread::sleep_for(300ms);
  netlab::CommandResult a = run(alice, alice_input, alice_ns, 150s);
  return {a, bob_run.get()};
}

// Checks one conversation: texts both ways, the file received whole, both exits 0.
void expect_conversation(const netlab::CommandResult& alice, const netlab::CommandResult& bob,
                         const std::string& file, const std::string& received_dir) {
  ASSERT_EQ(alice.status, 0) << "alice:\n" << alice.output << "\nbob:\n" << bob.output;
  ASSERT_EQ(bob.status, 0) << "bob:\n" << bob.output << "\nalice:\n" << alice.output;
  const std::vector<nlohmann::json> a = events_of(alice.output), b = events_of(bob.output);
  ASSERT_EQ(named(a, "connected").size(), 1u) << alice.output;
  EXPECT_EQ(named(a, "connected")[0].value("route", ""), "direct") << alice.output;
  EXPECT_EQ(named(a, "connected")[0].value("candidate", ""), "host") << alice.output;
  ASSERT_EQ(named(b, "connected").size(), 1u) << bob.output;
  const std::vector<nlohmann::json> to_bob = named(b, "message"), to_alice = named(a, "message");
  ASSERT_EQ(to_bob.size(), 2u) << bob.output;
  EXPECT_EQ(to_bob[0].value("text", ""), "hello bob, \"quoted\" and \\ back");
  EXPECT_EQ(to_bob[1].value("text", ""), "/that was a file");
  ASSERT_EQ(to_alice.size(), 1u) << alice.output;
  EXPECT_EQ(to_alice[0].value("text", ""), "hi alice");
  const std::string sha = sha256_of(file);
  const std::vector<nlohmann::json> got = named(b, "file"), sent = named(a, "file_sent");
  ASSERT_EQ(got.size(), 1u) << bob.output;
  ASSERT_EQ(sent.size(), 1u) << alice.output;
  EXPECT_EQ(got[0].value("sha256", ""), sha);
  EXPECT_EQ(sent[0].value("sha256", ""), sha);
  EXPECT_EQ(got[0].value("size", uint64_t(0)), file_size(file));
  const std::string path = got[0].value("path", "");
  EXPECT_EQ(path, received_dir + "/big.bin");
  EXPECT_EQ(sha256_of(path), sha);
  EXPECT_TRUE(named(a, "error").empty()) << alice.output;
  EXPECT_TRUE(named(b, "error").empty()) << bob.output;
}

TEST(ChatXmpp, TwoPeersThroughProsody_TextBothWaysAnd100MBFile_ThenAChangedKeyIsRefused) {
  CHAT_REQUIRE_PROSODY();
  XmppPair x;
  const std::string file = x.dir.path + "/alice/big.bin";
  write_random_file(file, 100u << 20, 1);
  auto [alice, bob] = chat_pair(x.chat("alice", {"--connect", x.server.jid("bob")}),
                                "hello bob, \"quoted\" and \\ back\n/file " + file + "\n//that was a file\n",
                                x.chat("bob", {"--wait-peer", "--accept"}), "hi alice\n");
  expect_conversation(alice, bob, file, x.dir.path + "/bob");
  // Both pinned the other's key on first contact.
  std::ifstream alice_known(x.dir.path + "/alice.known"), bob_known(x.dir.path + "/bob.known");
  std::string line;
  ASSERT_TRUE(std::getline(alice_known, line));
  EXPECT_EQ(line.rfind("xmpp:" + x.server.jid("bob") + " ", 0), 0u) << line;
  ASSERT_TRUE(std::getline(bob_known, line));
  EXPECT_EQ(line.rfind("xmpp:" + x.server.jid("alice") + " ", 0), 0u) << line;

  // Bob comes back with another key: alice's connect fails with a warning naming both keys (exit 1), and
  // bob, who pinned alice, is unharmed.
  auto [again, impostor] = chat_pair(
      x.chat("alice", {"--connect", x.server.jid("bob")}), "are you bob?\n",
      x.chat("bob", {"--wait-peer", "--accept", "--timeout", "8"}, x.dir.path + "/other-bob.key"), "");
  EXPECT_EQ(again.status, 1) << again.output;
  const std::vector<nlohmann::json> errors = named(events_of(again.output), "error");
  ASSERT_FALSE(errors.empty()) << again.output;
  bool warned = false, failed = false;
  for (const nlohmann::json& e : errors) {
    const std::string text = e.value("text", "");
    warned =
        warned || text.find("WARNING: " + x.server.jid("bob") + " does not hold the key pinned for it in " +
                            x.dir.path + "/alice.known") != std::string::npos;
    failed = failed || text.find("could not connect to " + x.server.jid("bob")) != std::string::npos;
  }
  EXPECT_TRUE(warned) << again.output;
  EXPECT_TRUE(failed) << again.output;
  EXPECT_TRUE(named(events_of(impostor.output), "message").empty()) << impostor.output;
}

TEST(ChatXmpp, HostileText_HarmlessOnATerminalAndValidJson) {
  CHAT_REQUIRE_PROSODY();
  XmppPair x;
  // Bob prints for people (no --json): escape sequences from alice must not reach his terminal. Alice reads
  // JSON: bytes that are not UTF-8 from bob must not break it.
  std::vector<std::string> bob = x.chat("bob", {"--wait-peer", "--accept"});
  bob.erase(std::find(bob.begin(), bob.end(), "--json"));
  auto [alice, bob_run] = chat_pair(x.chat("alice", {"--connect", x.server.jid("bob")}),
                                    "\x1b]0;pwned\x07 title \x1b[2J cleared, caf\xc3\xa9\n", bob,
                                    "bad \xff\xfe utf-8 \xed\xa0\x80 and caf\xc3\xa9\n");
  ASSERT_EQ(alice.status, 0) << alice.output;
  ASSERT_EQ(bob_run.status, 0) << bob_run.output;
  EXPECT_EQ(bob_run.output.find('\x1b'), std::string::npos) << bob_run.output;
  EXPECT_EQ(bob_run.output.find('\x07'), std::string::npos) << bob_run.output;
  EXPECT_NE(bob_run.output.find("?]0;pwned? title ?[2J cleared, caf\xc3\xa9"), std::string::npos)
      << bob_run.output;
  const std::vector<nlohmann::json> got = named(events_of(alice.output), "message");
  ASSERT_EQ(got.size(), 1u) << alice.output;  // parsed: valid JSON
  EXPECT_EQ(got[0].value("text", ""),
            "bad \xef\xbf\xbd\xef\xbf\xbd utf-8 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd and caf\xc3\xa9");
}

TEST(ChatXmpp, SendInterruptedMidFileThenSentAgain_ResumesAndTheHashIsExact) {
  CHAT_REQUIRE_PROSODY();
  XmppPair x;
  const std::string file = x.dir.path + "/alice/big.bin";
  write_random_file(file, 300u << 20, 2);
  std::vector<std::string> receive = {PEERLINK_CLI, "receive"};
  for (const std::string& a : x.args("bob"))
    receive.push_back(a);
  for (const char* a : {"--dir", "", "--keep-going", "--json"})
    receive.push_back(a);
  receive[receive.size() - 3] = x.dir.path + "/bob";
  const std::string log = x.dir.path + "/receive.log";
  const pid_t receiver = netlab::spawn_in_netns(receive, "", log);

  std::vector<std::string> send = {PEERLINK_CLI,        "send",   file,        "--to",
                                   x.server.jid("bob"), "--json", "--timeout", "120"};
  for (const std::string& a : x.args("alice"))
    send.push_back(a);
  // First attempt: stopped (SIGTERM) once the receiver holds 30 MB of it.
  const std::string part = x.dir.path + "/bob/.big.bin.part";
  const std::string first_log = x.dir.path + "/send1.log";
  const pid_t sender = netlab::spawn_in_netns(send, "", first_log);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (file_size(part) < (30u << 20) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  ASSERT_GE(file_size(part), 30u << 20) << "the transfer did not start";
  kill(sender, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(sender, &status, 0), sender);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);  // interrupted: the file was not delivered
  std::this_thread::sleep_for(500ms);
  const uint64_t kept = file_size(part);
  ASSERT_GT(kept, 0u);
  ASSERT_LT(kept, 300u << 20) << "the first attempt was not interrupted mid-file";

  // Second attempt: resumes at what the receiver kept.
  const netlab::CommandResult second = run(send, "", "", 150s);
  netlab::stop_child(receiver, 3s);
  std::ifstream in(log);
  const std::string receiver_output((std::istreambuf_iterator<char>(in)), {});
  ASSERT_EQ(second.status, 0) << second.output << "\nreceiver:\n" << receiver_output;
  const std::vector<nlohmann::json> sent = named(events_of(second.output), "file_sent");
  ASSERT_EQ(sent.size(), 1u) << second.output;
  EXPECT_GE(sent[0].value("resumed_from", uint64_t(0)), 30u << 20) << second.output;
  const std::vector<nlohmann::json> files = named(events_of(receiver_output), "file");
  ASSERT_EQ(files.size(), 1u) << receiver_output;
  EXPECT_EQ(files[0].value("resumed_from", uint64_t(0)), sent[0].value("resumed_from", uint64_t(1)));
  EXPECT_EQ(files[0].value("sha256", ""), sha256_of(file));
  EXPECT_EQ(sha256_of(x.dir.path + "/bob/big.bin"), sha256_of(file));
  EXPECT_EQ(file_size(part), 0u);  // the part became the file
  const std::vector<nlohmann::json> failed = named(events_of(receiver_output), "file_failed");
  ASSERT_EQ(failed.size(), 1u) << receiver_output;  // the first attempt, cut off, its part kept
  EXPECT_NE(failed[0].value("reason", "").find("resumes there"), std::string::npos) << receiver_output;
}

TEST(ChatXmpp, WrongPasswordAndUnknownPeer_ClearErrorsAndExit1) {
  CHAT_REQUIRE_PROSODY();
  XmppPair x;
  std::ofstream(x.dir.path + "/wrong.password") << "not-the-password\n";
  std::vector<std::string> argv = x.chat("alice", {"--connect", x.server.jid("bob")});
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "--password-file") argv[i + 1] = x.dir.path + "/wrong.password";
  const netlab::CommandResult wrong = run(argv, "hello\n");
  EXPECT_EQ(wrong.status, 1) << wrong.output;
  EXPECT_NE(wrong.output.find("XMPP login failed (credentials)"), std::string::npos) << wrong.output;
  // Bob is not online: `send` waits --wait seconds for his presence, then fails saying he is unreachable.
  std::vector<std::string> send = {PEERLINK_CLI, "send", "/etc/hostname", "--to", x.server.jid("bob"),
                                   "--wait",     "1",    "--json"};
  for (const std::string& a : x.args("alice"))
    send.push_back(a);
  const netlab::CommandResult nobody = run(send);
  EXPECT_EQ(nobody.status, 1) << nobody.output;
  EXPECT_NE(nobody.output.find("could not connect to " + x.server.jid("bob")), std::string::npos)
      << nobody.output;
}

TEST(ChatLan, TwoHostsOfALan_TextBothWaysAnd100MBFile) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string h1 = lab.add_host({lan}), h2 = lab.add_host({lan});
  TempDir dir;
  const std::string file = dir.path + "/big.bin";
  write_random_file(file, 100u << 20, 3);
  mkdir((dir.path + "/bob").c_str(), 0700);
  auto peer = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> argv = {PEERLINK_CHAT,
                                     "--lan",
                                     "--name",
                                     name,
                                     "--service",
                                     "chattest",
                                     "--responder",
                                     "own",
                                     "--identity",
                                     dir.path + "/" + name + ".key",
                                     "--known-peers",
                                     dir.path + "/" + name + ".known",
                                     "--json",
                                     "--timeout",
                                     "120",
                                     "--dir",
                                     dir.path + "/" + (name == "bob" ? "bob" : "")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };
  auto [alice, bob] = chat_pair(peer("alice", {"--connect", "bob"}),
                                "hello bob, \"quoted\" and \\ back\n/file " + file + "\n//that was a file\n",
                                peer("bob", {"--wait-peer", "--accept"}), "hi alice\n", h1, h2);
  expect_conversation(alice, bob, file, dir.path + "/bob");
  const std::vector<nlohmann::json> found = named(events_of(alice.output), "peer");
  ASSERT_FALSE(found.empty()) << alice.output;
  EXPECT_EQ(found[0].value("name", ""), "bob");
}

// A connect that cannot be made, with a file waiting for it: reported as not sent, exit 1 (the session
// waited for good; peerlink-chat shares the session, with a fixed 30 s wait for a LAN peer to appear).
// Alone on a LAN: nobody is called "nobody".
TEST(ChatLan, ConnectFailsWithAFileWaiting_ReportedNotSentExit1) {
  std::string why;
  if (!can_build_lan_lab(&why)) GTEST_SKIP() << why;
  LanLab lab;
  const int lan = lab.add_lan();
  const std::string h1 = lab.add_host({lan});
  TempDir dir;
  const std::vector<std::string> send = {
      PEERLINK_CLI, "send",      "/etc/hostname", "--to",        "nobody", "--wait",     "2",
      "--lan",      "--service", "chattest",      "--responder", "own",    "--identity", dir.path + "/a.key"};
  const auto t0 = std::chrono::steady_clock::now();
  const netlab::CommandResult r = run(send, "", h1, 40s);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << r.output;
  EXPECT_NE(r.output.find("not sent"), std::string::npos) << r.output;
}

TEST(ChatCli, HostileCommandLinesAndFiles_PlainWordsAndTheDocumentedExitStatus) {
  TempDir dir;
  for (const std::vector<std::string>& help : {std::vector<std::string>{PEERLINK_CHAT, "--help"},
                                               {PEERLINK_CLI, "send", "--help"},
                                               {PEERLINK_CLI, "receive", "--help"}}) {
    const netlab::CommandResult r = run(help);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("usage: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--jid JID"), std::string::npos) << r.output;
  }
  std::ofstream(dir.path + "/pw") << "secret\n";
  const std::string id = dir.path + "/id.key";
  struct Case {
    std::vector<std::string> argv;
    int status;
    const char* says;
  };
  const std::vector<Case> cases = {
      {{PEERLINK_CHAT}, 2, "say how to find peers"},
      {{PEERLINK_CHAT, "--frobnicate"}, 2, "unknown option '--frobnicate'"},
      {{PEERLINK_CHAT, "--jid"}, 2, "--jid wants a value"},
      {{PEERLINK_CHAT, "--jid", "no-at-sign"}, 2, "--jid wants user@domain, not 'no-at-sign'"},
      {{PEERLINK_CHAT, "--jid", "@example.org"}, 2, "--jid wants user@domain"},
      {{PEERLINK_CHAT, "--jid", "a b@example.org"}, 2, "--jid wants user@domain"},
      {{PEERLINK_CHAT, "--lan", "--dir", "/nonexistent-dir"}, 2, "--dir wants an existing directory"},
      {{PEERLINK_CHAT, "--lan", "--timeout", "soon"}, 2, "--timeout wants a number of seconds"},
      {{PEERLINK_CHAT, "--lan", "--responder", "bonjour"}, 2, "--responder wants auto, own or avahi"},
      {{PEERLINK_CHAT, "--jid", "a@example.org", "--password-file", dir.path + "/missing", "--identity", id},
       1,
       "missing"},
      {{PEERLINK_CHAT, "--jid", "a@example.org", "--password-file", dir.path + "/pw", "--server", "host:0",
        "--identity", id},
       2,
       "--server wants HOST[:PORT], not 'host:0'"},
      {{PEERLINK_CHAT, "--jid", "a@example.org", "--password-file", dir.path + "/pw", "--ca-file",
        dir.path + "/no-ca.pem", "--identity", id},
       1,
       "cannot read the CA file"},
      {{PEERLINK_CHAT, "--jid", "a@example.org", "--password-env", "PEERLINK_TEST_UNSET_VARIABLE",
        "--identity", id},
       2,
       "PEERLINK_TEST_UNSET_VARIABLE"},
      {{PEERLINK_CHAT, "--lan", "--identity", "/proc/peerlink-no-such-dir/id.key"},
       1,
       "/proc/peerlink-no-such-dir/id.key"},
      {{PEERLINK_CHAT, "--lan", "--identity", id, "--known-peers", dir.path + "/bad-known"},
       1,
       "bad-known:2: not '<peer id> <64 hex digits>'"},
      {{PEERLINK_CHAT, "--lan", "--service", "has space", "--identity", id}, 2, "has space"},
      {{PEERLINK_CLI, "send"}, 2, "no file to send"},
      {{PEERLINK_CLI, "send", "/etc/hostname"}, 2, "--to PEER says whom to send to"},
      {{PEERLINK_CLI, "send", "/etc/hostname", "--to", "bob@example.org"}, 2, "say how to find the peer"},
      {{PEERLINK_CLI, "send", dir.path + "/missing", "--to", "b@x.org", "--lan"}, 1, "no such file"},
      {{PEERLINK_CLI, "send", dir.path, "--to", "b@x.org", "--lan"}, 1, "not a regular file"},
      {{PEERLINK_CLI, "send", "/etc/hostname", "--to", "b@x.org", "--lan", "--wait", "-3"},
       2,
       "--wait wants a number of seconds"},
      {{PEERLINK_CLI, "send", "/etc/hostname", "--bogus"}, 2, "unknown option for send: --bogus"},
      {{PEERLINK_CLI, "receive"}, 2, "say how to be found"},
      {{PEERLINK_CLI, "receive", "--lan", "--dir", dir.path + "/missing"},
       2,
       "--dir wants an existing directory"},
      {{PEERLINK_CLI, "receive", "--keep-going", "--bogus"}, 2, "unknown option for receive: --bogus"},
  };
  std::ofstream(dir.path + "/bad-known") << "# a comment\nxmpp:bob@example.org not-hex\n";
  for (const Case& c : cases) {
    const netlab::CommandResult r = run(c.argv, "", "", 20s);
    EXPECT_EQ(r.status, c.status) << c.argv.back() << ": " << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace peerlink::test
