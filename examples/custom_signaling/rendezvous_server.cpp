// custom-signaling-server: a tiny rendezvous server for the "line" signaling plugin (line_signaling.hpp).
//
//   custom-signaling-server [--bind ADDRESS] [PORT]
//
// Listens on TCP ADDRESS:PORT (default 127.0.0.1, port 0 = any free port) and prints
// "listening on ADDRESS:PORT" on stdout once ready. Clients sign in with a name and the server forwards
// lines between them (the protocol is in line_protocol.hpp). One thread, non-blocking sockets, poll().
//
// Hostile input is bounded: lines over 4096 bytes, unknown commands, bad names, bad base64, a second
// HELLO, SEND before HELLO and names already taken get "ERROR <text>" and the connection is closed. A
// client that does not read what is sent to it is dropped once 256 KiB wait for it. SIGINT/SIGTERM stop the
// server cleanly (exit status 0).
//
// It authenticates nobody: a name belongs to whichever connection claims it first. A real server would
// log users in (password, token, TLS client certificate) before letting them use a name.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "line_protocol.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxClients = 1000;
constexpr size_t kMaxPendingOutput = 256 * 1024;               // per client
constexpr auto kCloseGrace = std::chrono::milliseconds(1000);  // to deliver the ERROR line before closing

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

struct Client {
  int fd = -1;
  uint64_t id = 0;
  std::string name;         // empty until HELLO
  std::string in;           // bytes received, not yet a complete line
  std::string out;          // bytes to send
  bool closing = false;     // sent (or is sending) ERROR: input is discarded, closed once out is flushed
  bool write_shut = false;  // shutdown(SHUT_WR) done after flushing
  bool dead = false;        // to be removed at the end of this round
  Clock::time_point close_deadline;
};

std::string describe(const Client& c) {
  return "#" + std::to_string(c.id) + (c.name.empty() ? std::string() : " (" + c.name + ")");
}

// Control characters and non-ASCII bytes of hostile input are not echoed as they are.
std::string printable(std::string_view text, size_t max = 40) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
  }
  if (text.size() > max) out += "...";
  return out;
}

class Server {
 public:
  explicit Server(int listen_fd) : listen_fd_(listen_fd) {}

  void run() {
    std::vector<pollfd> fds;
    while (!g_stop) {
      fds.clear();
      // Out of file descriptors: stop accepting for a moment instead of spinning on a readable listen socket.
      bool accepting = Clock::now() >= accept_paused_until_;
      fds.push_back({listen_fd_, short(accepting ? POLLIN : 0), 0});
      bool any_closing = false;
      for (const auto& c : clients_) {
        short events = POLLIN;
        if (!c->out.empty()) events |= POLLOUT;
        fds.push_back({c->fd, events, 0});
        any_closing |= c->closing;
      }
      // Wake up now and then to notice signals and the deadlines of closing clients.
      int ready = poll(fds.data(), fds.size(), any_closing || !accepting ? 100 : 500);
      if (ready < 0) {
        if (errno == EINTR) continue;
        std::perror("poll");
        return;
      }
      // fds[i + 1] belongs to clients_[i]; new clients are appended after this loop's snapshot.
      size_t polled = clients_.size();
      for (size_t i = 0; i < polled; ++i) {
        Client& c = *clients_[i];
        short revents = fds[i + 1].revents;
        if (c.dead) continue;
        if (revents & POLLNVAL) {
          c.dead = true;
          continue;
        }
        if (revents & (POLLIN | POLLHUP | POLLERR)) read_from(c);
        if (!c.dead && !c.out.empty() && (revents & (POLLOUT | POLLERR))) flush(c);
      }
      // Lines handled above may have queued output for clients that were not writable this round; try them
      // once now rather than waiting for the next poll.
      for (auto& c : clients_)
        if (!c->dead && !c->out.empty()) flush(*c);
      auto now = Clock::now();
      for (auto& c : clients_) {
        if (c->dead || !c->closing) continue;
        if (c->out.empty() && !c->write_shut) {
          shutdown(c->fd, SHUT_WR);  // the ERROR line is out; the client sees end of stream after it
          c->write_shut = true;
        }
        if (now >= c->close_deadline) c->dead = true;
      }
      if (fds[0].revents & POLLIN) accept_clients();
      remove_dead();
    }
    std::fprintf(stderr, "server: shutting down (%zu clients)\n", clients_.size());
    for (auto& c : clients_)
      close(c->fd);
    clients_.clear();
  }

