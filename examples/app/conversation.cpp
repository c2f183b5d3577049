#include "conversation.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include "text.hpp"

namespace peerlink::app {
namespace {

constexpr uint32_t kTextLane = 0, kFileLane = 1;
constexpr size_t kDigestSize = 32;
constexpr size_t kMaxIncoming = 16;  // transfers received at once per connection

// The partial files being written by this process. Two transfers of one name into one directory (two
// files of that name in one `send`, or two peers) would otherwise write into one partial file, and the
// first to finish would take the other's bytes with it, reported as verified.
std::mutex parts_mutex;
std::set<std::string> parts_in_use;

struct PartClaim {
  std::string path;
  ~PartClaim() {
    std::lock_guard<std::mutex> lock(parts_mutex);
    parts_in_use.erase(path);
  }
};

std::shared_ptr<void> claim_part(const std::string& path) {
  std::lock_guard<std::mutex> lock(parts_mutex);
  if (!parts_in_use.insert(path).second) return nullptr;
  auto claim = std::make_shared<PartClaim>();  // (a temporary PartClaim would release the path at once)
  claim->path = path;
  return claim;
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 3; i >= 0; --i)
    out.push_back(uint8_t(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 7; i >= 0; --i)
    out.push_back(uint8_t(v >> (8 * i)));
}
uint64_t get_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = v << 8 | p[i];
  return v;
}

bool from_hex(const std::string& text, uint8_t* out, size_t size) {
  if (text.size() != size * 2) return false;
  for (size_t i = 0; i < size; ++i) {
    unsigned v = 0;
    if (std::sscanf(text.c_str() + 2 * i, "%2x", &v) != 1) return false;
    out[i] = uint8_t(v);
  }
  return true;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A destination that does not exist yet: "name", else "name.1", "name.2", ...
std::string unused_path(const std::string& dir, const std::string& name) {
  std::string path = dir + "/" + name;
  for (int n = 1; access(path.c_str(), F_OK) == 0; ++n)
    path = dir + "/" + name + "." + std::to_string(n);
  return path;
}

}  // namespace

Conversation::Hash::Hash() : ctx(EVP_MD_CTX_new()) {
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) throw std::bad_alloc();
}
Conversation::Hash::~Hash() {
  EVP_MD_CTX_free(ctx);
}
void Conversation::Hash::add(const void* data, size_t size) {
  EVP_DigestUpdate(ctx, data, size);
}
std::string Conversation::Hash::hex_digest() {
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  EVP_DigestFinal_ex(ctx, digest, &size);
  return hex(digest, size);
}

std::string safe_file_name(const std::string& offered) {
  std::string name =
      offered.substr(offered.find_last_of('/') == std::string::npos ? 0 : offered.find_last_of('/') + 1);
  for (char& c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') c = '_';
  if (name.size() > 200) name.resize(200);
  while (!name.empty() && name.front() == '.')
    name.erase(name.begin());  // no hidden files, no ".."
  return name;
}

Conversation::Conversation(Host& host, ConnectionHandle connection, ConversationOptions options)
    : host_(host), connection_(connection), options_(std::move(options)) {
  host_.configure_lanes(connection_, {LaneConfig{0, 1}, LaneConfig{1, 1}});
}

Conversation::~Conversation() {
  for (Outgoing& out : outgoing_)
    if (out.file) std::fclose(out.file);
  for (auto& [id, in] : incoming_)
    if (in.file) std::fclose(in.file);
}

SendResult Conversation::send_control(MessageKind kind, uint32_t id, const void* body, size_t size,
                                      uint32_t lane) {
  buffer_.clear();
  buffer_.push_back(uint8_t(kind));
  put_u32(buffer_, id);
  const auto* b = static_cast<const uint8_t*>(body);
  buffer_.insert(buffer_.end(), b, b + size);
  return host_.send(connection_, buffer_.data(), buffer_.size(), send_flags::kReliable, lane);
}

SendResult Conversation::send_text(const std::string& text) {
  buffer_.assign(1, uint8_t(MessageKind::kText));
  buffer_.insert(buffer_.end(), text.begin(), text.end());
  return host_.send(connection_, buffer_.data(), buffer_.size(), send_flags::kReliable, kTextLane);
}

Result<void> Conversation::send_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return Error{ErrorCode::kFile, "cannot send " + path + ": " + std::strerror(errno)};
  if (!S_ISREG(st.st_mode)) return Error{ErrorCode::kFile, "cannot send " + path + ": not a regular file"};
  FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) return Error{ErrorCode::kFile, "cannot send " + path + ": " + std::strerror(errno)};
  Outgoing out;
  out.id = next_id_++;
  out.path = path;
  out.name = safe_file_name(path);
  if (out.name.empty()) out.name = "file";
  out.size = uint64_t(st.st_size);
  out.mtime = int64_t(st.st_mtime);
  out.file = file;
  std::vector<uint8_t> body;
  put_u64(body, out.size);
  put_u64(body, uint64_t(out.mtime));
  body.insert(body.end(), out.name.begin(), out.name.end());
  const SendResult sent = send_control(MessageKind::kOffer, out.id, body.data(), body.size());
  if (sent != SendResult::kOk) {
    std::fclose(file);
    return Error{ErrorCode::kNotFound, std::string("cannot offer the file: ") + to_string(sent)};
  }
  outgoing_.push_back(std::move(out));
  return {};
}

