#include "transport/crypto/noise.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <limits>

namespace peerlink::crypto {
namespace {

// Token codes in message_tokens_. A psk token carries its index into cfg.psks: kPskBase + i.
enum Token : uint8_t { kE, kS, kEE, kES, kSE, kSS, kPskBase = 16 };

constexpr size_t kMaxMessageLength = 65535;  // Noise §3
constexpr size_t kDhLength = 32;

struct PatternSpec {
  NoisePattern pattern;
  const char* name;
  bool initiator_premessage_s;  // "-> s" before the handshake
  bool responder_premessage_s;  // "<- s" before the handshake
  std::vector<std::vector<uint8_t>> messages;
};

// Noise spec §7.4 (one-way patterns are not offered) and §7.5.
const std::vector<PatternSpec>& pattern_table() {
  static const std::vector<PatternSpec> table = {
      {NoisePattern::kNN, "NN", false, false, {{kE}, {kE, kEE}}},
      {NoisePattern::kNK, "NK", false, true, {{kE, kES}, {kE, kEE}}},
      {NoisePattern::kNX, "NX", false, false, {{kE}, {kE, kEE, kS, kES}}},
      {NoisePattern::kKN, "KN", true, false, {{kE}, {kE, kEE, kSE}}},
      {NoisePattern::kKK, "KK", true, true, {{kE, kES, kSS}, {kE, kEE, kSE}}},
      {NoisePattern::kKX, "KX", true, false, {{kE}, {kE, kEE, kSE, kS, kES}}},
      {NoisePattern::kXN, "XN", false, false, {{kE}, {kE, kEE}, {kS, kSE}}},
      {NoisePattern::kXK, "XK", false, true, {{kE, kES}, {kE, kEE}, {kS, kSE}}},
      {NoisePattern::kXX, "XX", false, false, {{kE}, {kE, kEE, kS, kES}, {kS, kSE}}},
      {NoisePattern::kIN, "IN", false, false, {{kE, kS}, {kE, kEE, kSE}}},
      {NoisePattern::kIK, "IK", false, true, {{kE, kES, kS, kSS}, {kE, kEE, kSE}}},
      {NoisePattern::kIX, "IX", false, false, {{kE, kS}, {kE, kEE, kSE, kS, kES}}},
  };
  return table;
}

const PatternSpec* find_pattern(NoisePattern p) {
  for (const PatternSpec& spec : pattern_table()) {
    if (spec.pattern == p) return &spec;
  }
  return nullptr;
}

// Valid psk positions: 0 (start of the first message) up to the number of messages, no repeats.
bool valid_psk_positions(const std::vector<int>& positions, size_t num_messages) {
  for (size_t i = 0; i < positions.size(); ++i) {
    if (positions[i] < 0 || static_cast<size_t>(positions[i]) > num_messages) return false;
    for (size_t j = 0; j < i; ++j) {
      if (positions[j] == positions[i]) return false;
    }
  }
  return true;
}

bool parse_psk_modifiers(const std::string& text, std::vector<int>& positions) {
  positions.clear();
  size_t pos = 0;
  while (pos < text.size()) {
    if (text.compare(pos, 3, "psk") != 0) return false;
    pos += 3;
    const size_t digits_start = pos;
    int value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - digits_start < 2) {
      value = value * 10 + (text[pos] - '0');
      ++pos;
    }
    if (pos == digits_start) return false;
    positions.push_back(value);
    if (pos == text.size()) break;
    if (text[pos] != '+' || pos + 1 == text.size()) return false;
    ++pos;
  }
  return true;
}

// Which keys a DH token combines, from this side's point of view (Noise §7.1: "es" is the initiator's
// ephemeral with the responder's static, whichever side computes it).
void dh_operands(uint8_t token, bool initiator, bool& local_static, bool& remote_static) {
  switch (token) {
    case kEE:
      local_static = false;
      remote_static = false;
      break;
    case kES:
      local_static = !initiator;
      remote_static = initiator;
      break;
    case kSE:
      local_static = initiator;
      remote_static = !initiator;
      break;
    default:  // kSS
      local_static = true;
      remote_static = true;
      break;
  }
}

bool is_dh_token(uint8_t token) {
  return token == kEE || token == kES || token == kSE || token == kSS;
}

}  // namespace

