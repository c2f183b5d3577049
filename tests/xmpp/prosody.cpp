#include "prosody.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "netlab/netns.hpp"
#include "netlab/socket.hpp"

namespace peerlink::test {
namespace {

uint16_t free_tcp_port(const std::string& netns, const std::string& ip) {
  std::optional<netlab::NetnsScope> scope;
  if (!netns.empty()) scope.emplace(netns);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("prosody fixture: socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  if (inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1 ||
      bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    throw std::runtime_error("prosody fixture: cannot bind " + ip);
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string lua_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

bool have_prosody(std::string* why) {
  std::string missing;
  for (const char* tool : {"prosody", "prosodyctl", "openssl"})
    if (netlab::find_executable(tool).empty()) missing += std::string(missing.empty() ? "" : ", ") + tool;
  if (why) *why = missing.empty() ? "" : "XMPP tests need " + missing + " (Debian packages prosody, openssl)";
  return missing.empty();
}

ProsodyServer::ProsodyServer(ProsodyOptions options) : options_(std::move(options)) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "peerlink-prosody-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("prosody fixture: mkdtemp failed");
  dir_ = tmpl;
  config_path_ = dir_ + "/prosody.cfg.lua";
  log_path_ = dir_ + "/prosody.log";
  std::filesystem::create_directories(dir_ + "/data");
  std::filesystem::create_directories(dir_ + "/certs");
  port_ = options_.port ? options_.port : free_tcp_port(options_.netns, options_.ip);
  make_certificate();
  write_config();
  std::vector<std::string> users = options_.contacts;
  users.insert(users.end(), options_.strangers.begin(), options_.strangers.end());
  for (const std::string& user : users) {
    if (options_.certificate_logins) break;  // accounts are whatever the client certificates name
    netlab::run_checked(
        {"prosodyctl", "--config", config_path_, "register", user, options_.domain, password(user)});
  }
}

ProsodyServer::~ProsodyServer() {
  stop();
  if (!std::getenv("PEERLINK_XMPP_KEEP")) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void ProsodyServer::make_certificate() {
  // Prosody finds <domain>.crt and <domain>.key in its certificates directory.
  const std::string base = dir_ + "/certs/" + options_.domain;
  netlab::run_checked({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                       "-nodes", "-keyout", base + ".key", "-out", base + ".crt", "-days", "2", "-subj",
                       "/CN=" + options_.domain, "-addext", "subjectAltName=DNS:" + options_.domain});
  ca_file_ = base + ".crt";
  if (options_.certificate_logins) {
    for (const char* ca : {"client-ca", "other-ca"})
      netlab::run_checked({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", dir_ + "/" + ca + ".key",
                           "-out", dir_ + "/" + ca + ".crt", "-days", "2", "-subj",
                           std::string("/CN=") + ca});
  }
}

std::pair<std::string, std::string> ProsodyServer::client_certificate(const std::string& user, bool trusted) {
  const std::string base = dir_ + "/" + user + (trusted ? "" : "-untrusted");
  const std::string ca = dir_ + (trusted ? "/client-ca" : "/other-ca");
  const std::string ext = base + ".ext";
  std::ofstream(ext) << "subjectAltName = otherName:1.3.6.1.5.5.7.8.5;UTF8:" << jid(user) << "\n"
                     << "extendedKeyUsage = clientAuth\n";
  netlab::run_checked({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                       "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj",
                       "/CN=" + jid(user)});
  netlab::run_checked({"openssl", "x509", "-req", "-in", base + ".csr", "-CA", ca + ".crt", "-CAkey",
                       ca + ".key", "-CAcreateserial", "-out", base + ".crt", "-days", "2", "-extfile", ext});
  return {base + ".crt", base + ".key"};
}

void ProsodyServer::write_config() {
  std::ofstream groups(dir_ + "/groups.txt");
  groups << "[Friends]\n";
  for (const std::string& u : options_.contacts)
    groups << u << "@" << options_.domain << "\n";
  groups.close();

  std::ostringstream c;
  c << "run_as_root = true\n"
    << "daemonize = false\n"
    << "pidfile = " << lua_string(dir_ + "/prosody.pid") << "\n"
    << "data_path = " << lua_string(dir_ + "/data") << "\n"
    << "log = { " << (std::getenv("PEERLINK_XMPP_DEBUG") ? "debug" : "info") << " = " << lua_string(log_path_)
    << " }\n"
    << "admins = {}\n"
    << "modules_enabled = { \"roster\"; \"saslauth\"; \"tls\"; \"disco\"; \"ping\"; \"smacks\"; \"carbons\"; "
       "\"mam\"; \"offline\"; \"groups\"; \"posix\";"
    << (options_.limits ? " \"limits\";" : "") << (options_.turn_secret.empty() ? "" : " \"turn_external\";")
    << " }\n"
    << "modules_disabled = { \"s2s\" }\n"
    << "s2s_ports = {}\n"
    << "c2s_ports = { " << port_ << " }\n"
    << "c2s_interfaces = { " << lua_string(options_.ip) << " }\n"
    << "network_settings = { nagle = false }\n"
    << "authentication = " << (options_.certificate_logins ? "\"ccert\"" : "\"internal_hashed\"") << "\n"
    << "c2s_require_encryption = true\n"
    << "certificates = " << lua_string(dir_ + "/certs") << "\n"
    << "groups_file = " << lua_string(dir_ + "/groups.txt") << "\n"
    << "archive_expires_after = \"1d\"\n";
  if (options_.certificate_logins) {
    c << "certificate_match = \"xmppaddr\"\n"
      << "c2s_ssl = { cafile = " << lua_string(dir_ + "/client-ca.crt")
      << "; capath = false; verify = { \"peer\"; \"client_once\" }; verifyext = { lsec_ignore_purpose = "
         "false } }\n";
  }
  if (!options_.turn_secret.empty()) {
    c << "turn_external_secret = " << lua_string(options_.turn_secret) << "\n"
      << "turn_external_host = " << lua_string(options_.turn_host) << "\n"
      << "turn_external_port = " << options_.turn_port << "\n"
      << "turn_external_ttl = " << options_.turn_ttl_seconds << "\n";
  }
  c << "VirtualHost " << lua_string(options_.domain) << "\n";
  std::ofstream(config_path_) << c.str();
}

void ProsodyServer::start(std::chrono::milliseconds ready_timeout) {
  if (pid_ > 0) return;
  pid_ = netlab::spawn_in_netns({"prosody", "-F", "--config", config_path_}, options_.netns,
                                dir_ + "/stdout.log");
  const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
  for (;;) {
    {
      std::optional<netlab::NetnsScope> scope;
      if (!options_.netns.empty()) scope.emplace(options_.netns);
      if (netlab::TcpSocket::connect({options_.ip, port_}, std::chrono::milliseconds(200))) return;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      throw std::runtime_error("prosody exited at start:\n" + log_tail());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      stop();
      throw std::runtime_error("prosody did not accept TCP within " + std::to_string(ready_timeout.count()) +
                               " ms:\n" + log_tail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void ProsodyServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);  // a frozen server could not act on SIGTERM
  netlab::stop_child(pid_, std::chrono::milliseconds(2000));
  pid_ = 0;
}

void ProsodyServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = 0;
}

void ProsodyServer::freeze() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void ProsodyServer::thaw() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

std::string ProsodyServer::log_tail(size_t max_bytes) const {
  std::string out;
  for (const std::string& path : {dir_ + "/stdout.log", log_path_}) {
    std::ifstream f(path);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    if (text.size() > max_bytes) text = text.substr(text.size() - max_bytes);
    out += "--- " + path + "\n" + text;
  }
  return out;
}

XmppOptions ProsodyServer::client(const std::string& user, const std::string& resource) const {
  XmppOptions o;
  o.jid = jid(user) + (resource.empty() ? "" : "/" + resource);
  o.password = password(user);
  o.host = options_.ip;
  o.port = port_;
  o.ca_file = ca_file_;
  o.reconnect_min = std::chrono::milliseconds(100);
  o.reconnect_max = std::chrono::seconds(2);
  o.log_level = LogLevel::kWarning;
  return o;
}

}  // namespace peerlink::test
