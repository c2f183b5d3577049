// What two peerlink programs (peerlink-chat, `peerlink send` / `receive`) say to each other over one
// connection: text, files and "I am done". Built on the public Host API alone.
//
// Every message is reliable and starts with one byte saying its kind. Text and the file handshake go on
// lane 0; file data on lane 1, at a lower priority, so a line of chat overtakes a large file.
//
//   text     01 | UTF-8 text
//   offer    02 | id u32 | size u64 | mtime i64 | name (UTF-8, the rest)
//   accept   03 | id u32 | offset u64            (offset: what the receiver already has of it)
//   refuse   04 | id u32 | reason
//   data     05 | id u32 | bytes                 (lane 1, in order, from the accepted offset)
//   end      06 | id u32 | SHA-256 of the whole file (32 bytes; lane 1, after the last data)
//   result   07 | id u32 | ok u8 | SHA-256 the receiver computed | reason
//   bye      08                                  (nothing more will come from me but answers)
//
// Resuming: the receiver writes into "<dir>/.<name>.part" beside a small "<name>.part.meta" (size and
// mtime of the offered file). An offer of the same name, size and mtime resumes at what the part holds;
// both sides hash the whole file (the sender its own file, the receiver what it wrote), and a mismatch
// throws the part away. Memory stays bounded: the sender keeps at most `window` bytes queued in the
// connection and reads the file as that drains; the receiver writes each message as it arrives.
#pragma once

#include <openssl/evp.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "peerlink/error.hpp"
#include "peerlink/host.hpp"

namespace peerlink::app {

enum class MessageKind : uint8_t {
  kText = 1,
  kOffer = 2,
  kAccept = 3,
  kRefuse = 4,
  kData = 5,
  kEnd = 6,
  kResult = 7,
  kBye = 8,
};

// What a conversation reports to the program.
struct ConversationEvent {
  enum class Kind : uint8_t {
    kText,           // text: what the peer wrote
    kFileStarted,    // a transfer began (incoming: offered and accepted; outgoing: the peer accepted)
    kFileReceived,   // a file arrived whole, hash checked: path, size, sha256, seconds
    kFileSent,       // the peer confirmed a file we sent, hash checked
    kFileFailed,     // a transfer failed or was cut off: text says why (a part kept for resuming says so)
    kProtocolError,  // a message that made no sense (dropped and counted): text says what
  };
  Kind kind = Kind::kText;
  bool incoming = false;  // the files: received (true) or sent
  std::string text;
  std::string name;  // the file's name as offered
  std::string path;  // where it was written (received) or read from (sent)
  uint64_t size = 0;
  uint64_t resumed_from = 0;  // bytes that were already there (a resumed transfer)
  std::string sha256;         // hex
  double seconds = 0;         // from accept to confirmation
};

struct ConversationOptions {
  std::string download_dir = ".";  // where received files go (must exist)
  bool accept_files = true;        // false: offers are refused
  uint64_t max_file_size = uint64_t(1) << 42;
  size_t chunk_bytes = 256 * 1024;    // file data per message
  uint64_t window_bytes = 16u << 20;  // file data queued in the connection at most
};

// A transfer's progress, for a progress bar.
struct TransferProgress {
  std::string name;
  bool incoming = false;
  uint64_t done = 0, total = 0;
  double bytes_per_second = 0;  // since it started (the resumed part not counted)
};

class Conversation {
 public:
  // Configures the connection's lanes (text first, files second); works while it is still connecting.
  Conversation(Host& host, ConnectionHandle connection, ConversationOptions options = {});
  ~Conversation();  // closes open files; a partly received file stays for resuming
  Conversation(const Conversation&) = delete;
  Conversation& operator=(const Conversation&) = delete;

  ConnectionHandle connection() const { return connection_; }

  SendResult send_text(const std::string& text);
  // Offers the file; the data follows once the peer accepts. Fails (kFile) if it cannot be read.
  Result<void> send_file(const std::string& path);
  // Says nothing more will be sent (after what was already queued).
  void say_bye();

  // A message received on this connection: appends what it means to events.
  void on_message(const Message& message, std::vector<ConversationEvent>& events);
  // Moves file data into the connection while it has room; call whenever the program loops.
  void pump(std::vector<ConversationEvent>& events);
  // The connection ended: transfers in flight fail (a partly received file stays for resuming).
  void on_closed(const std::string& reason, std::vector<ConversationEvent>& events);

  // Everything we sent was confirmed: no offer unanswered or transfer unconfirmed, nothing queued.
  bool done_sending() const;
  bool receiving() const { return !incoming_.empty(); }
  bool peer_said_bye() const { return peer_bye_; }
  bool sending_file() const { return !outgoing_.empty(); }
  std::vector<TransferProgress> progress() const;
  uint64_t protocol_errors() const { return protocol_errors_; }

 private:
  struct Hash {
    Hash();
    ~Hash();
    void add(const void* data, size_t size);
    std::string hex_digest();  // finishes
    EVP_MD_CTX* ctx;
  };
  struct Outgoing {
    uint32_t id = 0;
    std::string path, name;
    uint64_t size = 0, offset = 0, resumed_from = 0;
    int64_t mtime = 0;
    FILE* file = nullptr;
    bool accepted = false, ended = false;
    std::unique_ptr<Hash> hash;
    std::string digest;
    std::chrono::steady_clock::time_point started;
  };
  struct Incoming {
    uint32_t id = 0;
    std::string name, part_path, meta_path;
    uint64_t size = 0, written = 0, resumed_from = 0;
    FILE* file = nullptr;
    std::unique_ptr<Hash> hash;
    std::chrono::steady_clock::time_point started;
    std::shared_ptr<void> claim;  // part_path is ours while this lives (no other transfer writes it)
  };

  SendResult send_control(MessageKind kind, uint32_t id, const void* body, size_t size, uint32_t lane = 0);
  void on_offer(const uint8_t* p, size_t n, std::vector<ConversationEvent>& events);
  void on_accept(uint32_t id, uint64_t offset, std::vector<ConversationEvent>& events);
  void on_data(uint32_t id, const uint8_t* p, size_t n, std::vector<ConversationEvent>& events);
  void on_end(uint32_t id, const uint8_t* p, size_t n, std::vector<ConversationEvent>& events);
  void on_result(uint32_t id, const uint8_t* p, size_t n, std::vector<ConversationEvent>& events);
  void refuse(uint32_t id, const std::string& reason);
  void fail_incoming(Incoming& in, const std::string& why, bool keep_part,
                     std::vector<ConversationEvent>& events);
  void protocol_error(const std::string& what, std::vector<ConversationEvent>& events);
  uint64_t queued_file_bytes() const;

  Host& host_;
  ConnectionHandle connection_;
  ConversationOptions options_;
  uint32_t next_id_ = 1;
  std::deque<Outgoing> outgoing_;  // the front one streams; the others wait for it
  std::map<uint32_t, Incoming> incoming_;
  std::vector<uint8_t> buffer_;
  bool peer_bye_ = false;
  uint64_t protocol_errors_ = 0;
};

// A file name from a peer made safe to create in a directory: its last path component, with control
// characters and slashes replaced; "" when nothing usable is left ("", ".", "..").
std::string safe_file_name(const std::string& offered);

}  // namespace peerlink::app
