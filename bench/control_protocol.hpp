// The control channel between the benchmark and its server child: text lines over a pipe pair (the child's
// stdin and stdout), each "verb key=value key=value ...". Values hold no spaces; only an "error" line
// carries free text after its verb.
//
//   child:  ready port=40123 key=9f2c...
//   parent: mark
//   parent: stop
//   child:  result bytes=123456789 messages=1884 seconds=2.0001
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace peerlink::bench {

struct ControlMessage {
  std::string verb;
  std::string text;  // everything after the verb
  std::map<std::string, std::string> fields;

  static ControlMessage parse(const std::string& line);
  bool has(const std::string& key) const { return fields.count(key) != 0; }
  // The field's value; throws std::runtime_error naming the key if it is missing or not a number.
  const std::string& field(const std::string& key) const;
  double number(const std::string& key) const;
  uint64_t u64(const std::string& key) const;
};

// Reads lines from a file descriptor, keeping what arrived beyond the current line.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // The next line without its '\n'. nullopt at end of file, on error, or when timeout_ms (-1: none) passes;
  // timed_out() tells which.
  std::optional<std::string> read_line(int timeout_ms);
  bool timed_out() const { return timed_out_; }

 private:
  int fd_;
  std::string buffer_;
  bool timed_out_ = false;
};

// Writes the whole line and a '\n'. False if the other side is gone.
bool write_line(int fd, const std::string& line);

}  // namespace peerlink::bench
