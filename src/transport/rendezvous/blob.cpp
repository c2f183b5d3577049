#include "transport/rendezvous/blob.hpp"

#include <cstring>

#include "transport/protocol/buffer.hpp"

namespace peerlink::rendezvous {
namespace {

using protocol::Reader;
using protocol::Writer;

constexpr uint8_t kMagic0 = 'P', kMagic1 = 'L';
constexpr uint8_t kFlagEndOfCandidates = 1, kFlagSymmetric = 2;
constexpr uint8_t kFamilyV4 = 4, kFamilyV6 = 6;

// ICE characters (RFC 8445 §5.3): ALPHA / DIGIT / "+" / "/".
bool ice_chars(const std::string& s, size_t min, size_t max) {
  if (s.size() < min || s.size() > max) return false;
  for (unsigned char c : s) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

bool has_candidates(BlobType t) {
  return t == BlobType::kOffer || t == BlobType::kAnswer || t == BlobType::kUpdate;
}

void put_string(Writer& w, const std::string& s) {
  w.put_u8(uint8_t(s.size()));
  w.put_bytes(s.data(), s.size());
}

bool get_string(Reader& r, std::string& s, size_t max) {
  uint8_t n;
  const uint8_t* p;
  if (!r.get_u8(n) || n > max || !r.get_bytes(n, p)) return false;
  s.assign(reinterpret_cast<const char*>(p), n);
  return true;
}

bool valid_candidate(const Candidate& c) {
  if (uint8_t(c.type) > uint8_t(CandidateType::kRelayed)) return false;
  if (uint8_t(c.transport) > uint8_t(CandidateTransport::kTcpPassive)) return false;
  if (!ice_chars(c.foundation, 1, 32)) return false;
  if (c.address.is_unspecified() || c.address.is_any()) return false;
  // A TCP-active candidate has no port of its own (RFC 6544: port 9); others need one.
  return c.address.port() != 0 || c.transport == CandidateTransport::kTcpActive;
}

bool fail(std::string* error, const char* why) {
  if (error) *error = why;
  return false;
}

}  // namespace

bool Candidate::operator==(const Candidate& o) const {
  return type == o.type && transport == o.transport && priority == o.priority && foundation == o.foundation &&
         address == o.address;
}

bool encode(const Blob& b, std::vector<uint8_t>& out) {
  uint8_t buf[kMaxBlobSize];
  Writer w(buf, sizeof buf);
  w.put_u8(kMagic0);
  w.put_u8(kMagic1);
  w.put_u8(Blob::kVersion);
  w.put_u8(uint8_t(b.type));
  w.put_u64(b.session);
  w.put_bytes(b.sender_key.data(), b.sender_key.size());
  if (has_candidates(b.type)) {
    if (b.candidates.size() > Blob::kMaxCandidates) return false;
    bool pure_ack = b.ufrag.empty() && b.pwd.empty();
    if (!pure_ack && (!ice_chars(b.ufrag, 4, 64) || !ice_chars(b.pwd, 22, 64))) return false;
    if (pure_ack != (b.type == BlobType::kUpdate) || (pure_ack && !b.candidates.empty())) return false;
    uint8_t flags = (b.end_of_candidates ? kFlagEndOfCandidates : 0) | (b.symmetric ? kFlagSymmetric : 0);
    w.put_u8(flags);
    w.put_u16(b.seq);
    w.put_u16(b.ack);
    w.put_u8(b.generation);
    w.put_u64(b.tie_breaker);
    w.put_u16(b.virtual_port);
    put_string(w, b.ufrag);
    put_string(w, b.pwd);
    w.put_u8(uint8_t(b.candidates.size()));
    for (const Candidate& c : b.candidates) {
      if (!valid_candidate(c)) return false;
      w.put_u8(uint8_t(c.type));
      w.put_u8(uint8_t(c.transport));
      w.put_u32(c.priority);
      put_string(w, c.foundation);
      bool v4 = c.address.is_ipv4();
      w.put_u8(v4 ? kFamilyV4 : kFamilyV6);
      w.put_bytes(c.address.bytes().data(), v4 ? 4 : 16);
      w.put_u16(c.address.port());
    }
  } else {
    if (b.text.size() > Blob::kMaxReasonText) return false;
    w.put_u32(b.reason);
    put_string(w, b.text);
  }
  if (!w.ok()) return false;
  out.insert(out.end(), buf, buf + w.size());
  return true;
}

std::optional<Blob> decode(const uint8_t* data, size_t size, std::string* error) {
  if (size > kMaxBlobSize) return fail(error, "blob larger than kMaxBlobSize"), std::nullopt;
  Reader r(data, size);
  uint8_t m0, m1, version, type;
  if (!r.get_u8(m0) || !r.get_u8(m1) || m0 != kMagic0 || m1 != kMagic1)
    return fail(error, "not a peerlink blob"), std::nullopt;
  if (!r.get_u8(version) || version != Blob::kVersion)
    return fail(error, "unsupported blob version"), std::nullopt;
  if (!r.get_u8(type) || type < uint8_t(BlobType::kOffer) || type > uint8_t(BlobType::kClose))
    return fail(error, "unknown blob type"), std::nullopt;
  Blob b;
  b.type = BlobType(type);
  const uint8_t* key;
  if (!r.get_u64(b.session) || !r.get_bytes(32, key)) return fail(error, "truncated header"), std::nullopt;
  std::memcpy(b.sender_key.data(), key, 32);
  if (b.session == 0) return fail(error, "session id 0"), std::nullopt;

  if (has_candidates(b.type)) {
    uint8_t flags, count;
    if (!r.get_u8(flags) || !r.get_u16(b.seq) || !r.get_u16(b.ack) || !r.get_u8(b.generation) ||
        !r.get_u64(b.tie_breaker) || !r.get_u16(b.virtual_port) || !get_string(r, b.ufrag, 64) ||
        !get_string(r, b.pwd, 64) || !r.get_u8(count))
      return fail(error, "truncated candidate blob"), std::nullopt;
    if (flags & ~(kFlagEndOfCandidates | kFlagSymmetric)) return fail(error, "unknown flags"), std::nullopt;
    b.end_of_candidates = flags & kFlagEndOfCandidates;
    b.symmetric = flags & kFlagSymmetric;
    bool pure_ack = b.ufrag.empty() && b.pwd.empty();
    if (b.seq == 0 && !pure_ack) return fail(error, "sequence number 0"), std::nullopt;
    if (pure_ack != (b.type == BlobType::kUpdate))
      return fail(error, "bad blob type for its content"), std::nullopt;
    if (pure_ack ? count != 0 : (!ice_chars(b.ufrag, 4, 64) || !ice_chars(b.pwd, 22, 64)))
      return fail(error, "bad ICE credentials"), std::nullopt;
    if (count > Blob::kMaxCandidates) return fail(error, "too many candidates"), std::nullopt;
    b.candidates.resize(count);
    for (Candidate& c : b.candidates) {
      uint8_t ctype, transport, family;
      uint16_t port;
      const uint8_t* ip;
      if (!r.get_u8(ctype) || !r.get_u8(transport) || !r.get_u32(c.priority) ||
          !get_string(r, c.foundation, 32) || !r.get_u8(family))
        return fail(error, "truncated candidate"), std::nullopt;
      if (family != kFamilyV4 && family != kFamilyV6) return fail(error, "bad address family"), std::nullopt;
      if (!r.get_bytes(family == kFamilyV4 ? 4 : 16, ip) || !r.get_u16(port))
        return fail(error, "truncated candidate"), std::nullopt;
      c.type = CandidateType(ctype);
      c.transport = CandidateTransport(transport);
      if (family == kFamilyV4) {
        c.address = Address::ipv4({ip[0], ip[1], ip[2], ip[3]}, port);
      } else {
        std::array<uint8_t, 16> a;
        std::memcpy(a.data(), ip, 16);
        c.address = Address::ipv6(a, port);
      }
      if (!valid_candidate(c)) return fail(error, "invalid candidate"), std::nullopt;
    }
  } else {
    if (!r.get_u32(b.reason) || !get_string(r, b.text, Blob::kMaxReasonText))
      return fail(error, "truncated reject/close"), std::nullopt;
  }
  if (!r.empty()) return fail(error, "trailing bytes"), std::nullopt;
  return b;
}

const char* to_string(BlobType type) {
  switch (type) {
    case BlobType::kOffer:
      return "offer";
    case BlobType::kAnswer:
      return "answer";
    case BlobType::kUpdate:
      return "update";
    case BlobType::kReject:
      return "reject";
    case BlobType::kClose:
      return "close";
  }
  return "?";
}

const char* to_string(CandidateType type) {
  switch (type) {
    case CandidateType::kHost:
      return "host";
    case CandidateType::kServerReflexive:
      return "srflx";
    case CandidateType::kPeerReflexive:
      return "prflx";
    case CandidateType::kRelayed:
      return "relay";
  }
  return "?";
}

}  // namespace peerlink::rendezvous
