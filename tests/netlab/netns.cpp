#include "netlab/netns.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace peerlink::netlab {
namespace {

using Clock = std::chrono::steady_clock;

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Writes a message to fd 2 of a forked child (async-signal-safe).
void child_fail(const char* what) {
  const char* err = std::strerror(errno);
  ssize_t ignored = write(2, what, std::strlen(what));
  ignored = write(2, ": ", 2);
  ignored = write(2, err, std::strlen(err));
  ignored = write(2, "\n", 1);
  (void)ignored;
}

// argv as the char* array execv wants; the strings must outlive it.
std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> v;
  v.reserve(argv.size() + 1);
  for (const auto& a : argv)
    v.push_back(const_cast<char*>(a.c_str()));
  v.push_back(nullptr);
  return v;
}

// Steps every forked child takes before exec: die with the parent thread, enter the namespace.
void child_prepare(pid_t parent, int ns_fd) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(125);
  if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) != 0) {
    child_fail("setns");
    _exit(126);
  }
}

int open_netns(const std::string& netns, std::string* error) {
  if (netns.empty()) return -1;
  int fd = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) *error = errno_text("open /run/netns/" + netns);
  return fd;
}

}  // namespace

std::string find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* env = std::getenv("PATH");
  std::string path =
      std::string(env ? env : "") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string full = dir + "/" + name;
    struct stat st {};
    if (stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(full.c_str(), X_OK) == 0) return full;
  }
  return "";
}

CommandResult run_command(const std::vector<std::string>& argv, const std::string& netns,
                          const std::string& input, std::chrono::milliseconds timeout) {
  CommandResult r;
  if (argv.empty()) {
    r.output = "empty command";
    return r;
  }
  std::vector<std::string> args = argv;
  args[0] = find_executable(argv[0]);
  if (args[0].empty()) {
    r.output = argv[0] + ": not found in PATH";
    return r;
  }
  std::string error;
  int ns_fd = open_netns(netns, &error);
  if (!netns.empty() && ns_fd < 0) {
    r.output = error;
    return r;
  }
  // stdin is a socket so that writing to a child that already exited gives EPIPE, not SIGPIPE.
  int in_sock[2];
  int out_pipe[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_sock) != 0) {
    r.output = errno_text("socketpair");
    if (ns_fd >= 0) close(ns_fd);
    return r;
  }
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    r.output = errno_text("pipe2");
    close(in_sock[0]);
    close(in_sock[1]);
    if (ns_fd >= 0) close(ns_fd);
    return r;
  }
  std::vector<char*> cargv = c_argv(args);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    child_prepare(parent, ns_fd);
    if (dup2(in_sock[1], 0) < 0 || dup2(out_pipe[1], 1) < 0 || dup2(out_pipe[1], 2) < 0) _exit(124);
    close_range(3, ~0U, 0);
    execv(cargv[0], cargv.data());
    child_fail("execv");
    _exit(127);
  }
  close(in_sock[1]);
  close(out_pipe[1]);
  if (ns_fd >= 0) close(ns_fd);
  if (pid < 0) {
    r.output = errno_text("fork");
    close(in_sock[0]);
    close(out_pipe[0]);
    return r;
  }

  size_t written = 0;
  int in_fd = in_sock[0];
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
    int n = poll(fds, in_fd >= 0 ? 2 : 1, static_cast<int>(left));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (in_fd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = send(in_fd, input.data() + written, input.size() - written, MSG_NOSIGNAL);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
      if (written >= input.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t got = read(out_pipe[0], buf, sizeof buf);
      if (got > 0) r.output.append(buf, static_cast<size_t>(got));
      if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) break;
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out_pipe[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    r.output += "\n(killed after " + std::to_string(timeout.count()) + " ms)";
    r.status = -1;
  } else if (WIFEXITED(status)) {
    r.status = WEXITSTATUS(status);
  } else {
    r.status = -1;
    r.output += "\n(died from signal " + std::to_string(WTERMSIG(status)) + ")";
  }
  return r;
}

std::string run_checked(const std::vector<std::string>& argv, const std::string& netns,
                        const std::string& input) {
  CommandResult r = run_command(argv, netns, input);
  if (!r.ok()) {
    throw std::runtime_error("netlab: `" + join(argv) + "`" + (netns.empty() ? "" : " in netns " + netns) +
                             " failed (status " + std::to_string(r.status) + "): " + r.output +
                             (input.empty() ? "" : "\n--- input ---\n" + input));
  }
  return r.output;
}