std::string noise_protocol_name(const HandshakeConfig& cfg) {
  const PatternSpec* spec = find_pattern(cfg.pattern);
  std::string name = "Noise_";
  name += spec != nullptr ? spec->name : "??";
  for (size_t i = 0; i < cfg.psk_positions.size(); ++i) {
    if (i > 0) name += '+';
    name += "psk" + std::to_string(cfg.psk_positions[i]);
  }
  name += "_25519_";
  name += cfg.cipher == AeadAlgorithm::kChaChaPoly ? "ChaChaPoly" : "AESGCM";
  name += cfg.hash == HashAlgorithm::kSha256 ? "_SHA256" : "_BLAKE2s";
  return name;
}

bool parse_noise_protocol_name(const std::string& name, HandshakeConfig& cfg) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = name.find('_', start);
    parts.push_back(name.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (parts.size() != 5 || parts[0] != "Noise" || parts[2] != "25519") return false;

  AeadAlgorithm cipher;
  if (parts[3] == "ChaChaPoly") {
    cipher = AeadAlgorithm::kChaChaPoly;
  } else if (parts[3] == "AESGCM") {
    cipher = AeadAlgorithm::kAesGcm;
  } else {
    return false;
  }
  HashAlgorithm hash_alg;
  if (parts[4] == "SHA256") {
    hash_alg = HashAlgorithm::kSha256;
  } else if (parts[4] == "BLAKE2s") {
    hash_alg = HashAlgorithm::kBlake2s;
  } else {
    return false;
  }

  const std::string& pattern_part = parts[1];
  size_t base_len = 0;
  while (base_len < pattern_part.size() && pattern_part[base_len] >= 'A' && pattern_part[base_len] <= 'Z') {
    ++base_len;
  }
  const std::string base = pattern_part.substr(0, base_len);
  const PatternSpec* spec = nullptr;
  for (const PatternSpec& candidate : pattern_table()) {
    if (base == candidate.name) spec = &candidate;
  }
  if (spec == nullptr) return false;
  std::vector<int> positions;
  if (!parse_psk_modifiers(pattern_part.substr(base_len), positions)) return false;
  if (!valid_psk_positions(positions, spec->messages.size())) return false;

  cfg.pattern = spec->pattern;
  cfg.psk_positions = positions;
  cfg.cipher = cipher;
  cfg.hash = hash_alg;
  return true;
}

const char* to_string(HandshakeError e) {
  switch (e) {
    case HandshakeError::kNone:
      return "none";
    case HandshakeError::kWrongTurn:
      return "not this side's turn";
    case HandshakeError::kMissingKey:
      return "a key the pattern needs is missing";
    case HandshakeError::kTruncated:
      return "handshake message truncated";
    case HandshakeError::kDecryptFailed:
      return "handshake message failed authentication";
    case HandshakeError::kDhFailed:
      return "Diffie-Hellman failed (low-order public key)";
    case HandshakeError::kTooLong:
      return "handshake message longer than 65535 bytes";
    case HandshakeError::kAlreadyComplete:
      return "handshake already complete";
  }
  return "unknown handshake error";
}

