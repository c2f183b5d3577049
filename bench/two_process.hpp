// The server side of a two-process scenario: this same program started again (/proc/self/exe) with the
// hidden arguments `--role <role> --bind <ip> --lifetime <s> ...`, optionally inside the server's network
// namespace, controlled through its stdin and stdout (control_protocol.hpp).
//
//   ServerProcess server(path, "udp-sink", {});
//   uint16_t port = uint16_t(server.ready().u64("port"));
//   ...
//   server.send("mark"); ... server.send("stop");
//   ControlMessage result = server.expect("result", 5.0);
//
// The child is killed and reaped by the destructor, by a fatal signal to us (teardown.hpp), and by the
// kernel if we die (PR_SET_PDEATHSIG); its own --lifetime alarm bounds it in any case. Start servers from
// the main thread only: the death signal follows the thread that forked.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "control_protocol.hpp"

namespace peerlink::bench {

// Where the two processes talk: over loopback, or from our namespace to the server's over a veth pair.
struct NetworkPath {
  std::string name = "loopback";  // printed as the figures' "path"
  std::string server_ip = "127.0.0.1";
  std::string client_ip = "127.0.0.1";
  int server_netns_fd = -1;  // -1: the server runs in our namespace
};

class ServerProcess {
 public:
  // Starts the child and waits (up to 10 s) for its "ready" line. Throws std::runtime_error if it cannot
  // start or reports an error; the child is gone by then.
  ServerProcess(const NetworkPath& path, const std::string& role, const std::vector<std::string>& extra_args,
                double lifetime_seconds = 120);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const ControlMessage& ready() const { return ready_; }
  pid_t pid() const { return pid_; }

  // Throws std::runtime_error if the child is gone.
  void send(const std::string& line);
  // The next line, which must have this verb. Throws std::runtime_error on an "error" line, another verb, a
  // timeout or the child's exit (with its exit status).
  ControlMessage expect(const std::string& verb, double timeout_seconds);
  // Closes its stdin (it exits at end of input), waits up to 3 s, then SIGKILLs it; always reaps it.
  void stop();

 private:
  std::string exit_description();

  std::string role_;
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  LineReader reader_{-1};
  ControlMessage ready_;
};

}  // namespace peerlink::bench