 private:
  void accept_clients() {
    for (int n = 0; n < 64; ++n) {  // a bounded batch, so clients already connected are served too
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          std::fprintf(stderr, "server: accept: %s (pausing)\n", std::strerror(errno));
          accept_paused_until_ = Clock::now() + std::chrono::milliseconds(200);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
          std::fprintf(stderr, "server: accept: %s\n", std::strerror(errno));
        }
        return;
      }
      if (clients_.size() >= kMaxClients) {
        static const char kFull[] = "ERROR server full\n";
        (void)!send(fd, kFull, sizeof kFull - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        continue;
      }
      auto c = std::make_unique<Client>();
      c->fd = fd;
      c->id = ++next_id_;
      std::fprintf(stderr, "server: client %s connected\n", describe(*c).c_str());
      clients_.push_back(std::move(c));
    }
  }

  void read_from(Client& c) {
    char buffer[4096];
    // Read at most a few buffers per round, so one fast sender cannot starve the others.
    for (int round = 0; round < 16 && !c.dead; ++round) {
      ssize_t n = recv(c.fd, buffer, sizeof buffer, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        std::fprintf(stderr, "server: client %s: %s\n", describe(c).c_str(), std::strerror(errno));
        c.dead = true;
        return;
      }
      if (n == 0) {
        if (!c.closing) std::fprintf(stderr, "server: client %s disconnected\n", describe(c).c_str());
        c.dead = true;
        return;
      }
      if (c.closing) continue;  // discarded: we only wait for the client to read our ERROR and go
      c.in.append(buffer, size_t(n));
      size_t start = 0;
      for (;;) {
        size_t end = c.in.find('\n', start);
        if (end == std::string::npos) break;
        std::string_view line(c.in.data() + start, end - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        start = end + 1;
        if (line.size() > line_protocol::kMaxLine) {
          fail(c, "line too long (limit " + std::to_string(line_protocol::kMaxLine) + " bytes)");
          return;
        }
        handle_line(c, line);
        if (c.closing || c.dead) return;
      }
      c.in.erase(0, start);
      if (c.in.size() > line_protocol::kMaxLine) {
        fail(c, "line too long (limit " + std::to_string(line_protocol::kMaxLine) + " bytes)");
        return;
      }
    }
  }

  void handle_line(Client& c, std::string_view line) {
    std::string_view rest = line;
    std::string_view command = line_protocol::next_field(rest);
    if (command == "HELLO") {
      if (!c.name.empty()) return fail(c, "HELLO sent twice");
      if (!line_protocol::valid_name(rest))
        return fail(c, "invalid name (1-64 characters of A-Z a-z 0-9 . _ -)");
      std::string name(rest);
      if (by_name_.count(name)) return fail(c, "name already taken: " + name);
      c.name = name;
      by_name_[name] = &c;
      std::fprintf(stderr, "server: client %s signed in\n", describe(c).c_str());
    } else if (command == "SEND") {
      if (c.name.empty()) return fail(c, "SEND before HELLO");
      std::string_view to = line_protocol::next_field(rest);
      if (!line_protocol::valid_name(to))
        return fail(c, "invalid name (1-64 characters of A-Z a-z 0-9 . _ -)");
      std::vector<uint8_t> scratch;
      if (!line_protocol::base64_decode(rest, scratch)) return fail(c, "the blob is not valid base64");
      auto it = by_name_.find(std::string(to));
      if (it == by_name_.end() || it->second->closing || it->second->dead) {
        queue(c, "UNREACHABLE " + std::string(to) + " not connected to this server\n");
        return;
      }
      queue(*it->second, "FROM " + c.name + " " + std::string(rest) + "\n");
    } else if (command.empty()) {
      fail(c, "empty command");
    } else {
      fail(c, "unknown command: " + printable(command));
    }
  }

  // Queues a line for a client. A client that lets too much pile up is not reading: it is dropped.
  void queue(Client& c, const std::string& line) {
    if (c.dead) return;
    if (c.out.size() + line.size() > kMaxPendingOutput) {
      std::fprintf(stderr, "server: client %s is not reading; dropping it\n", describe(c).c_str());
      c.dead = true;
      return;
    }
    c.out += line;
  }

  // Answers "ERROR <text>" and closes the connection once that line is out (or after a grace period).
  void fail(Client& c, const std::string& text) {
    std::fprintf(stderr, "server: client %s: ERROR %s\n", describe(c).c_str(), text.c_str());
    c.in.clear();
    c.in.shrink_to_fit();
    c.out += "ERROR " + text + "\n";  // may exceed the output limit by this one line
    c.closing = true;
    c.close_deadline = Clock::now() + kCloseGrace;
    if (!c.name.empty()) {
      by_name_.erase(c.name);  // the name is free again at once
      c.name.clear();
    }
  }

  void flush(Client& c) {
    while (!c.out.empty()) {
      ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        if (!c.closing)
          std::fprintf(stderr, "server: client %s: send: %s\n", describe(c).c_str(), std::strerror(errno));
        c.dead = true;
        return;
      }
      c.out.erase(0, size_t(n));
    }
  }

  void remove_dead() {
    for (size_t i = 0; i < clients_.size();) {
      Client& c = *clients_[i];
      if (!c.dead) {
        ++i;
        continue;
      }
      if (!c.name.empty()) {
        auto it = by_name_.find(c.name);
        if (it != by_name_.end() && it->second == &c) by_name_.erase(it);
      }
      close(c.fd);
      clients_.erase(clients_.begin() + i);
    }
  }

  int listen_fd_;
  uint64_t next_id_ = 0;
  Clock::time_point accept_paused_until_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::unordered_map<std::string, Client*> by_name_;
};