HandshakeState::HandshakeState(const HandshakeConfig& cfg, RandomSource& rng) : cfg_(cfg), rng_(rng) {
  s_ = cfg_.local_static;
  if (s_) s_object_ = cfg_.local_static_object;
  rs_ = cfg_.remote_static;
  re_ = cfg_.remote_ephemeral;

  const std::string name = noise_protocol_name(cfg_);
  if (name.size() <= kHashLength) {
    std::copy(name.begin(), name.end(), h_.begin());
  } else {
    h_ = hash(cfg_.hash, reinterpret_cast<const uint8_t*>(name.data()), name.size());
  }
  ck_ = h_;
  mix_hash(cfg_.prologue.data(), cfg_.prologue.size());

  const PatternSpec* spec = find_pattern(cfg_.pattern);
  if (spec == nullptr || !valid_psk_positions(cfg_.psk_positions, spec->messages.size()) ||
      cfg_.psks.size() < cfg_.psk_positions.size()) {
    error_ = HandshakeError::kMissingKey;
    return;
  }
  message_tokens_ = spec->messages;
  for (size_t i = 0; i < cfg_.psk_positions.size(); ++i) {
    const int p = cfg_.psk_positions[i];
    const uint8_t token = static_cast<uint8_t>(kPskBase + i);
    if (p == 0) {
      message_tokens_[0].insert(message_tokens_[0].begin(), token);
    } else {
      message_tokens_[static_cast<size_t>(p - 1)].push_back(token);
    }
  }

  // Pre-messages: the initiator's first, then the responder's (§7.1).
  if (spec->initiator_premessage_s) {
    if (cfg_.initiator ? !s_ : !rs_) {
      error_ = HandshakeError::kMissingKey;
      return;
    }
    const Key32& key = cfg_.initiator ? s_->public_key : *rs_;
    mix_hash(key.data(), key.size());
  }
  if (spec->responder_premessage_s) {
    if (cfg_.initiator ? !rs_ : !s_) {
      error_ = HandshakeError::kMissingKey;
      return;
    }
    const Key32& key = cfg_.initiator ? *rs_ : s_->public_key;
    mix_hash(key.data(), key.size());
  }
}

bool HandshakeState::complete() const {
  return error_ == HandshakeError::kNone && !message_tokens_.empty() &&
         message_index_ >= message_tokens_.size();
}

bool HandshakeState::is_my_turn() const {
  return error_ == HandshakeError::kNone && message_index_ < message_tokens_.size() &&
         ((message_index_ % 2 == 0) == cfg_.initiator);
}

TransportKeys HandshakeState::split() const {
  TransportKeys keys;
  if (!complete()) return keys;  // all zeros: a caller bug shows up as a failed handshake, not weak keys
  Digest k1{}, k2{};
  noise_hkdf(cfg_.hash, ck_, nullptr, 0, 2, &k1, &k2, nullptr);
  std::copy(k1.begin(), k1.end(), keys.initiator_to_responder.begin());
  std::copy(k2.begin(), k2.end(), keys.responder_to_initiator.begin());
  OPENSSL_cleanse(k1.data(), k1.size());
  OPENSSL_cleanse(k2.data(), k2.size());
  return keys;
}

void HandshakeState::mix_hash(const uint8_t* data, size_t len) {
  h_ = hash2(cfg_.hash, h_.data(), h_.size(), data, len);
}

void HandshakeState::mix_key(const uint8_t* ikm, size_t len) {
  Digest temp_k{};
  noise_hkdf(cfg_.hash, ck_, ikm, len, 2, &ck_, &temp_k, nullptr);
  cs_.k = temp_k;
  cs_.n = 0;
  OPENSSL_cleanse(temp_k.data(), temp_k.size());
}

void HandshakeState::mix_key_and_hash(const uint8_t* ikm, size_t len) {
  Digest temp_h{}, temp_k{};
  noise_hkdf(cfg_.hash, ck_, ikm, len, 3, &ck_, &temp_h, &temp_k);
  mix_hash(temp_h.data(), temp_h.size());
  cs_.k = temp_k;
  cs_.n = 0;
  OPENSSL_cleanse(temp_k.data(), temp_k.size());
}

void HandshakeState::encrypt_and_hash(const uint8_t* pt, size_t len, std::vector<uint8_t>& out) {
  const size_t old = out.size();
  if (!cs_.k) {
    out.insert(out.end(), pt, pt + len);
  } else {
    out.resize(old + len + kAeadTagLength);
    Aead aead(cfg_.cipher, *cs_.k);
    aead.seal(cs_.n++, h_.data(), h_.size(), pt, len, out.data() + old);
  }
  mix_hash(out.data() + old, out.size() - old);
}

