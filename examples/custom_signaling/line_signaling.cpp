// LineSignaling: see line_signaling.hpp; the protocol is in line_protocol.hpp.
#include "line_signaling.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "line_protocol.hpp"

namespace {

constexpr size_t kMaxQueued = 256;          // blobs waiting for the plugin's thread; beyond: dropped
constexpr size_t kMaxBuffered = 16 * 1024;  // bytes handed to the socket writer at a time

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : int(left.count());
}

}  // namespace

LineSignaling::LineSignaling(Options options) : options_(std::move(options)) {
  if (!line_protocol::valid_name(options_.name))
    throw std::invalid_argument("line signaling: invalid name '" + options_.name +
                                "' (1-64 characters of A-Z a-z 0-9 . _ -)");
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "line signaling: pipe2");
  wake_read_ = fds[0];
  wake_write_ = fds[1];
}

LineSignaling::~LineSignaling() {
  if (thread_.joinable()) stop();
  close(wake_read_);
  close(wake_write_);
}

// --- the SignalingPlugin contract ---

// On the application's thread, inside the Host's constructor: must not wait for the network, so the
// connection is made by our own thread.
void LineSignaling::start(peerlink::SignalingSink& sink) {
  if (thread_.joinable()) throw std::logic_error("line signaling: start() called twice");
  sink_ = &sink;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = State::kConnecting;
  }
  thread_ = std::thread([this] { run(); });
}

// On the Host's service thread: format, queue, poke our thread, return. Nothing here waits for the network;
// the only lock is held for a push_back.
void LineSignaling::send(const peerlink::PeerId& to, const void* blob, size_t size) {
  Outgoing item;
  item.to = to;
  if (size == 0 || size > peerlink::kMaxSignalingBlob) {
    // The Host never does this; a plugin should still not forward what the peer's Host would drop.
    log("dropping a blob of " + std::to_string(size) + " bytes to " + to.str() + " (limit " +
        std::to_string(peerlink::kMaxSignalingBlob) + ")");
    return;
  }
  std::string_view name = to.name();
  if (to.scheme() != "line" || !line_protocol::valid_name(name)) {
    // A PeerId may hold names this server cannot: tell the Host at once instead of letting it time out.
    item.detail = "'" + to.str() + "' is not a valid name for the line rendezvous server";
  } else {
    item.line.reserve(16 + name.size() + (size + 2) / 3 * 4);
    item.line += "SEND ";
    item.line += name;
    item.line += ' ';
    item.line += line_protocol::base64_encode(blob, size);
    item.line += '\n';
  }
  bool poke = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    if (queue_.size() >= kMaxQueued) {
      ++dropped_;  // best effort: the Host retransmits what matters
      return;
    }
    poke = queue_.empty();
    queue_.push_back(std::move(item));
  }
  if (poke) (void)!write(wake_write_, "x", 1);  // non-blocking pipe: a full pipe already means "wake up"
}

// On the application's thread, inside the Host's destructor, after the last send(). When it returns our
// thread is gone, so the sink is never called again.
void LineSignaling::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  (void)!write(wake_write_, "x", 1);
  if (thread_.joinable()) thread_.join();
  set_state(State::kStopped);
  std::lock_guard<std::mutex> lock(mutex_);
  queue_.clear();
}

// --- for the application ---

LineSignaling::State LineSignaling::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

bool LineSignaling::wait_ready(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  state_changed_.wait_for(lock, timeout, [this] {
    return state_ == State::kReady || state_ == State::kDown || state_ == State::kStopped;
  });
  return state_ == State::kReady;
}

std::string LineSignaling::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

uint64_t LineSignaling::dropped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dropped_;
}

// --- the plugin's thread ---

void LineSignaling::run() {
  int fd = -1;
  if (connect_to_server(fd)) serve(fd);  // returns once stopping, or once the connection is lost
  stay_down();                           // returns once stopping
}

