#include "dns_message.hpp"

#include <algorithm>
#include <map>

namespace peerlink::lan::dns {
namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool same_label(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size, std::string* why) : d_(data), n_(size), why_(why) {}

  bool fail(const char* reason) {
    if (why_ && why_->empty()) *why_ = reason;
    return false;
  }
  size_t pos() const { return pos_; }
  size_t left() const { return n_ - pos_; }

  bool u8(uint8_t& v) {
    if (left() < 1) return fail("truncated");
    v = d_[pos_++];
    return true;
  }
  bool u16(uint16_t& v) {
    if (left() < 2) return fail("truncated");
    v = static_cast<uint16_t>(d_[pos_] << 8 | d_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    uint16_t hi = 0, lo = 0;
    if (!u16(hi) || !u16(lo)) return false;
    v = uint32_t{hi} << 16 | lo;
    return true;
  }
  bool bytes(size_t count, const uint8_t*& out) {
    if (left() < count) return fail("truncated");
    out = d_ + pos_;
    pos_ += count;
    return true;
  }

  // A name at the current position, following compression pointers. Each pointer must point before the
  // place the previous part of the name was read from, so the walk always ends.
  bool name(Name& out) {
    out.clear();
    size_t at = pos_;
    size_t limit = pos_;
    size_t wire = 1;  // the final zero
    bool jumped = false;
    for (;;) {
      if (at >= n_) return fail("truncated name");
      const uint8_t len = d_[at];
      if ((len & 0xC0) == 0xC0) {
        if (at + 1 >= n_) return fail("truncated name");
        const size_t target = static_cast<size_t>(len & 0x3F) << 8 | d_[at + 1];
        if (target >= limit) return fail("a compression pointer that does not point backward");
        if (!jumped) pos_ = at + 2;
        jumped = true;
        limit = target;
        at = target;
        continue;
      }
      if (len & 0xC0) return fail("a label of a reserved type");
      if (len == 0) {
        if (!jumped) pos_ = at + 1;
        return true;
      }
      if (at + 1 + len > n_) return fail("truncated name");
      wire += 1 + size_t{len};
      if (wire > kMaxNameBytes) return fail("a name longer than 255 bytes");
      out.emplace_back(reinterpret_cast<const char*>(d_ + at + 1), len);
      at += 1 + size_t{len};
    }
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
  std::string* why_;
};

bool read_rdata(Reader& r, Record& rec, uint16_t length) {
  const size_t end = r.pos() + length;
  if (r.left() < length) return r.fail("truncated RDATA");
  const uint8_t* p = nullptr;
  switch (rec.kind()) {
    case Type::kA:
    case Type::kAaaa: {
      const size_t want = rec.kind() == Type::kA ? 4 : 16;
      if (length != want) return r.fail("an address record of the wrong length");
      r.bytes(want, p);
      std::copy(p, p + want, rec.address.begin());
      return true;
    }
    case Type::kPtr:
      if (!r.name(rec.target)) return false;
      break;
    case Type::kSrv:
      if (!r.u16(rec.priority) || !r.u16(rec.weight) || !r.u16(rec.port) || !r.name(rec.target)) return false;
      break;
    case Type::kTxt:
      if (length == 0) return r.fail("a TXT record without strings");
      while (r.pos() < end) {
        uint8_t len = 0;
        r.u8(len);
        if (r.pos() + len > end) return r.fail("a TXT string past its record");
        r.bytes(len, p);
        rec.strings.emplace_back(reinterpret_cast<const char*>(p), len);
      }
      break;
    default:
      r.bytes(length, p);
      rec.raw.assign(p, p + length);
      return true;
  }
  if (r.pos() != end) return r.fail("RDATA whose length does not match its content");
  return true;
}

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) {
    out_.push_back(static_cast<uint8_t>(v >> 8));
    out_.push_back(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  size_t size() const { return out_.size(); }
  void put16_at(size_t at, uint16_t v) {
    out_[at] = static_cast<uint8_t>(v >> 8);
    out_[at + 1] = static_cast<uint8_t>(v);
  }

  // Writes a name, reusing an earlier copy of its longest already-written suffix (exact bytes, so a
  // message reads back exactly as it was written).
  bool name(const Name& name) {
    size_t wire = 1;
    for (const std::string& label : name) {
      if (label.empty() || label.size() > kMaxLabel) return false;
      wire += 1 + label.size();
    }
    if (wire > kMaxNameBytes) return false;
    for (size_t i = 0; i < name.size(); ++i) {
      std::string key;
      for (size_t j = i; j < name.size(); ++j) {
        key.push_back(static_cast<char>(name[j].size()));
        key += name[j];
      }
      auto known = suffixes_.find(key);
      if (known != suffixes_.end()) {
        u16(static_cast<uint16_t>(0xC000 | known->second));
        return true;
      }
      if (out_.size() < 0x4000) suffixes_.emplace(std::move(key), static_cast<uint16_t>(out_.size()));
      u8(static_cast<uint8_t>(name[i].size()));
      bytes(name[i].data(), name[i].size());
    }
    u8(0);
    return true;
  }

  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
  std::map<std::string, uint16_t> suffixes_;
};

bool write_record(Writer& w, const Record& rec) {
  if (!w.name(rec.name)) return false;
  w.u16(rec.type);
  w.u16(static_cast<uint16_t>((rec.klass & 0x7FFF) | (rec.cache_flush ? kTopBit : 0)));
  w.u32(rec.ttl);
  const size_t length_at = w.size();
  w.u16(0);
  const size_t start = w.size();
  switch (rec.kind()) {
    case Type::kA:
      w.bytes(rec.address.data(), 4);
      break;
    case Type::kAaaa:
      w.bytes(rec.address.data(), 16);
      break;
    case Type::kPtr:
      if (!w.name(rec.target)) return false;
      break;
    case Type::kSrv:
      w.u16(rec.priority);
      w.u16(rec.weight);
      w.u16(rec.port);
      if (!w.name(rec.target)) return false;
      break;
    case Type::kTxt:
      if (rec.strings.empty()) w.u8(0);  // RFC 6763 §6.1: an empty TXT record is one empty string
      for (const std::string& s : rec.strings) {
        if (s.size() > 255) return false;
        w.u8(static_cast<uint8_t>(s.size()));
        w.bytes(s.data(), s.size());
      }
      break;
    default:
      w.bytes(rec.raw.data(), rec.raw.size());
  }
  const size_t length = w.size() - start;
  if (length > 0xFFFF) return false;
  w.put16_at(length_at, static_cast<uint16_t>(length));
  return true;
}

}  // namespace

bool same_name(const Name& a, const Name& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same_label(a[i], b[i])) return false;
  return true;
}

