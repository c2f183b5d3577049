#include "control_protocol.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace peerlink::bench {

ControlMessage ControlMessage::parse(const std::string& line) {
  ControlMessage m;
  size_t space = line.find(' ');
  m.verb = line.substr(0, space);
  if (space == std::string::npos) return m;
  m.text = line.substr(space + 1);
  std::istringstream words(m.text);
  std::string word;
  while (words >> word) {
    size_t eq = word.find('=');
    if (eq != std::string::npos && eq > 0) m.fields[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return m;
}

const std::string& ControlMessage::field(const std::string& key) const {
  auto it = fields.find(key);
  if (it == fields.end()) throw std::runtime_error("control message '" + verb + "' lacks " + key);
  return it->second;
}

double ControlMessage::number(const std::string& key) const {
  const std::string& v = field(key);
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0') throw std::runtime_error(key + "=" + v + " is not a number");
  return d;
}

uint64_t ControlMessage::u64(const std::string& key) const {
  const std::string& v = field(key);
  char* end = nullptr;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (end == v.c_str() || *end != '\0') throw std::runtime_error(key + "=" + v + " is not an integer");
  return n;
}

std::optional<std::string> LineReader::read_line(int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  timed_out_ = false;
  Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        timed_out_ = true;
        return std::nullopt;
      }
      wait_ms = int(left);
    }
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return std::nullopt;
    if (r == 0) continue;  // the deadline check above ends it
    char chunk[4096];
    ssize_t n = read(fd_, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return std::nullopt;
    buffer_.append(chunk, size_t(n));
  }
}

bool write_line(int fd, const std::string& line) {
  std::string out = line + "\n";
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = write(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

}  // namespace peerlink::bench