// Non-blocking connect, so that stop() can interrupt it through the wake pipe.
bool LineSignaling::connect_to_server(int& fd) {
  const std::string where = options_.server_host + ":" + std::to_string(options_.server_port);
  auto fail = [&](const std::string& why) {
    if (fd >= 0) close(fd);
    fd = -1;
    set_state(State::kDown, "cannot connect to the rendezvous server " + where + ": " + why);
    return false;
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;  // never a DNS lookup here
  addrinfo* found = nullptr;
  int rc =
      getaddrinfo(options_.server_host.c_str(), std::to_string(options_.server_port).c_str(), &hints, &found);
  if (rc != 0 || !found) return fail(std::string("bad address: ") + gai_strerror(rc));
  fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(found);
    return fail(std::strerror(errno));
  }
  rc = ::connect(fd, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  if (rc != 0 && errno != EINPROGRESS) return fail(std::strerror(errno));
  auto deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
  while (rc != 0) {
    pollfd fds[2] = {{fd, POLLOUT, 0}, {wake_read_, POLLIN, 0}};
    int ready = poll(fds, 2, remaining_ms(deadline));
    if (ready < 0 && errno != EINTR) return fail(std::string("poll: ") + std::strerror(errno));
    if (fds[1].revents) {
      drain_wakeups();
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) {
        close(fd);
        fd = -1;
        return false;
      }
    }
    if (fds[0].revents) {
      int error = 0;
      socklen_t length = sizeof error;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) return fail(std::strerror(error));
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return fail("timed out");
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // blobs are small and latency matters
  return true;
}

void LineSignaling::serve(int fd) {
  std::string out = "HELLO " + options_.name + "\n";
  size_t hello_left = out.size();  // signed in once these bytes are written
  std::string in;
  std::vector<Outgoing> unreachable;
  std::string lost;  // why the connection ended; empty while it lasts
  char buffer[4096];
  for (;;) {
    // Take queued work: lines go to the socket buffer, unreachable notices to the sink.
    unreachable.clear();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) break;
      while (!queue_.empty() && out.size() < kMaxBuffered) {
        Outgoing& item = queue_.front();
        if (item.line.empty())
          unreachable.push_back(std::move(item));
        else
          out += item.line;
        queue_.pop_front();
      }
    }
    for (const Outgoing& item : unreachable)
      sink_->peer_unreachable(item.to, item.detail);

    pollfd fds[2] = {{fd, short(POLLIN | (out.empty() ? 0 : POLLOUT)), 0}, {wake_read_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      lost = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (fds[1].revents) drain_wakeups();

    if (!out.empty() && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        lost = std::strerror(errno);
        break;
      }
      if (n > 0) {
        out.erase(0, size_t(n));
        if (hello_left > 0) {
          hello_left -= std::min(hello_left, size_t(n));
          if (hello_left == 0) {
            log("signed in to " + options_.server_host + ":" + std::to_string(options_.server_port) +
                " as line:" + options_.name);
            set_state(State::kReady);
          }
        }
      }
    }

    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      ssize_t n = recv(fd, buffer, sizeof buffer, 0);
      if (n == 0) {
        lost = "the server closed the connection";
        break;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        lost = std::strerror(errno);
        break;
      }
      in.append(buffer, size_t(n));
      size_t start = 0, end;
      bool too_long = false;
      while (!too_long && (end = in.find('\n', start)) != std::string::npos) {
        too_long = end - start > line_protocol::kMaxLine + 1;  // +1: a '\r' before the '\n'
        if (!too_long) handle_line(in.substr(start, end - start));
        start = end + 1;
      }
      in.erase(0, start);
      if (too_long || in.size() > line_protocol::kMaxLine + 1) {
        lost = "protocol error: the server sent a line over " + std::to_string(line_protocol::kMaxLine) +
               " bytes";
        break;
      }
    }
  }
  close(fd);
  if (!lost.empty()) {
    if (!server_error_.empty()) lost += " (it said: " + server_error_ + ")";
    set_state(State::kDown, "lost the connection to the rendezvous server " + options_.server_host + ":" +
                                std::to_string(options_.server_port) + ": " + lost);
  }
}

peerlink::PeerId LineSignaling::local_peer() const {
  return peerlink::PeerId::parse("line:" + options_.name).value_or(peerlink::PeerId());
}

void LineSignaling::handle_line(const std::string& text) {
  std::string_view rest = text;
  if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
  std::string_view command = line_protocol::next_field(rest);
  if (command == "FROM") {
    std::string_view from = line_protocol::next_field(rest);
    std::vector<uint8_t> blob;
    if (!line_protocol::valid_name(from) || !line_protocol::base64_decode(rest, blob) ||
        blob.size() > peerlink::kMaxSignalingBlob) {
      log("ignoring a malformed FROM line from the server");
      return;
    }
    // The server vouches for the sender's name: it is the name that connection signed in with.
    auto id = peerlink::PeerId::parse("line:" + std::string(from));
    if (id) sink_->deliver(*id, blob.data(), blob.size());
  } else if (command == "UNREACHABLE") {
    std::string_view to = line_protocol::next_field(rest);
    peerlink::Result<peerlink::PeerId> id = peerlink::PeerId::parse("line:" + std::string(to));
    if (!line_protocol::valid_name(to) || !id) {
      log("ignoring a malformed UNREACHABLE line from the server");
      return;
    }
    sink_->peer_unreachable(*id, "line rendezvous server: " + std::string(to) + " " + std::string(rest));
  } else if (command == "ERROR") {
    server_error_ = std::string(rest);  // the server closes the connection next
    log("the server reported an error: " + server_error_);
  } else {
    log("ignoring an unknown line from the server (" + std::string(command.substr(0, 32)) + ")");
  }
}

// No server connection (never made, or lost): every blob the Host sends from now on is answered with
// peer_unreachable, so connections being set up end at once with a clear reason instead of timing out.
// A production plugin would reconnect here, with backoff.
void LineSignaling::stay_down() {
  std::vector<Outgoing> items;
  for (;;) {
    items.clear();
    std::string why;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      for (Outgoing& item : queue_)
        items.push_back(std::move(item));
      queue_.clear();
      why = error_;
    }
    for (const Outgoing& item : items)
      sink_->peer_unreachable(item.to, item.line.empty() ? item.detail : "line signaling is down: " + why);
    pollfd wake = {wake_read_, POLLIN, 0};
    if (poll(&wake, 1, -1) > 0) drain_wakeups();
  }
}

void LineSignaling::set_state(State state, const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_ == state || state_ == State::kStopped) return;
    state_ = state;
    if (state == State::kDown) error_ = why;
  }
  state_changed_.notify_all();
  if (state == State::kDown) {
    log(why);
    if (options_.on_down) options_.on_down(why);
  }
}

void LineSignaling::drain_wakeups() {
  char bytes[64];
  while (read(wake_read_, bytes, sizeof bytes) > 0) {
  }
}

void LineSignaling::log(const std::string& text) const {
  std::fprintf(stderr, "[line-signaling line:%s] %s\n", options_.name.c_str(), text.c_str());
}