bool operator==(const Question& a, const Question& b) {
  return a.name == b.name && a.type == b.type && a.klass == b.klass &&
         a.unicast_response == b.unicast_response;
}

bool operator==(const Record& a, const Record& b) {
  return a.name == b.name && a.type == b.type && a.klass == b.klass && a.cache_flush == b.cache_flush &&
         a.ttl == b.ttl && a.target == b.target && a.priority == b.priority && a.weight == b.weight &&
         a.port == b.port && a.strings == b.strings && a.address == b.address && a.raw == b.raw;
}

bool operator==(const Message& a, const Message& b) {
  return a.id == b.id && a.response == b.response && a.authoritative == b.authoritative &&
         a.truncated == b.truncated && a.opcode == b.opcode && a.rcode == b.rcode &&
         a.questions == b.questions && a.answers == b.answers && a.authorities == b.authorities &&
         a.additionals == b.additionals;
}

std::string to_text(const Name& name) {
  std::string out;
  for (const std::string& label : name) {
    for (char c : label) {
      if (c == '.' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('.');
  }
  return out.empty() ? "." : out;
}

Name name_of(std::string_view dotted) {
  Name out;
  while (!dotted.empty()) {
    const size_t dot = dotted.find('.');
    const std::string_view label = dotted.substr(0, dot);
    if (!label.empty()) out.emplace_back(label);
    if (dot == std::string_view::npos) break;
    dotted.remove_prefix(dot + 1);
  }
  return out;
}

std::optional<Message> parse(const uint8_t* data, size_t size, std::string* why) {
  if (why) why->clear();
  Reader r(data, size, why);
  if (size > kMaxMessage) {
    r.fail("larger than the largest mDNS message");
    return std::nullopt;
  }
  Message m;
  uint16_t flags = 0, counts[4] = {};
  if (!r.u16(m.id) || !r.u16(flags)) return std::nullopt;
  for (uint16_t& c : counts)
    if (!r.u16(c)) return std::nullopt;
  m.response = flags & 0x8000;
  m.opcode = static_cast<uint8_t>((flags >> 11) & 0xF);
  m.authoritative = flags & 0x0400;
  m.truncated = flags & 0x0200;
  m.rcode = static_cast<uint8_t>(flags & 0xF);
  if (size_t{counts[0]} + counts[1] + counts[2] + counts[3] > kMaxEntries) {
    r.fail("more questions and records than an mDNS message holds");
    return std::nullopt;
  }
  for (uint16_t i = 0; i < counts[0]; ++i) {
    Question q;
    uint16_t klass = 0;
    if (!r.name(q.name) || !r.u16(q.type) || !r.u16(klass)) return std::nullopt;
    q.unicast_response = klass & kTopBit;
    q.klass = klass & 0x7FFF;
    m.questions.push_back(std::move(q));
  }
  std::vector<Record>* sections[3] = {&m.answers, &m.authorities, &m.additionals};
  for (int s = 0; s < 3; ++s) {
    for (uint16_t i = 0; i < counts[s + 1]; ++i) {
      Record rec;
      uint16_t klass = 0, length = 0;
      if (!r.name(rec.name) || !r.u16(rec.type) || !r.u16(klass) || !r.u32(rec.ttl) || !r.u16(length))
        return std::nullopt;
      rec.cache_flush = klass & kTopBit;
      rec.klass = klass & 0x7FFF;
      if (!read_rdata(r, rec, length)) return std::nullopt;
      sections[s]->push_back(std::move(rec));
    }
  }
  if (r.left() != 0) {
    r.fail("bytes after the last record");
    return std::nullopt;
  }
  return m;
}

std::optional<std::vector<uint8_t>> serialize(const Message& m) {
  const size_t entries = m.questions.size() + m.answers.size() + m.authorities.size() + m.additionals.size();
  if (entries > kMaxEntries) return std::nullopt;
  Writer w;
  w.u16(m.id);
  w.u16(static_cast<uint16_t>((m.response ? 0x8000 : 0) | (m.opcode & 0xF) << 11 |
                              (m.authoritative ? 0x0400 : 0) | (m.truncated ? 0x0200 : 0) | (m.rcode & 0xF)));
  w.u16(static_cast<uint16_t>(m.questions.size()));
  w.u16(static_cast<uint16_t>(m.answers.size()));
  w.u16(static_cast<uint16_t>(m.authorities.size()));
  w.u16(static_cast<uint16_t>(m.additionals.size()));
  for (const Question& q : m.questions) {
    if (!w.name(q.name)) return std::nullopt;
    w.u16(q.type);
    w.u16(static_cast<uint16_t>((q.klass & 0x7FFF) | (q.unicast_response ? kTopBit : 0)));
  }
  for (const std::vector<Record>* section : {&m.answers, &m.authorities, &m.additionals})
    for (const Record& rec : *section)
      if (!write_record(w, rec)) return std::nullopt;
  if (w.size() > kMaxMessage) return std::nullopt;
  return w.take();
}

std::optional<std::string> txt_value(const std::vector<std::string>& strings, std::string_view key) {
  for (const std::string& s : strings) {
    const size_t eq = s.find('=');
    const std::string_view k = std::string_view(s).substr(0, eq);
    if (k.empty() || !same_label(k, key)) continue;
    return eq == std::string::npos ? std::string() : s.substr(eq + 1);
  }
  return std::nullopt;
}

}  // namespace peerlink::lan::dns