void Conversation::say_bye() {
  const uint8_t bye = uint8_t(MessageKind::kBye);
  host_.send(connection_, &bye, 1, send_flags::kReliable, kTextLane);
}

void Conversation::protocol_error(const std::string& what, std::vector<ConversationEvent>& events) {
  ++protocol_errors_;
  ConversationEvent e;
  e.kind = ConversationEvent::Kind::kProtocolError;
  e.text = what;
  events.push_back(std::move(e));
}

void Conversation::on_message(const Message& message, std::vector<ConversationEvent>& events) {
  const uint8_t* p = message.data();
  const size_t n = message.size();
  if (n == 0) return protocol_error("an empty message", events);
  const auto kind = MessageKind(p[0]);
  if (kind == MessageKind::kText) {
    ConversationEvent e;
    e.kind = ConversationEvent::Kind::kText;
    e.text.assign(reinterpret_cast<const char*>(p + 1), n - 1);
    events.push_back(std::move(e));
    return;
  }
  if (kind == MessageKind::kBye) {
    peer_bye_ = true;
    return;
  }
  if (n < 5) return protocol_error("a message too short for its kind", events);
  const uint32_t id = uint32_t(get_be(p + 1, 4));
  const uint8_t* body = p + 5;
  const size_t size = n - 5;
  switch (kind) {
    case MessageKind::kOffer:
      return on_offer(p + 1, n - 1, events);
    case MessageKind::kAccept:
      if (size != 8) return protocol_error("a malformed accept", events);
      return on_accept(id, get_be(body, 8), events);
    case MessageKind::kRefuse:
      for (auto it = outgoing_.begin(); it != outgoing_.end(); ++it)
        if (it->id == id) {
          ConversationEvent e;
          e.kind = ConversationEvent::Kind::kFileFailed;
          e.name = it->name;
          e.path = it->path;
          e.size = it->size;
          e.text =
              "the peer refused " + it->name + ": " + std::string(reinterpret_cast<const char*>(body), size);
          events.push_back(std::move(e));
          if (it->file) std::fclose(it->file);
          outgoing_.erase(it);
          return;
        }
      return protocol_error("a refusal of no file of ours", events);
    case MessageKind::kData:
      return on_data(id, body, size, events);
    case MessageKind::kEnd:
      return on_end(id, body, size, events);
    case MessageKind::kResult:
      return on_result(id, body, size, events);
    default:
      return protocol_error("a message of unknown kind " + std::to_string(p[0]), events);
  }
}

void Conversation::refuse(uint32_t id, const std::string& reason) {
  send_control(MessageKind::kRefuse, id, reason.data(), reason.size());
}

