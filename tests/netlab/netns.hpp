// Network namespaces and child processes for the NAT lab: running a command (no shell) inside a named
// namespace with a bounded run time, and moving the calling thread into a namespace for a scope.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace peerlink::netlab {

struct CommandResult {
  int status = -1;     // exit code; -1 when it could not be started, timed out or died from a signal
  std::string output;  // stdout and stderr, interleaved
  bool ok() const { return status == 0; }
};

// Runs argv[0] (looked up in PATH) with argv, without a shell, inside the network namespace `netns`
// (/run/netns/<netns>) or, when it is empty, in the caller's. `input` is fed to its standard input. A child
// still running after `timeout` is killed. Never throws.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& netns = "",
                          const std::string& input = "",
                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

// As run_command, but throws std::runtime_error (with the command line and its output) unless it exits 0.
std::string run_checked(const std::vector<std::string>& argv, const std::string& netns = "",
                        const std::string& input = "");

// Full path of an executable found in PATH (or the sbin directories), or "" when there is none.
std::string find_executable(const std::string& name);

// Starts argv in the namespace `netns` as a child of the calling thread, its stdout and stderr appended to
// `log_path`, stdin from /dev/null, every other descriptor closed. The child gets SIGKILL when the thread
// that started it exits (PR_SET_PDEATHSIG), so a crashed test leaves no server behind. Returns its PID;
// throws std::runtime_error when it cannot be started.
pid_t spawn_in_netns(const std::vector<std::string>& argv, const std::string& netns,
                     const std::string& log_path);

// Stops a child started by spawn_in_netns: SIGTERM, then SIGKILL after `grace`; reaps it. Only ever pass
// PIDs this process started.
void stop_child(pid_t pid, std::chrono::milliseconds grace = std::chrono::milliseconds(1000));

// Whether /run/netns/<name> exists.
bool netns_exists(const std::string& name);

// Names in /run/netns (what `ip netns list` shows).
std::vector<std::string> list_netns();

// Moves the calling thread (only it: network namespaces are per thread) into /run/netns/<name> for its
// lifetime and back into the thread's previous namespace on destruction. Everything created meanwhile
// belongs to that namespace for good: sockets (they keep working after the scope ends) and threads
// started inside the scope (they inherit the namespace and stay in it). That is how a test puts a peer's
// Host into a peer namespace: construct the Host inside a NetnsScope and its service thread and sockets
// live there. Throws std::runtime_error when the namespace cannot be entered. Not copyable, not movable;
// nest scopes strictly (destroy in reverse order).
class NetnsScope {
 public:
  explicit NetnsScope(const std::string& name);
  ~NetnsScope();
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;

 private:
  int saved_fd_ = -1;
};

// Inode number of the calling thread's network namespace (to compare namespaces in checks).
unsigned long current_netns_inode();

// Writes /proc/sys/<key> (e.g. "net/ipv4/ip_forward") inside the namespace `ns`, never the root
// namespace's: it checks that the writing thread is in `ns` first. With `optional`, a key this kernel does
// not have is skipped. Throws std::runtime_error when it cannot.
void set_sysctl(const std::string& ns, const std::string& key, const std::string& value,
                bool optional = false);

}  // namespace peerlink::netlab
