#include "netlab/coturn.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "netlab/netns.hpp"
#include "netlab/stun.hpp"

namespace peerlink::netlab {
namespace {

using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One readiness probe from inside the server's namespace: STUN Binding over UDP, then a TCP connect.
bool answers(const TurnServerConfig& c) {
  NetnsScope scope(c.netns);
  UdpSocket udp;
  if (!stun::binding(udp, Endpoint{c.listen_ip, c.port}, std::chrono::milliseconds(100))) return false;
  return TcpSocket::connect(Endpoint{c.listen_ip, c.port}, std::chrono::milliseconds(100)).has_value();
}

}  // namespace

TurnServer::TurnServer(TurnServerConfig config) : config_(std::move(config)) {
  const std::string base = config_.work_dir + "/" + config_.name;
  config_path_ = base + ".conf";
  log_path_ = base + ".log";
  stdout_path_ = base + ".stdout";
  std::ofstream out(config_path_);
  out << "# written by the peerlink netlab fixture\n"
      << "listening-ip=" << config_.listen_ip << "\n"
      << (config_.alt_listen_ip.empty() ? "" : "listening-ip=" + config_.alt_listen_ip + "\n")
      << "relay-ip=" << config_.listen_ip << "\n"
      << "listening-port=" << config_.port << "\n"
      << "min-port=" << config_.min_port << "\n"
      << "max-port=" << config_.max_port << "\n"
      << "realm=" << config_.realm << "\n";
  if (config_.auth_secret.empty()) {
    out << "lt-cred-mech\n"
        << "user=" << config_.user << ":" << config_.password << "\n";
  } else {
    out << "use-auth-secret\n"
        << "static-auth-secret=" << config_.auth_secret << "\n";
  }
  out << "no-tls\nno-dtls\nno-cli\nno-multicast-peers\n"
      << (config_.alt_listen_ip.empty() ? "no-rfc5780\n" : "") << "userdb=" << base << ".db\n"
      << "pidfile=" << base << ".pid\n"
      << "log-file=" << log_path_ << "\n"
      << "simple-log\n";
  out.close();
  if (!out) throw std::runtime_error("netlab: cannot write " + config_path_);
}

TurnServer::~TurnServer() {
  stop();
}

void TurnServer::start(std::chrono::milliseconds ready_timeout) {
  if (pid_ > 0) return;
  pid_ = spawn_in_netns({"turnserver", "-c", config_path_}, config_.netns, stdout_path_);
  const auto deadline = Clock::now() + ready_timeout;
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      throw std::runtime_error("netlab: turnserver (" + config_path_ + ") exited during start-up; log:\n" +
                               log_tail());
    }
    if (answers(config_)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop();
  throw std::runtime_error("netlab: turnserver (" + config_path_ + ") did not answer STUN on " +
                           address().str() + " within " + std::to_string(ready_timeout.count()) +
                           " ms; log:\n" + log_tail());
}

void TurnServer::stop() {
  if (pid_ <= 0) return;
  stop_child(pid_, std::chrono::milliseconds(2000));
  pid_ = 0;
}

std::string TurnServer::log_tail(size_t max_bytes) const {
  std::string all = read_file(stdout_path_) + read_file(log_path_);
  return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

RestCredentials turn_rest_credentials(const std::string& secret, const std::string& user,
                                      std::chrono::seconds ttl, std::time_t now) {
  RestCredentials c;
  c.username = std::to_string(static_cast<long long>(now) + ttl.count()) + ":" + user;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(c.username.data()), c.username.size(), mac, &len))
    throw std::runtime_error("netlab: HMAC-SHA1 failed");
  std::string b64(4 * ((len + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&b64[0]), mac, static_cast<int>(len));
  b64.resize(static_cast<size_t>(n));
  c.password = b64;
  return c;
}

}  // namespace peerlink::netlab