void Conversation::on_offer(const uint8_t* p, size_t n, std::vector<ConversationEvent>& events) {
  if (n < 4 + 16) return protocol_error("a malformed file offer", events);
  const uint32_t id = uint32_t(get_be(p, 4));
  const uint64_t size = get_be(p + 4, 8);
  const int64_t mtime = int64_t(get_be(p + 12, 8));
  const std::string offered(reinterpret_cast<const char*>(p + 20), n - 20);
  if (incoming_.count(id)) return protocol_error("a second offer under one id", events);
  const std::string name = safe_file_name(offered);
  auto refuse_with = [&](const std::string& why) {
    refuse(id, why);
    ConversationEvent e;
    e.kind = ConversationEvent::Kind::kFileFailed;
    e.incoming = true;
    e.name = offered;
    e.size = size;
    e.text = "refused the file '" + name + "': " + why;
    events.push_back(std::move(e));
  };
  if (!options_.accept_files) return refuse_with("this peer takes no files");
  if (incoming_.size() >= kMaxIncoming) return refuse_with("too many files at once; send it again later");
  if (name.empty()) return refuse_with("no usable file name");
  if (size > options_.max_file_size) return refuse_with("larger than this peer takes");

  Incoming in;
  in.id = id;
  in.name = name;
  in.size = size;
  in.part_path = options_.download_dir + "/." + name + ".part";
  in.meta_path = in.part_path + ".meta";
  in.claim = claim_part(in.part_path);
  if (!in.claim) return refuse_with("a file of that name is being received now; send it again later");
  std::ostringstream meta_line;
  meta_line << size << " " << mtime;
  // Resume when the part was written for this very file (name, size and mtime) and is not longer.
  std::string seen;
  std::ifstream meta(in.meta_path);
  struct stat st {};
  const bool resume = meta && std::getline(meta, seen) && seen == meta_line.str() &&
                      stat(in.part_path.c_str(), &st) == 0 && uint64_t(st.st_size) <= size;
  in.file = std::fopen(in.part_path.c_str(), resume ? "r+b" : "w+b");
  if (!in.file) return refuse_with("cannot write " + in.part_path + ": " + std::strerror(errno));
  if (!resume) {
    std::ofstream(in.meta_path, std::ios::trunc) << meta_line.str() << "\n";
  }
  in.hash = std::make_unique<Hash>();
  if (resume) {
    // Hash what is already there, then append to it.
    std::vector<uint8_t> chunk(1 << 20);
    uint64_t have = 0;
    for (size_t got; (got = std::fread(chunk.data(), 1, chunk.size(), in.file)) > 0; have += got)
      in.hash->add(chunk.data(), got);
    in.resumed_from = in.written = have;
  }
  in.started = std::chrono::steady_clock::now();
  std::vector<uint8_t> body;
  put_u64(body, in.written);
  send_control(MessageKind::kAccept, id, body.data(), body.size());
  ConversationEvent e;
  e.kind = ConversationEvent::Kind::kFileStarted;
  e.incoming = true;
  e.name = name;
  e.path = in.part_path;
  e.size = size;
  e.resumed_from = in.resumed_from;
  events.push_back(std::move(e));
  incoming_.emplace(id, std::move(in));
}

void Conversation::on_accept(uint32_t id, uint64_t offset, std::vector<ConversationEvent>& events) {
  for (Outgoing& out : outgoing_) {
    if (out.id != id) continue;
    if (out.accepted || offset > out.size) return protocol_error("a malformed accept", events);
    out.accepted = true;
    out.hash = std::make_unique<Hash>();
    // The receiver has `offset` bytes: hash them from our copy, then send from there.
    std::vector<uint8_t> chunk(1 << 20);
    for (uint64_t hashed = 0; hashed < offset;) {
      const size_t want = size_t(std::min<uint64_t>(chunk.size(), offset - hashed));
      const size_t got = std::fread(chunk.data(), 1, want, out.file);
      if (got == 0) break;  // the file shrank: the hashes will differ and say so
      out.hash->add(chunk.data(), got);
      hashed += got;
    }
    out.offset = out.resumed_from = offset;
    out.started = std::chrono::steady_clock::now();
    ConversationEvent e;
    e.kind = ConversationEvent::Kind::kFileStarted;
    e.name = out.name;
    e.path = out.path;
    e.size = out.size;
    e.resumed_from = offset;
    events.push_back(std::move(e));
    return;
  }
  protocol_error("an accept of no file of ours", events);
}

uint64_t Conversation::queued_file_bytes() const {
  const std::optional<ConnectionStatus> st = host_.status(connection_);
  if (!st) return 0;
  return st->lane_queued_bytes.size() > kFileLane ? st->lane_queued_bytes[kFileLane] : st->queued_bytes;
}