bool HandshakeState::decrypt_and_hash(const uint8_t* ct, size_t len, std::vector<uint8_t>& out) {
  if (!cs_.k) {
    out.insert(out.end(), ct, ct + len);
  } else {
    if (len < kAeadTagLength) return false;
    const size_t old = out.size();
    out.resize(old + len - kAeadTagLength);
    Aead aead(cfg_.cipher, *cs_.k);
    if (!aead.open(cs_.n, h_.data(), h_.size(), ct, len, out.data() + old)) {
      out.resize(old);
      return false;
    }
    ++cs_.n;
  }
  mix_hash(ct, len);
  return true;
}

HandshakeError HandshakeState::dh(bool local_static, bool remote_static) {
  const std::optional<X25519KeyPair>& local = local_static ? s_ : e_;
  const std::optional<Key32>& remote = remote_static ? rs_ : re_;
  if (!local || !remote) return HandshakeError::kMissingKey;
  // The static-static result may come precomputed, but only when the remote static key was a pre-message:
  // then it is the one the result was computed with (see HandshakeConfig::static_static).
  if (local_static && remote_static && cfg_.static_static && cfg_.remote_static) {
    mix_key(cfg_.static_static->data(), cfg_.static_static->size());
    wipe(*cfg_.static_static);
    cfg_.static_static.reset();  // a pattern has one ss token
    return HandshakeError::kNone;
  }
  X25519Local& local_object = local_static ? s_object_ : e_object_;
  X25519Remote& remote_object = remote_static ? rs_object_ : re_object_;
  if (local_object.empty()) local_object = X25519Local(local->private_key);
  if (remote_object.empty()) remote_object = X25519Remote(*remote);
  Key32 shared{};
  const bool ok = x25519(local_object, remote_object, shared);
  if (ok) mix_key(shared.data(), shared.size());
  OPENSSL_cleanse(shared.data(), shared.size());
  return ok ? HandshakeError::kNone : HandshakeError::kDhFailed;
}

HandshakeError HandshakeState::write_message(const uint8_t* payload, size_t payload_len,
                                             std::vector<uint8_t>& out) {
  if (error_ != HandshakeError::kNone) return error_;
  if (message_index_ >= message_tokens_.size()) return HandshakeError::kAlreadyComplete;
  if (!is_my_turn()) return HandshakeError::kWrongTurn;
  const std::vector<uint8_t>& tokens = message_tokens_[message_index_];
  const bool psk_mode = !cfg_.psk_positions.empty();

  // Size the message before touching any state, so an oversized payload leaves the handshake usable.
  bool keyed = cs_.k.has_value();
  size_t total = 0;
  for (uint8_t t : tokens) {
    if (t == kE) {
      total += kDhLength;
      keyed = keyed || psk_mode;
    } else if (t == kS) {
      total += kDhLength + (keyed ? kAeadTagLength : 0);
    } else {
      keyed = true;
    }
  }
  if (payload_len > kMaxMessageLength ||
      total + payload_len + (keyed ? kAeadTagLength : 0) > kMaxMessageLength) {
    return HandshakeError::kTooLong;
  }

  out.clear();
  HandshakeError err = HandshakeError::kNone;
  for (uint8_t t : tokens) {
    if (t == kE) {
      if (cfg_.local_ephemeral) {
        e_ = *cfg_.local_ephemeral;
        e_object_ = X25519Local();  // made at its first DH
        wipe(*cfg_.local_ephemeral);
        cfg_.local_ephemeral.reset();  // used once, whatever the pattern
      } else {
        e_ = x25519_generate(rng_, e_object_);
      }
      out.insert(out.end(), e_->public_key.begin(), e_->public_key.end());
      mix_hash(e_->public_key.data(), e_->public_key.size());
      if (psk_mode) mix_key(e_->public_key.data(), e_->public_key.size());
    } else if (t == kS) {
      if (!s_) {
        err = HandshakeError::kMissingKey;
      } else {
        encrypt_and_hash(s_->public_key.data(), s_->public_key.size(), out);
      }
    } else if (is_dh_token(t)) {
      bool local_static = false, remote_static = false;
      dh_operands(t, cfg_.initiator, local_static, remote_static);
      err = dh(local_static, remote_static);
    } else {
      const Key32& psk = cfg_.psks[t - kPskBase];
      mix_key_and_hash(psk.data(), psk.size());
    }
    if (err != HandshakeError::kNone) {
      error_ = err;
      out.clear();
      return err;
    }
  }
  encrypt_and_hash(payload, payload_len, out);
  ++message_index_;
  return HandshakeError::kNone;
}

