#include "netlab/stun.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace peerlink::netlab::stun {
namespace {

using Clock = std::chrono::steady_clock;

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

void put32(Bytes& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    b.push_back(static_cast<uint8_t>(v >> shift));
}

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

uint32_t get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

void set_length(Bytes& b, size_t length) {
  b[2] = static_cast<uint8_t>(length >> 8);
  b[3] = static_cast<uint8_t>(length);
}

Bytes hmac_sha1(const Bytes& key, const uint8_t* data, size_t size) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (!HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), data, size, out.data(), &len))
    throw std::runtime_error("netlab: HMAC-SHA1 failed");
  out.resize(len);
  return out;
}

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Sends `request` and waits for a response with its transaction id, retransmitting every 200 ms.
std::optional<std::pair<Message, Bytes>> transact(UdpSocket& socket, const Endpoint& server,
                                                  const Bytes& request, const TransactionId& txid,
                                                  Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    socket.send_to(server, request);
    const auto resend = std::min(deadline, Clock::now() + std::chrono::milliseconds(200));
    while (Clock::now() < resend) {
      auto d = socket.receive(std::chrono::milliseconds(ms_left(resend)));
      if (!d) break;
      auto m = decode(d->data);
      if (m && m->txid == txid && d->from == server) return std::make_pair(*m, d->data);
    }
  }
  return std::nullopt;
}

std::optional<Endpoint> mapped_of(const Message& m) {
  if (const Attribute* a = m.find(kXorMappedAddress)) return decode_xor_address(a->value);
  if (const Attribute* a = m.find(kMappedAddress)) return decode_address(a->value);
  return std::nullopt;
}

std::string text_of(const Message& m, uint16_t type) {
  const Attribute* a = m.find(type);
  return a ? std::string(a->value.begin(), a->value.end()) : std::string();
}

}  // namespace

const Attribute* Message::find(uint16_t attr_type) const {
  for (const auto& a : attributes)
    if (a.type == attr_type) return &a;
  return nullptr;
}

TransactionId random_transaction_id() {
  TransactionId id{};
  if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) throw std::runtime_error("netlab: RAND_bytes");
  return id;
}

Bytes encode(const Message& m, const Bytes* integrity_key) {
  Bytes b;
  put16(b, m.type);
  put16(b, 0);  // length, set below
  put32(b, kMagicCookie);
  b.insert(b.end(), m.txid.begin(), m.txid.end());
  for (const auto& a : m.attributes) {
    put16(b, a.type);
    put16(b, static_cast<uint16_t>(a.value.size()));
    b.insert(b.end(), a.value.begin(), a.value.end());
    while (b.size() % 4 != 0)
      b.push_back(0);
  }
  if (integrity_key) {
    set_length(b, b.size() - kHeaderSize + 24);
    Bytes mac = hmac_sha1(*integrity_key, b.data(), b.size());
    put16(b, kMessageIntegrity);
    put16(b, 20);
    b.insert(b.end(), mac.begin(), mac.end());
  }
  set_length(b, b.size() - kHeaderSize);
  return b;
}

std::optional<Message> decode(const Bytes& raw) {
  if (raw.size() < kHeaderSize || (raw[0] & 0xC0) != 0) return std::nullopt;
  const size_t length = get16(&raw[2]);
  if (get32(&raw[4]) != kMagicCookie || length % 4 != 0 || raw.size() != kHeaderSize + length)
    return std::nullopt;
  Message m;
  m.type = get16(&raw[0]);
  std::copy(raw.begin() + 8, raw.begin() + 20, m.txid.begin());
  size_t pos = kHeaderSize;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) return std::nullopt;
    Attribute a;
    a.type = get16(&raw[pos]);
    const size_t len = get16(&raw[pos + 2]);
    pos += 4;
    if (raw.size() - pos < len) return std::nullopt;
    a.value.assign(raw.begin() + static_cast<long>(pos), raw.begin() + static_cast<long>(pos + len));
    pos += (len + 3) / 4 * 4;
    m.attributes.push_back(std::move(a));
  }
  if (pos != raw.size()) return std::nullopt;
  return m;
}

bool check_integrity(const Bytes& raw, const Bytes& key) {
  if (!decode(raw)) return false;
  size_t pos = kHeaderSize;
  while (pos + 4 <= raw.size()) {
    const uint16_t type = get16(&raw[pos]);
    const size_t len = get16(&raw[pos + 2]);
    if (type == kMessageIntegrity) {
      if (len != 20 || pos + 24 > raw.size()) return false;
      Bytes covered(raw.begin(), raw.begin() + static_cast<long>(pos));
      set_length(covered, pos - kHeaderSize + 24);
      Bytes mac = hmac_sha1(key, covered.data(), covered.size());
      return std::equal(mac.begin(), mac.end(), raw.begin() + static_cast<long>(pos + 4));
    }
    pos += 4 + (len + 3) / 4 * 4;
  }
  return false;
}

Bytes encode_xor_address(const Endpoint& e) {
  Bytes v;
  v.push_back(0);
  v.push_back(0x01);  // IPv4
  put16(v, static_cast<uint16_t>(e.port ^ (kMagicCookie >> 16)));
  put32(v, parse_ipv4(e.ip) ^ kMagicCookie);
  return v;
}

std::optional<Endpoint> decode_xor_address(const Bytes& value) {
  if (value.size() != 8 || value[1] != 0x01) return std::nullopt;
  const uint16_t port = static_cast<uint16_t>(get16(&value[2]) ^ (kMagicCookie >> 16));
  return Endpoint{format_ipv4(get32(&value[4]) ^ kMagicCookie), port};
}

