// Two network namespaces joined by a veth pair, for --netns runs, built as NETWORK-SAFETY.md asks: unique
// names (plb-<pid>-a, plb-<pid>-b), the veth created directly inside them, documentation addresses
// (198.51.100.1/24 in a, 198.51.100.2/24 in b), nothing in the root namespace. The destructor deletes both
// (their veth ends go with them); a fatal signal does the same through teardown.hpp.
//
//   auto pair = NamespacePair::create(&error);      // needs root
//   ScopedNamespace in_a(pair->client_fd());        // this thread (and threads it starts) now live in a
//   path.server_netns_fd = pair->server_fd();       // the server child enters b
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace peerlink::bench {

// Runs argv[0] (found on PATH) with argv, waits for it; its own diagnostics go to our stderr. "" on success,
// else what failed.
std::string run_program(std::vector<std::string> argv);

class NamespacePair {
 public:
  static constexpr const char* kClientIp = "198.51.100.1";
  static constexpr const char* kServerIp = "198.51.100.2";

  // Null and the reason on failure; whatever was created before the failure is deleted again.
  static std::unique_ptr<NamespacePair> create(std::string* error);
  ~NamespacePair();
  NamespacePair(const NamespacePair&) = delete;
  NamespacePair& operator=(const NamespacePair&) = delete;

  const std::string& client_name() const { return names_[0]; }
  const std::string& server_name() const { return names_[1]; }
  int client_fd() const { return fds_[0]; }  // open /run/netns/<name>, for setns()
  int server_fd() const { return fds_[1]; }

 private:
  NamespacePair() = default;
  std::string names_[2];
  std::string paths_[2];
  int fds_[2] = {-1, -1};
};

// Moves the calling thread into a network namespace and back to the one it came from when destroyed.
// Threads started meanwhile stay in the new namespace, and so do sockets opened there: destroy everything
// that uses it first. Throws std::runtime_error if setns() fails.
class ScopedNamespace {
 public:
  explicit ScopedNamespace(int netns_fd);
  ~ScopedNamespace();
  ScopedNamespace(const ScopedNamespace&) = delete;
  ScopedNamespace& operator=(const ScopedNamespace&) = delete;

 private:
  int original_fd_ = -1;
};

}  // namespace peerlink::bench