void Conversation::pump(std::vector<ConversationEvent>& events) {
  if (outgoing_.empty()) return;
  Outgoing& out = outgoing_.front();
  if (!out.accepted || out.ended) return;
  uint64_t queued = queued_file_bytes();
  while (queued < options_.window_bytes && out.offset < out.size) {
    const size_t want = size_t(std::min<uint64_t>(options_.chunk_bytes, out.size - out.offset));
    buffer_.resize(5 + want);
    buffer_[0] = uint8_t(MessageKind::kData);
    for (int i = 0; i < 4; ++i)
      buffer_[1 + size_t(i)] = uint8_t(out.id >> (8 * (3 - i)));
    const size_t got = std::fread(buffer_.data() + 5, 1, want, out.file);
    if (got != want) {
      ConversationEvent e;
      e.kind = ConversationEvent::Kind::kFileFailed;
      e.name = out.name;
      e.path = out.path;
      e.text = "cannot read " + out.path + " at byte " + std::to_string(out.offset + got) + " of " +
               std::to_string(out.size) + ": " +
               (std::ferror(out.file) ? std::strerror(errno) : "it shrank while being sent");
      events.push_back(std::move(e));
      refuse(out.id, "the sender could not read the file");
      std::fclose(out.file);
      outgoing_.pop_front();
      return;
    }
    const SendResult sent =
        host_.send(connection_, buffer_.data(), 5 + got, send_flags::kReliable, kFileLane);
    if (sent != SendResult::kOk) {
      // Not taken: read the same bytes again next time.
      std::fseek(out.file, long(out.offset), SEEK_SET);
      // The connection's buffer is full (later, then), or it is closing (on_closed() reports it).
      if (sent == SendResult::kLimitExceeded || sent == SendResult::kInvalidState ||
          sent == SendResult::kNoConnection)
        return;
      ConversationEvent e;
      e.kind = ConversationEvent::Kind::kFileFailed;
      e.name = out.name;
      e.path = out.path;
      e.text = "cannot send " + out.path + ": " + to_string(sent);
      events.push_back(std::move(e));
      refuse(out.id, "the sender could not send the file");
      std::fclose(out.file);
      outgoing_.pop_front();
      return;
    }
    out.hash->add(buffer_.data() + 5, got);
    out.offset += got;
    queued += got;
  }
  if (out.offset == out.size) {
    out.digest = out.hash->hex_digest();
    uint8_t digest[kDigestSize];
    from_hex(out.digest, digest, kDigestSize);
    send_control(MessageKind::kEnd, out.id, digest, kDigestSize, kFileLane);
    out.ended = true;
    std::fclose(out.file);
    out.file = nullptr;
  }
}

void Conversation::on_data(uint32_t id, const uint8_t* p, size_t n, std::vector<ConversationEvent>& events) {
  auto it = incoming_.find(id);
  if (it == incoming_.end()) return;  // a transfer we gave up (refused or failed): its data is dropped
  Incoming& in = it->second;
  // The sender is told, else it would wait for the result of a transfer we gave up.
  if (in.written + n > in.size) {
    refuse(id, "more data than offered");
    return fail_incoming(in, "the sender sent more than it offered", false, events);
  }
  if (std::fwrite(p, 1, n, in.file) != n) {
    const std::string why = "cannot write " + in.part_path + ": " + std::strerror(errno);
    refuse(id, why);
    return fail_incoming(in, why, true, events);
  }
  in.hash->add(p, n);
  in.written += n;
}

void Conversation::on_end(uint32_t id, const uint8_t* p, size_t n, std::vector<ConversationEvent>& events) {
  auto it = incoming_.find(id);
  if (it == incoming_.end()) return;
  Incoming& in = it->second;
  uint8_t result[1 + kDigestSize] = {0};
  const std::string digest = in.hash->hex_digest();
  from_hex(digest, result + 1, kDigestSize);
  std::string why;
  if (n != kDigestSize) {
    why = "a malformed end of file";
  } else if (in.written != in.size) {
    why = "the file ended at " + std::to_string(in.written) + " of " + std::to_string(in.size) + " bytes";
  } else if (hex(p, n) != digest) {
    why = "SHA-256 mismatch (the data was altered, or the file changed between two attempts)";
  } else if (std::fflush(in.file) != 0 || fsync(fileno(in.file)) != 0) {
    why = "cannot write " + in.part_path + ": " + std::strerror(errno);
  }
  std::string path;
  if (why.empty()) {
    std::fclose(in.file);
    in.file = nullptr;
    path = unused_path(options_.download_dir, in.name);
    if (std::rename(in.part_path.c_str(), path.c_str()) != 0)
      why = "cannot move the file to " + path + ": " + std::strerror(errno);
    else
      std::remove(in.meta_path.c_str());
  }
  result[0] = why.empty() ? 1 : 0;
  std::vector<uint8_t> body(result, result + sizeof result);
  body.insert(body.end(), why.begin(), why.end());
  send_control(MessageKind::kResult, id, body.data(), body.size());
  if (!why.empty()) return fail_incoming(in, why, false, events);
  ConversationEvent e;
  e.kind = ConversationEvent::Kind::kFileReceived;
  e.incoming = true;
  e.name = in.name;
  e.path = path;
  e.size = in.size;
  e.resumed_from = in.resumed_from;
  e.sha256 = digest;
  e.seconds = seconds_since(in.started);
  events.push_back(std::move(e));
  incoming_.erase(it);
}