void usage(const char* argv0) {
  std::fprintf(
      stderr,
      "usage: %s [--bind IPV4-ADDRESS] [PORT]\n"
      "  a rendezvous server for the 'line' signaling plugin; PORT 0 (the default) picks a free one\n",
      argv0);
}

}  // namespace

int main(int argc, char** argv) {
  std::string bind_address = "127.0.0.1";
  long port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--bind" && i + 1 < argc) {
      bind_address = argv[++i];
    } else if (arg == "-h" || arg == "--help") {
      usage(argv[0]);
      return 0;
    } else {
      char* end = nullptr;
      errno = 0;
      port = std::strtol(arg.c_str(), &end, 10);
      if (arg.empty() || *end != '\0' || errno != 0 || port < 0 || port > 65535) {
        usage(argv[0]);
        return 2;
      }
    }
  }

  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(uint16_t(port));
  if (inet_pton(AF_INET, bind_address.c_str(), &address.sin_addr) != 1) {
    std::fprintf(stderr, "not an IPv4 address: %s\n", bind_address.c_str());
    return 2;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);  // no SA_RESTART: poll() returns EINTR at once
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // belt and braces: every send() already passes MSG_NOSIGNAL

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("socket");
    return 1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 || listen(fd, 128) != 0) {
    std::fprintf(stderr, "cannot listen on %s:%ld: %s\n", bind_address.c_str(), port, std::strerror(errno));
    close(fd);
    return 1;
  }
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  std::printf("listening on %s:%u\n", bind_address.c_str(), unsigned(ntohs(address.sin_port)));
  std::fflush(stdout);

  Server(fd).run();
  close(fd);
  return 0;
}
