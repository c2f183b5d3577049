#include "two_process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <thread>

#include "teardown.hpp"

namespace peerlink::bench {

namespace {

// Exit codes of the forked child before it becomes the server; see exit_description().
constexpr int kExitSetnsFailed = 120;
constexpr int kExitExecFailed = 121;

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

ServerProcess::ServerProcess(const NetworkPath& path, const std::string& role,
                             const std::vector<std::string>& extra_args, double lifetime_seconds)
    : role_(role) {
  char lifetime[32];
  std::snprintf(lifetime, sizeof lifetime, "%d", int(lifetime_seconds + 1));
  std::vector<std::string> args = {"peerlink-bench", "--role",     role,    "--bind",
                                   path.server_ip,   "--lifetime", lifetime};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  int to[2], from[2];
  if (pipe2(to, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  if (pipe2(from, O_CLOEXEC) != 0) {
    close(to[0]);
    close(to[1]);
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  // No signal handler of ours may run in the child between fork and exec.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    // The child: only system calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(kExitExecFailed);
    if (path.server_netns_fd >= 0 && setns(path.server_netns_fd, CLONE_NEWNET) != 0) _exit(kExitSetnsFailed);
    dup2(to[0], STDIN_FILENO);
    dup2(from[1], STDOUT_FILENO);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL, SIGPIPE})
      signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(kExitExecFailed);
  }
  int fork_errno = errno;
  if (pid > 0) teardown::track_child(pid);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(to[0]);
  close(from[1]);
  if (pid < 0) {
    close(to[1]);
    close(from[0]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(fork_errno));
  }
  pid_ = pid;
  to_child_ = to[1];
  from_child_ = from[0];
  reader_ = LineReader(from_child_);
  try {
    ready_ = expect("ready", 10.0);
  } catch (...) {
    stop();
    throw;
  }
}

ServerProcess::~ServerProcess() {
  stop();
}

void ServerProcess::send(const std::string& line) {
  if (to_child_ < 0 || !write_line(to_child_, line))
    throw std::runtime_error("server " + role_ + " is gone (" + exit_description() + ")");
}

ControlMessage ServerProcess::expect(const std::string& verb, double timeout_seconds) {
  auto line = reader_.read_line(int(timeout_seconds * 1000));
  if (!line) {
    if (reader_.timed_out())
      throw std::runtime_error("server " + role_ + " did not answer '" + verb + "' within " +
                               std::to_string(timeout_seconds) + " s");
    throw std::runtime_error("server " + role_ + " exited before '" + verb + "' (" + exit_description() +
                             ")");
  }
  ControlMessage m = ControlMessage::parse(*line);
  if (m.verb == "error") throw std::runtime_error("server " + role_ + ": " + m.text);
  if (m.verb != verb)
    throw std::runtime_error("server " + role_ + " said '" + *line + "', not '" + verb + "'");
  return m;
}

std::string ServerProcess::exit_description() {
  if (pid_ < 0) return "already reaped";
  int status = 0;
  // It may still be flushing its last words: give it a moment to finish exiting.
  pid_t r = 0;
  for (int i = 0; i < 100 && (r = waitpid(pid_, &status, WNOHANG)) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (r == 0) return "still running";
  if (r < 0) return std::string("waitpid: ") + std::strerror(errno);
  teardown::untrack_child(pid_);
  pid_ = -1;
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  int code = WEXITSTATUS(status);
  if (code == kExitSetnsFailed) return "could not enter the server's network namespace";
  if (code == kExitExecFailed) return "could not exec /proc/self/exe";
  return "exit status " + std::to_string(code);
}

void ServerProcess::stop() {
  close_fd(to_child_);
  if (pid_ > 0) {
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < 300 && (r = waitpid(pid_, &status, WNOHANG)) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (r == 0) {
      std::fprintf(stderr, "peerlink-bench: server %s (pid %d) did not exit within 3 s; killing it\n",
                   role_.c_str(), int(pid_));
      kill(pid_, SIGKILL);
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    teardown::untrack_child(pid_);
    pid_ = -1;
  }
  close_fd(from_child_);
}

}  // namespace peerlink::bench