std::optional<Endpoint> decode_address(const Bytes& value) {
  if (value.size() != 8 || value[1] != 0x01) return std::nullopt;
  return Endpoint{format_ipv4(get32(&value[4])), get16(&value[2])};
}

Bytes long_term_key(const std::string& username, const std::string& realm, const std::string& password) {
  const std::string s = username + ":" + realm + ":" + password;
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (EVP_Digest(s.data(), s.size(), out.data(), &len, EVP_md5(), nullptr) != 1)
    throw std::runtime_error("netlab: MD5 failed");
  out.resize(len);
  return out;
}

int error_code(const Message& m, std::string* reason) {
  const Attribute* a = m.find(kErrorCode);
  if (!a || a->value.size() < 4) return 0;
  if (reason) reason->assign(a->value.begin() + 4, a->value.end());
  return (a->value[2] & 0x07) * 100 + a->value[3];
}

std::optional<Endpoint> binding(UdpSocket& socket, const Endpoint& server,
                                std::chrono::milliseconds timeout) {
  Message req;
  req.type = kBindingRequest;
  req.txid = random_transaction_id();
  auto r = transact(socket, server, encode(req), req.txid, Clock::now() + timeout);
  if (!r || r->first.type != kBindingSuccess) return std::nullopt;
  return mapped_of(r->first);
}

std::optional<Endpoint> binding_tcp(TcpSocket& socket, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Message req;
  req.type = kBindingRequest;
  req.txid = random_transaction_id();
  if (!socket.send_all(encode(req), timeout)) return std::nullopt;
  while (Clock::now() < deadline) {
    auto header = socket.receive_exact(kHeaderSize, std::chrono::milliseconds(ms_left(deadline)));
    if (!header) return std::nullopt;
    auto body = socket.receive_exact(get16(&(*header)[2]), std::chrono::milliseconds(ms_left(deadline)));
    if (!body) return std::nullopt;
    header->insert(header->end(), body->begin(), body->end());
    auto m = decode(*header);
    if (m && m->txid == req.txid) {
      if (m->type != kBindingSuccess) return std::nullopt;
      return mapped_of(*m);
    }
  }
  return std::nullopt;
}

AllocateResult allocate(UdpSocket& socket, const Endpoint& server, const std::optional<Credentials>& creds,
                        std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  AllocateResult result;
  Bytes requested_transport = {17, 0, 0, 0};  // UDP

  Message req;
  req.type = kAllocateRequest;
  req.txid = random_transaction_id();
  req.add(kRequestedTransport, requested_transport);
  auto r = transact(socket, server, encode(req), req.txid, deadline);
  for (int round = 0;; ++round) {
    if (!r) return result;
    result.answered = true;
    const Message& m = r->first;
    result.error_code = error_code(m, &result.reason);
    if (m.type == kAllocateSuccess) {
      result.error_code = 0;
      if (const Attribute* a = m.find(kXorRelayedAddress)) result.relayed = decode_xor_address(a->value);
      if (const Attribute* a = m.find(kXorMappedAddress)) result.mapped = decode_xor_address(a->value);
      if (creds)
        result.integrity_ok =
            check_integrity(r->second, long_term_key(creds->username, result.realm, creds->password));
      return result;
    }
    if (m.type != kAllocateError) {
      result.error_code = -1;
      result.reason = "unexpected response type";
      return result;
    }
    const std::string realm = text_of(m, kRealm);
    if (!realm.empty()) result.realm = realm;
    result.nonce = text_of(m, kNonce);
    const bool challenge = result.error_code == 401 || result.error_code == 438;
    if (!challenge || !creds || round >= 2) return result;
    // A new nonce comes with every 401/438; a 401 after an authenticated request means wrong credentials.
    if (round > 0 && result.error_code == 401) return result;
    if (result.realm.empty() || result.nonce.empty()) return result;

    Message auth;
    auth.type = kAllocateRequest;
    auth.txid = random_transaction_id();
    auth.add(kRequestedTransport, requested_transport);
    auth.add(kUsername, creds->username);
    auth.add(kRealm, result.realm);
    auth.add(kNonce, result.nonce);
    const Bytes key = long_term_key(creds->username, result.realm, creds->password);
    r = transact(socket, server, encode(auth, &key), auth.txid, deadline);
  }
}

int channel_bind(UdpSocket& socket, const Endpoint& server, const Credentials& creds,
                 const std::string& realm, const std::string& nonce, uint16_t channel, const Endpoint& peer,
                 std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const Bytes key = long_term_key(creds.username, realm, creds.password);
  std::string current_nonce = nonce;
  for (int round = 0; round < 2; ++round) {
    Message req;
    req.type = kChannelBindRequest;
    req.txid = random_transaction_id();
    Bytes number;
    put16(number, channel);
    put16(number, 0);  // RFFU
    req.add(kChannelNumber, number);
    req.add(kXorPeerAddress, encode_xor_address(peer));
    req.add(kUsername, creds.username);
    req.add(kRealm, realm);
    req.add(kNonce, current_nonce);
    auto r = transact(socket, server, encode(req, &key), req.txid, deadline);
    if (!r) return -1;
    if (r->first.type == kChannelBindSuccess) return 0;
    const int code = error_code(r->first);
    if (code != 438) return code != 0 ? code : -1;
    current_nonce = text_of(r->first, kNonce);
  }
  return 438;
}

Bytes channel_data(uint16_t channel, const Bytes& data) {
  Bytes b;
  put16(b, channel);
  put16(b, static_cast<uint16_t>(data.size()));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

}  // namespace peerlink::netlab::stun
