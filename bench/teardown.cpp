#include "teardown.hpp"

#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <initializer_list>

namespace peerlink::bench::teardown {

namespace {

constexpr int kMaxChildren = 16;
constexpr int kMaxNamespaces = 4;
constexpr size_t kPathSize = 128;

std::atomic<pid_t> g_children[kMaxChildren];
// A slot's path is written while its flag is clear, then published by setting the flag.
char g_namespace_paths[kMaxNamespaces][kPathSize];
std::atomic<bool> g_namespace_used[kMaxNamespaces];
std::atomic<bool> g_installed{false};

void cleanup_all() {
  for (auto& slot : g_children) {
    pid_t pid = slot.exchange(0);
    if (pid > 0) {
      kill(pid, SIGKILL);
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  for (int i = 0; i < kMaxNamespaces; ++i) {
    if (g_namespace_used[i].exchange(false)) delete_namespace(g_namespace_paths[i]);
  }
}

void on_fatal_signal(int sig) {
  int saved_errno = errno;
  cleanup_all();
  static const char msg[] = "peerlink-bench: interrupted; children and namespaces removed\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  errno = saved_errno;
  if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) _exit(128 + sig);
  // A crash: let the default action (core dump) happen once the cleanup is done.
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void install_signal_handlers() {
  if (g_installed.exchange(true)) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal_signal;
  sigfillset(&sa.sa_mask);  // one cleanup at a time
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL})
    sigaction(sig, &sa, nullptr);
  // A child that died must not kill us when we write to its pipe; the write then fails with EPIPE.
  signal(SIGPIPE, SIG_IGN);
}

void track_child(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, pid)) return;
  }
}

void untrack_child(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void track_namespace(const char* path) {
  for (int i = 0; i < kMaxNamespaces; ++i) {
    if (g_namespace_used[i].load()) continue;
    std::strncpy(g_namespace_paths[i], path, kPathSize - 1);
    g_namespace_paths[i][kPathSize - 1] = '\0';
    g_namespace_used[i].store(true);
    return;
  }
}

void untrack_namespace(const char* path) {
  for (int i = 0; i < kMaxNamespaces; ++i) {
    if (g_namespace_used[i].load() && std::strcmp(g_namespace_paths[i], path) == 0) {
      g_namespace_used[i].store(false);
      return;
    }
  }
}

bool delete_namespace(const char* path) {
  umount2(path, MNT_DETACH);
  return unlink(path) == 0;
}

}  // namespace peerlink::bench::teardown
