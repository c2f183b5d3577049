#include "netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "teardown.hpp"

extern char** environ;

namespace peerlink::bench {

std::string run_program(std::vector<std::string> all) {
  std::vector<char*> argv;
  for (auto& a : all)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string command;
  for (const auto& a : all)
    command += (command.empty() ? "" : " ") + a;
  pid_t pid;
  int err = posix_spawnp(&pid, all.at(0).c_str(), nullptr, nullptr, argv.data(), environ);
  if (err != 0) return "cannot run '" + command + "': " + std::strerror(err);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "'" + command + "' failed";
  return "";
}

namespace {

std::string run_ip(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"ip"};
  all.insert(all.end(), args.begin(), args.end());
  return run_program(all);
}

}  // namespace

std::unique_ptr<NamespacePair> NamespacePair::create(std::string* error) {
  std::unique_ptr<NamespacePair> pair(new NamespacePair());
  std::string prefix = "plb-" + std::to_string(getpid()) + "-";
  pair->names_[0] = prefix + "a";
  pair->names_[1] = prefix + "b";
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return nullptr;  // the destructor deletes what was created
  };
  for (int i = 0; i < 2; ++i) {
    std::string path = "/run/netns/" + pair->names_[i];
    // Never adopt (and later delete) a namespace someone else made.
    if (access(path.c_str(), F_OK) == 0)
      return fail("network namespace " + pair->names_[i] + " already exists");
    teardown::track_namespace(path.c_str());
    pair->paths_[i] = path;
    std::string why = run_ip({"netns", "add", pair->names_[i]});
    if (!why.empty()) {
      teardown::untrack_namespace(path.c_str());
      pair->paths_[i].clear();
      return fail(why);
    }
  }
  const std::string& a = pair->names_[0];
  const std::string& b = pair->names_[1];
  std::string a_cidr = std::string(kClientIp) + "/24", b_cidr = std::string(kServerIp) + "/24";
  const std::vector<std::vector<std::string>> steps = {
      {"-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b},
      {"-n", a, "addr", "add", a_cidr, "dev", "eth0"},
      {"-n", b, "addr", "add", b_cidr, "dev", "eth0"},
      {"-n", a, "link", "set", "lo", "up"},
      {"-n", b, "link", "set", "lo", "up"},
      {"-n", a, "link", "set", "eth0", "up"},
      {"-n", b, "link", "set", "eth0", "up"},
  };
  for (const auto& step : steps) {
    std::string why = run_ip(step);
    if (!why.empty()) return fail(why);
  }
  for (int i = 0; i < 2; ++i) {
    pair->fds_[i] = open(pair->paths_[i].c_str(), O_RDONLY | O_CLOEXEC);
    if (pair->fds_[i] < 0) return fail("open " + pair->paths_[i] + ": " + std::strerror(errno));
  }
  return pair;
}

NamespacePair::~NamespacePair() {
  for (int i = 0; i < 2; ++i) {
    if (fds_[i] >= 0) close(fds_[i]);
    if (paths_[i].empty()) continue;
    teardown::delete_namespace(paths_[i].c_str());
    teardown::untrack_namespace(paths_[i].c_str());
  }
}

ScopedNamespace::ScopedNamespace(int netns_fd) {
  original_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original_fd_ < 0)
    throw std::runtime_error(std::string("open /proc/thread-self/ns/net: ") + std::strerror(errno));
  if (setns(netns_fd, CLONE_NEWNET) != 0) {
    int err = errno;
    close(original_fd_);
    throw std::runtime_error(std::string("setns: ") + std::strerror(err));
  }
}

ScopedNamespace::~ScopedNamespace() {
  setns(original_fd_, CLONE_NEWNET);
  close(original_fd_);
}

}  // namespace peerlink::bench