pid_t spawn_in_netns(const std::vector<std::string>& argv, const std::string& netns,
                     const std::string& log_path) {
  if (argv.empty()) throw std::runtime_error("netlab: spawn of an empty command");
  std::vector<std::string> args = argv;
  args[0] = find_executable(argv[0]);
  if (args[0].empty()) throw std::runtime_error("netlab: " + argv[0] + " not found in PATH");
  std::string error;
  int ns_fd = open_netns(netns, &error);
  if (!netns.empty() && ns_fd < 0) throw std::runtime_error("netlab: " + error);
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int status_pipe[2] = {-1, -1};  // closed by a successful exec; carries errno otherwise
  if (log_fd < 0 || null_fd < 0 || pipe2(status_pipe, O_CLOEXEC) != 0) {
    std::string what = errno_text("open " + log_path + " / pipe");
    for (int fd : {ns_fd, log_fd, null_fd, status_pipe[0], status_pipe[1]})
      if (fd >= 0) close(fd);
    throw std::runtime_error("netlab: " + what);
  }
  std::vector<char*> cargv = c_argv(args);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    child_prepare(parent, ns_fd);
    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) _exit(124);
    if (status_pipe[1] != 3) {
      if (dup2(status_pipe[1], 3) < 0) _exit(124);
    }
    fcntl(3, F_SETFD, FD_CLOEXEC);
    close_range(4, ~0U, 0);
    execv(cargv[0], cargv.data());
    int e = errno;
    ssize_t ignored = write(3, &e, sizeof e);
    (void)ignored;
    _exit(127);
  }
  if (ns_fd >= 0) close(ns_fd);
  close(log_fd);
  close(null_fd);
  close(status_pipe[1]);
  if (pid < 0) {
    close(status_pipe[0]);
    throw std::runtime_error(errno_text("netlab: fork"));
  }
  int child_errno = 0;
  ssize_t got;
  do {
    got = read(status_pipe[0], &child_errno, sizeof child_errno);
  } while (got < 0 && errno == EINTR);
  close(status_pipe[0]);
  if (got != 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    throw std::runtime_error("netlab: could not start " + join(argv) + " in netns " + netns + ": " +
                             (got == sizeof child_errno ? std::strerror(child_errno) : "setup failed") +
                             " (see " + log_path + ")");
  }
  return pid;
}

void stop_child(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return;
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == pid) return;  // already gone (reaped now)
  kill(pid, SIGTERM);
  const auto deadline = Clock::now() + grace;
  while (Clock::now() < deadline) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid || (w < 0 && errno == ECHILD)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

bool netns_exists(const std::string& name) {
  struct stat st {};
  return stat(("/run/netns/" + name).c_str(), &st) == 0;
}

std::vector<std::string> list_netns() {
  std::vector<std::string> names;
  DIR* d = opendir("/run/netns");
  if (!d) return names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  return names;
}

NetnsScope::NetnsScope(const std::string& name) {
  saved_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved_fd_ < 0) throw std::runtime_error(errno_text("netlab: open /proc/thread-self/ns/net"));
  int fd = open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::string what = errno_text("netlab: open /run/netns/" + name);
    close(saved_fd_);
    throw std::runtime_error(what);
  }
  if (setns(fd, CLONE_NEWNET) != 0) {
    std::string what = errno_text("netlab: setns into " + name);
    close(fd);
    close(saved_fd_);
    throw std::runtime_error(what);
  }
  close(fd);
}

NetnsScope::~NetnsScope() {
  if (setns(saved_fd_, CLONE_NEWNET) != 0) {
    std::perror("netlab: setns back to the original network namespace");
    std::abort();  // a thread left in a lab namespace would silently test the wrong thing
  }
  close(saved_fd_);
}

unsigned long current_netns_inode() {
  struct stat st {};
  if (stat("/proc/thread-self/ns/net", &st) != 0) return 0;
  return static_cast<unsigned long>(st.st_ino);
}

void set_sysctl(const std::string& ns, const std::string& key, const std::string& value, bool optional) {
  struct stat target {};
  if (stat(("/run/netns/" + ns).c_str(), &target) != 0)
    throw std::runtime_error("netlab: no namespace " + ns);
  NetnsScope scope(ns);
  // /proc/sys/net belongs to the namespace of the calling thread; make sure that is the test's, never root's.
  if (current_netns_inode() != static_cast<unsigned long>(target.st_ino))
    throw std::runtime_error("netlab: not inside namespace " + ns + "; refusing to write /proc/sys/" + key);
  if (optional && access(("/proc/sys/" + key).c_str(), F_OK) != 0) return;
  std::ofstream f("/proc/sys/" + key);
  f << value << "\n";
  f.close();
  if (!f) throw std::runtime_error("netlab: cannot write /proc/sys/" + key + " in " + ns);
}

}  // namespace peerlink::netlab
