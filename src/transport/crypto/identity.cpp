#include "peerlink/identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "transport/crypto/hash.hpp"
#include "transport/crypto/random.hpp"
#include "transport/crypto/x25519.hpp"

namespace peerlink {
namespace {

constexpr const char* kHeader = "peerlink-identity-v1";
constexpr size_t kMaxFileSize = 4096;  // a valid file is ~160 bytes; anything big is not ours

void set_error(std::string* error, const std::string& path, const std::string& cause) {
  if (error != nullptr) *error = "identity key file " + path + ": " + cause;
}

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string to_hex(const uint8_t* data, size_t len) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    s += kDigits[data[i] >> 4];
    s += kDigits[data[i] & 0x0f];
  }
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool from_hex32(const std::string& s, std::array<uint8_t, 32>& out) {
  if (s.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    const int hi = hex_value(s[2 * i]);
    const int lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  // Closes now and reports the result: close() can report a delayed write error.
  bool close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

// Key material in strings is wiped before the memory is released.
struct SecretString {
  std::string s;
  ~SecretString() { OPENSSL_cleanse(s.data(), s.size()); }
};
struct SecretLines {
  std::vector<std::string> v;
  ~SecretLines() {
    for (std::string& line : v)
      OPENSSL_cleanse(line.data(), line.size());
  }
};

// Reads the whole (small) file after checking it is private to its owner.
bool read_key_file(const std::string& path, std::string& contents, std::string* error) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    set_error(error, path, "cannot open: " + errno_text(errno));
    return false;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    set_error(error, path, "cannot stat: " + errno_text(errno));
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    set_error(error, path, "not a regular file");
    return false;
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    set_error(error, path,
              std::string("permissions ") + mode +
                  " are too open: the private key must not be readable by group or others (chmod 600 " +
                  path + ")");
    return false;
  }
  char buf[512];
  while (true) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      set_error(error, path, "cannot read: " + errno_text(errno));
      OPENSSL_cleanse(buf, sizeof(buf));
      return false;
    }
    if (n == 0) break;
    contents.append(buf, static_cast<size_t>(n));
    if (contents.size() > kMaxFileSize) {
      set_error(error, path, "malformed: file too large");
      OPENSSL_cleanse(buf, sizeof(buf));
      return false;
    }
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  return true;
}