HandshakeError HandshakeState::read_message(const uint8_t* msg, size_t msg_len,
                                            std::vector<uint8_t>& payload_out) {
  if (error_ != HandshakeError::kNone) return error_;
  if (message_index_ >= message_tokens_.size()) return HandshakeError::kAlreadyComplete;
  if (is_my_turn()) return HandshakeError::kWrongTurn;
  const std::vector<uint8_t>& tokens = message_tokens_[message_index_];
  const bool psk_mode = !cfg_.psk_positions.empty();
  payload_out.clear();
  auto fail = [&](HandshakeError e) {
    error_ = e;
    payload_out.clear();
    return e;
  };
  if (msg_len > kMaxMessageLength) return fail(HandshakeError::kTooLong);

  size_t pos = 0;
  for (uint8_t t : tokens) {
    if (t == kE) {
      if (msg_len - pos < kDhLength) return fail(HandshakeError::kTruncated);
      Key32 re{};
      std::copy(msg + pos, msg + pos + kDhLength, re.begin());
      pos += kDhLength;
      re_ = re;
      re_object_ = X25519Remote();
      mix_hash(re.data(), re.size());
      if (psk_mode) mix_key(re.data(), re.size());
    } else if (t == kS) {
      const size_t need = kDhLength + (cs_.k ? kAeadTagLength : 0);
      if (msg_len - pos < need) return fail(HandshakeError::kTruncated);
      std::vector<uint8_t> rs;
      if (!decrypt_and_hash(msg + pos, need, rs)) return fail(HandshakeError::kDecryptFailed);
      pos += need;
      Key32 key{};
      std::copy(rs.begin(), rs.end(), key.begin());
      rs_ = key;
      rs_object_ = X25519Remote();
    } else if (is_dh_token(t)) {
      bool local_static = false, remote_static = false;
      dh_operands(t, cfg_.initiator, local_static, remote_static);
      if (const HandshakeError e = dh(local_static, remote_static); e != HandshakeError::kNone)
        return fail(e);
    } else {
      const Key32& psk = cfg_.psks[t - kPskBase];
      mix_key_and_hash(psk.data(), psk.size());
    }
  }
  const size_t rest = msg_len - pos;
  if (cs_.k && rest < kAeadTagLength) return fail(HandshakeError::kTruncated);
  if (!decrypt_and_hash(msg + pos, rest, payload_out)) return fail(HandshakeError::kDecryptFailed);
  ++message_index_;
  return HandshakeError::kNone;
}

void NoiseCipher::encrypt(const uint8_t* pt, size_t len, std::vector<uint8_t>& out) {
  out.clear();
  // Nonce 2^64-1 is reserved (Noise §5.1); reaching it means the session must be rekeyed or dropped.
  if (n_ == std::numeric_limits<uint64_t>::max()) return;
  out.resize(len + kAeadTagLength);
  aead_.seal(n_++, nullptr, 0, pt, len, out.data());
}

bool NoiseCipher::decrypt(const uint8_t* ct, size_t len, std::vector<uint8_t>& out) {
  out.clear();
  if (len < kAeadTagLength || n_ == std::numeric_limits<uint64_t>::max()) return false;
  out.resize(len - kAeadTagLength);
  if (!aead_.open(n_, nullptr, 0, ct, len, out.data())) {
    out.clear();
    return false;
  }
  ++n_;
  return true;
}

}  // namespace peerlink::crypto
