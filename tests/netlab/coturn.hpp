// coturn as a child process of the test inside a lab namespace: config written to a work directory, started,
// polled with a real STUN Binding request (UDP) and a TCP connect until it answers, stopped by its PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

#include "netlab/socket.hpp"

namespace peerlink::netlab {

struct TurnServerConfig {
  std::string netns;      // namespace to run in
  std::string listen_ip;  // listening-ip and relay-ip
  uint16_t port = 3478;   // UDP and TCP
  // A second listening-ip: coturn then does RFC 5780 NAT behaviour discovery (OTHER-ADDRESS, CHANGE-REQUEST;
  // the alternate port is port + 1 on both addresses). Empty: no-rfc5780, as before.
  std::string alt_listen_ip;
  std::string realm = "peerlink.test";
  // Authentication: a static long-term user (lt-cred-mech + user=) when auth_secret is empty, otherwise the
  // TURN REST API scheme (use-auth-secret + static-auth-secret). coturn 4.6 does not accept static users
  // once use-auth-secret is on, so a lab runs one server of each kind.
  std::string user;
  std::string password;
  std::string auth_secret;
  uint16_t min_port = 49152;  // relay port range
  uint16_t max_port = 65535;
  std::string work_dir;  // config, logs, pid file and user database go here
  std::string name = "turn";
};

class TurnServer {
 public:
  explicit TurnServer(TurnServerConfig config);  // writes the config; does not start
  ~TurnServer();                                 // stop()
  TurnServer(const TurnServer&) = delete;
  TurnServer& operator=(const TurnServer&) = delete;

  // Starts turnserver and waits until it answers a STUN Binding over UDP and accepts TCP, at most
  // `ready_timeout`; throws std::runtime_error with the end of its log otherwise (and leaves it stopped).
  void start(std::chrono::milliseconds ready_timeout = std::chrono::seconds(10));
  // Kills the process started by start() (SIGTERM, SIGKILL after a grace period) and reaps it.
  void stop();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  Endpoint address() const { return Endpoint{config_.listen_ip, config_.port}; }
  const TurnServerConfig& config() const { return config_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& log_path() const { return log_path_; }
  std::string log_tail(size_t max_bytes = 4000) const;

 private:
  TurnServerConfig config_;
  std::string config_path_;
  std::string log_path_;
  std::string stdout_path_;
  pid_t pid_ = 0;
};

// Time-limited TURN credentials of the REST API scheme coturn implements with use-auth-secret:
// username "<expiry unix time>:<user>", password base64(HMAC-SHA1(secret, username)).
struct RestCredentials {
  std::string username;
  std::string password;
};
RestCredentials turn_rest_credentials(const std::string& secret, const std::string& user,
                                      std::chrono::seconds ttl, std::time_t now = std::time(nullptr));

}  // namespace peerlink::netlab