// Splits on '\n'; a final newline does not make an extra empty line.
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  for (std::string& line : lines) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // tolerate a file edited with CRLF
  }
  return lines;
}

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The public key line is for people reading the file; load() checks it matches.
std::string key_file_contents(const std::array<uint8_t, 32>& priv, const PublicKey& pub) {
  return std::string(kHeader) + "\n" + to_hex(priv.data(), priv.size()) + "\npublic " +
         to_hex(pub.data(), pub.size()) + "\n";
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Writes contents to path through a temporary file and link(), so a reader never sees a partial file and
// an existing file is never replaced. *exists is set when path was already there.
bool write_new_file(const std::string& path, const std::string& contents, std::string* error, bool* exists) {
  crypto::SystemRandom rng;
  std::string temp;
  int raw_fd = -1;
  for (int attempt = 0; attempt < 16 && raw_fd < 0; ++attempt) {
    uint8_t suffix[8];
    rng.fill(suffix, sizeof(suffix));
    temp = path + ".tmp-" + to_hex(suffix, sizeof(suffix));
    raw_fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (raw_fd < 0 && errno != EEXIST) break;
  }
  if (raw_fd < 0) {
    set_error(error, path, "cannot create temporary file " + temp + ": " + errno_text(errno));
    return false;
  }
  FileDescriptor fd(raw_fd);
  // The umask can only clear bits, but make the mode exact regardless.
  if (::fchmod(fd.get(), 0600) != 0 || !write_all(fd.get(), contents) || ::fsync(fd.get()) != 0 ||
      !fd.close()) {
    set_error(error, path, "cannot write temporary file " + temp + ": " + errno_text(errno));
    ::unlink(temp.c_str());
    return false;
  }
  if (::link(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    if (err == EEXIST) {
      if (exists != nullptr) *exists = true;
      set_error(error, path, "already exists; refusing to overwrite it");
    } else {
      set_error(error, path, "cannot create: " + errno_text(err));
    }
    return false;
  }
  ::unlink(temp.c_str());
  // Make the new directory entry durable too; failure here does not undo a completed write.
  FileDescriptor dir(::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) ::fsync(dir.get());
  return true;
}

}  // namespace

Identity Identity::generate() {
  crypto::SystemRandom rng;
  std::array<uint8_t, 32> priv{};
  rng.fill(priv.data(), priv.size());
  Identity id = from_private_key(priv);
  OPENSSL_cleanse(priv.data(), priv.size());
  return id;
}

Identity Identity::from_private_key(const std::array<uint8_t, 32>& private_key) {
  const crypto::X25519KeyPair kp = crypto::x25519_from_private(private_key);
  Identity id;
  id.private_key_ = kp.private_key;
  id.public_key_ = kp.public_key;
  return id;
}

namespace {

std::optional<Identity> load_file(const std::string& path, std::string* error) {
  SecretString contents;
  if (!read_key_file(path, contents.s, error)) return std::nullopt;
  SecretLines lines{split_lines(contents.s)};
  const std::vector<std::string>& l = lines.v;
  if (l.empty() || l[0] != kHeader) {
    set_error(error, path, std::string("malformed: the first line must be \"") + kHeader + "\"");
    return std::nullopt;
  }
  std::array<uint8_t, 32> priv{};
  if (l.size() < 2 || !from_hex32(l[1], priv)) {
    set_error(error, path, "malformed: the second line must be the private key as 64 hex digits");
    return std::nullopt;
  }
  Identity id = Identity::from_private_key(priv);
  OPENSSL_cleanse(priv.data(), priv.size());
  for (size_t i = 2; i < l.size(); ++i) {
    if (l[i].empty()) continue;
    const std::string prefix = "public ";
    std::array<uint8_t, 32> pub{};
    if (i != 2 || l[i].compare(0, prefix.size(), prefix) != 0 ||
        !from_hex32(l[i].substr(prefix.size()), pub)) {
      set_error(error, path, "malformed: only an optional \"public <hex>\" line may follow the private key");
      return std::nullopt;
    }
    if (pub != id.public_key()) {
      set_error(error, path, "malformed: the public key line does not match the private key");
      return std::nullopt;
    }
  }
  return id;
}

}  // namespace

Result<Identity> Identity::load(const std::string& path) {
  std::string why;
  std::optional<Identity> id = load_file(path, &why);
  if (!id) return Error{ErrorCode::kFile, why};
  return *id;
}

Result<void> Identity::save(const std::string& path) const {
  SecretString contents{key_file_contents(private_key_, public_key_)};
  std::string why;
  if (!write_new_file(path, contents.s, &why, nullptr)) return Error{ErrorCode::kFile, why};
  return {};
}

Result<Identity> Identity::load_or_create(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 || errno != ENOENT) return load(path);
  const Identity fresh = generate();
  SecretString contents{key_file_contents(fresh.private_key_, fresh.public_key_)};
  bool exists = false;
  std::string why;
  if (write_new_file(path, contents.s, &why, &exists)) return fresh;
  // Another process created it between our check and our link(): theirs wins.
  if (exists) return load(path);
  return Error{ErrorCode::kFile, why};
}

std::string Identity::fingerprint() const {
  return fingerprint_of(public_key_);
}

std::string Identity::fingerprint_of(const PublicKey& key) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";  // RFC 4648 base32, lowercased
  const crypto::Digest digest = crypto::hash(crypto::HashAlgorithm::kSha256, key.data(), key.size());
  constexpr size_t kBytes = 20;  // 160 bits = exactly 32 base32 characters
  std::string chars;
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < kBytes; ++i) {
    buffer = (buffer << 8) | digest[i];
    bits += 8;
    while (bits >= 5) {
      chars += kAlphabet[(buffer >> (bits - 5)) & 0x1f];
      bits -= 5;
    }
  }
  std::string out = "pl1";
  for (size_t i = 0; i < chars.size(); i += 4)
    out += "-" + chars.substr(i, 4);
  return out;
}

}  // namespace peerlink