void Conversation::on_result(uint32_t id, const uint8_t* p, size_t n,
                             std::vector<ConversationEvent>& events) {
  for (auto it = outgoing_.begin(); it != outgoing_.end(); ++it) {
    if (it->id != id) continue;
    if (!it->ended || n < 1 + kDigestSize)
      return protocol_error("a result before the end of the file", events);
    ConversationEvent e;
    e.name = it->name;
    e.path = it->path;
    e.size = it->size;
    e.resumed_from = it->resumed_from;
    e.sha256 = hex(p + 1, kDigestSize);
    e.seconds = seconds_since(it->started);
    if (p[0] == 1 && e.sha256 == it->digest) {
      e.kind = ConversationEvent::Kind::kFileSent;
    } else {
      e.kind = ConversationEvent::Kind::kFileFailed;
      e.text =
          "the peer did not keep " + it->name + ": " +
          (p[0] == 1 ? std::string("its SHA-256 differs from ours")
                     : std::string(reinterpret_cast<const char*>(p + 1 + kDigestSize), n - 1 - kDigestSize));
    }
    events.push_back(std::move(e));
    outgoing_.erase(it);
    return;
  }
  protocol_error("a result for no file of ours", events);
}

void Conversation::fail_incoming(Incoming& in, const std::string& why, bool keep_part,
                                 std::vector<ConversationEvent>& events) {
  if (in.file) std::fclose(in.file);
  in.file = nullptr;
  ConversationEvent e;
  e.kind = ConversationEvent::Kind::kFileFailed;
  e.incoming = true;
  e.name = in.name;
  e.size = in.size;
  e.text = why;
  if (keep_part && in.written > 0) {
    e.path = in.part_path;
    e.text += "; " + std::to_string(in.written) + " of " + std::to_string(in.size) + " bytes kept in " +
              in.part_path + ": sending it again resumes there";
  } else {
    std::remove(in.part_path.c_str());
    std::remove(in.meta_path.c_str());
  }
  events.push_back(std::move(e));
  incoming_.erase(in.id);
}

void Conversation::on_closed(const std::string& reason, std::vector<ConversationEvent>& events) {
  while (!incoming_.empty())
    fail_incoming(incoming_.begin()->second, "cut off: " + reason, true, events);
  for (Outgoing& out : outgoing_) {
    ConversationEvent e;
    e.kind = ConversationEvent::Kind::kFileFailed;
    e.name = out.name;
    e.path = out.path;
    e.size = out.size;
    e.text = "cut off after " + std::to_string(out.offset) + " of " + std::to_string(out.size) +
             " bytes: " + reason;
    events.push_back(std::move(e));
    if (out.file) std::fclose(out.file);
  }
  outgoing_.clear();
}

bool Conversation::done_sending() const {
  if (!outgoing_.empty()) return false;
  const std::optional<ConnectionStatus> st = host_.status(connection_);
  return !st || st->queued_bytes == 0;
}

std::vector<TransferProgress> Conversation::progress() const {
  std::vector<TransferProgress> all;
  for (const Outgoing& out : outgoing_) {
    if (!out.accepted) continue;
    TransferProgress p;
    p.name = out.name;
    p.total = out.size;
    const uint64_t queued = out.ended ? 0 : queued_file_bytes();
    p.done = out.offset > queued ? out.offset - queued : 0;
    const double s = seconds_since(out.started);
    p.bytes_per_second = s > 0 && p.done > out.resumed_from ? double(p.done - out.resumed_from) / s : 0;
    all.push_back(p);
  }
  for (const auto& [id, in] : incoming_) {
    TransferProgress p;
    p.name = in.name;
    p.incoming = true;
    p.total = in.size;
    p.done = in.written;
    const double s = seconds_since(in.started);
    p.bytes_per_second = s > 0 ? double(in.written - in.resumed_from) / s : 0;
    all.push_back(p);
  }
  return all;
}

}  // namespace peerlink::app
