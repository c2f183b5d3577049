// Every cacophony vector in tests/data/noise-vectors-25519.json, one CTest case each, plus the handshake's
// behaviour on misuse and hostile input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "transport/crypto/noise.hpp"

namespace peerlink::crypto {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes from_hex(const std::string& s) {
  Bytes out;
  for (size_t i = 0; i + 1 < s.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
  return out;
}

Key32 key_from_hex(const std::string& s) {
  const Bytes b = from_hex(s);
  Key32 k{};
  std::copy(b.begin(), b.begin() + std::min(b.size(), k.size()), k.begin());
  return k;
}

struct Message {
  Bytes payload;
  Bytes ciphertext;
};

struct Vector {
  std::string name;
  std::string load_error;  // set when the file could not be read: the single "vector" then fails
  nlohmann::json json;
};

// Shown in test names and failure messages instead of the object's raw bytes.
void PrintTo(const Vector& v, std::ostream* os) {
  *os << v.name;
}

std::vector<Vector> load_vectors() {
  const std::string path = std::string(PEERLINK_TEST_DATA_DIR) + "/noise-vectors-25519.json";
  std::ifstream in(path);
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("vectors")) return {{"LoadFailed", "cannot parse " + path, {}}};
  std::vector<Vector> out;
  for (const nlohmann::json& v : doc["vectors"])
    out.push_back({v.value("protocol_name", "Unnamed"), "", v});
  return out;
}

// Builds one side's configuration from the vector fields with the given prefix ("init_" or "resp_").
HandshakeConfig side_config(const nlohmann::json& v, const std::string& prefix, bool initiator) {
  HandshakeConfig cfg;
  EXPECT_TRUE(parse_noise_protocol_name(v["protocol_name"].get<std::string>(), cfg));
  cfg.initiator = initiator;
  cfg.prologue = from_hex(v.value(prefix + "prologue", ""));
  if (v.contains(prefix + "static"))
    cfg.local_static = x25519_from_private(key_from_hex(v[prefix + "static"]));
  if (v.contains(prefix + "ephemeral")) {
    cfg.local_ephemeral = x25519_from_private(key_from_hex(v[prefix + "ephemeral"]));
  }
  if (v.contains(prefix + "remote_static")) cfg.remote_static = key_from_hex(v[prefix + "remote_static"]);
  if (v.contains(prefix + "psks")) {
    for (const auto& psk : v[prefix + "psks"])
      cfg.psks.push_back(key_from_hex(psk.get<std::string>()));
  }
  return cfg;
}

class NoiseVectors : public ::testing::TestWithParam<Vector> {};

TEST_P(NoiseVectors, HandshakeAndTransportMatch) {
  const Vector& vec = GetParam();
  ASSERT_TRUE(vec.load_error.empty()) << vec.load_error;
  const nlohmann::json& v = vec.json;
  SeededRandom rng(1);  // unused: the vectors fix every ephemeral key
  HandshakeState init(side_config(v, "init_", true), rng);
  HandshakeState resp(side_config(v, "resp_", false), rng);

  std::vector<Message> messages;
  for (const auto& m : v["messages"])
    messages.push_back({from_hex(m["payload"]), from_hex(m["ciphertext"])});

  // Cacophony convention: message i is sent by the initiator when i is even, the responder when odd, both
  // during the handshake and for the transport messages after it.
  size_t i = 0;
  for (; i < messages.size() && !(init.complete() && resp.complete()); ++i) {
    HandshakeState& sender = i % 2 == 0 ? init : resp;
    HandshakeState& receiver = i % 2 == 0 ? resp : init;
    ASSERT_TRUE(sender.is_my_turn()) << "message " << i;
    Bytes wire, payload;
    ASSERT_EQ(sender.write_message(messages[i].payload.data(), messages[i].payload.size(), wire),
              HandshakeError::kNone)
        << "message " << i;
    EXPECT_EQ(wire, messages[i].ciphertext) << "handshake message " << i;
    ASSERT_EQ(receiver.read_message(wire.data(), wire.size(), payload), HandshakeError::kNone)
        << "message " << i;
    EXPECT_EQ(payload, messages[i].payload) << "handshake message " << i;
  }
  ASSERT_TRUE(init.complete());
  ASSERT_TRUE(resp.complete());
  EXPECT_EQ(init.handshake_hash(), key_from_hex(v["handshake_hash"]));
  EXPECT_EQ(resp.handshake_hash(), key_from_hex(v["handshake_hash"]));
  if (v.contains("resp_static")) {
    ASSERT_TRUE(init.remote_static().has_value());
    EXPECT_EQ(*init.remote_static(), x25519_from_private(key_from_hex(v["resp_static"])).public_key);
  }
  if (v.contains("init_static")) {
    ASSERT_TRUE(resp.remote_static().has_value());
    EXPECT_EQ(*resp.remote_static(), x25519_from_private(key_from_hex(v["init_static"])).public_key);
  }

  const TransportKeys ik = init.split();
  const TransportKeys rk = resp.split();
  EXPECT_EQ(ik.initiator_to_responder, rk.initiator_to_responder);
  EXPECT_EQ(ik.responder_to_initiator, rk.responder_to_initiator);
  HandshakeConfig cfg;
  ASSERT_TRUE(parse_noise_protocol_name(v["protocol_name"].get<std::string>(), cfg));
  NoiseCipher init_send(cfg.cipher, ik.initiator_to_responder),
      resp_recv(cfg.cipher, rk.initiator_to_responder);
  NoiseCipher resp_send(cfg.cipher, rk.responder_to_initiator),
      init_recv(cfg.cipher, ik.responder_to_initiator);
  for (; i < messages.size(); ++i) {
    NoiseCipher& send = i % 2 == 0 ? init_send : resp_send;
    NoiseCipher& recv = i % 2 == 0 ? resp_recv : init_recv;
    Bytes wire, payload;
    send.encrypt(messages[i].payload.data(), messages[i].payload.size(), wire);
    EXPECT_EQ(wire, messages[i].ciphertext) << "transport message " << i;
    ASSERT_TRUE(recv.decrypt(wire.data(), wire.size(), payload)) << "transport message " << i;
    EXPECT_EQ(payload, messages[i].payload) << "transport message " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Cacophony, NoiseVectors, ::testing::ValuesIn(load_vectors()),
                         [](const ::testing::TestParamInfo<Vector>& info) {
                           std::string name = info.param.name;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(NoiseVectorsFile, HoldsAllEightyEightVectors) {
  EXPECT_EQ(load_vectors().size(), 88u);
}

// --- Protocol names ---

TEST(NoiseProtocolName, RoundTripsEveryPatternAndModifier) {
  for (const char* name : {"Noise_NN_25519_ChaChaPoly_SHA256", "Noise_IKpsk2_25519_AESGCM_BLAKE2s",
                           "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s", "Noise_NNpsk0+psk2_25519_AESGCM_SHA256",
                           "Noise_IN_25519_ChaChaPoly_SHA256", "Noise_KN_25519_ChaChaPoly_SHA256",
                           "Noise_XN_25519_ChaChaPoly_SHA256"}) {
    HandshakeConfig cfg;
    ASSERT_TRUE(parse_noise_protocol_name(name, cfg)) << name;
    EXPECT_EQ(noise_protocol_name(cfg), name);
  }
}

TEST(NoiseProtocolName, RejectsUnsupportedOrMalformed) {
  for (const char* name : {"", "Noise", "Noise_XX_448_ChaChaPoly_SHA256", "Noise_XX_25519_AESGCM_SHA512",
                           "Noise_ZZ_25519_AESGCM_SHA256", "Noise_XXpsk_25519_AESGCM_SHA256",
                           "Noise_XXpsk4_25519_AESGCM_SHA256", "Noise_NNpsk3_25519_AESGCM_SHA256",
                           "Noise_XXpsk1+_25519_AESGCM_SHA256", "Noise_XXpsk1+psk1_25519_AESGCM_SHA256",
                           "Noise_XXfallback_25519_AESGCM_SHA256", "Noise_XX_25519_ChaChaPoly_SHA256_",
                           "Noise_XXpsk999999999999_25519_AESGCM_SHA256", "Noise_N_25519_AESGCM_SHA256"}) {
    HandshakeConfig cfg;
    EXPECT_FALSE(parse_noise_protocol_name(name, cfg)) << name;
  }
}

// --- Behaviour on misuse and hostile input ---

struct Pair {
  SeededRandom rng{7};
  X25519KeyPair init_static = x25519_generate(rng);
  X25519KeyPair resp_static = x25519_generate(rng);
  HandshakeConfig init_cfg, resp_cfg;

  explicit Pair(NoisePattern p) {
    init_cfg.pattern = resp_cfg.pattern = p;
    init_cfg.initiator = true;
    resp_cfg.initiator = false;
    init_cfg.local_static = init_static;
    resp_cfg.local_static = resp_static;
    if (p == NoisePattern::kIK) init_cfg.remote_static = resp_static.public_key;
  }
};

// Runs a handshake to completion, the two sides taking turns with empty payloads. Returns the messages
// sent, in order; stops (with what went before) at the first step that does not return kNone, which is
// then in *error.
std::vector<Bytes> run_handshake(HandshakeState& i, HandshakeState& r, HandshakeError* error) {
  std::vector<Bytes> sent;
  Bytes pl;
  HandshakeState* from = &i;
  HandshakeState* to = &r;
  *error = HandshakeError::kNone;
  for (int n = 0; n < 8 && !(i.complete() && r.complete()); ++n, std::swap(from, to)) {
    Bytes m;
    if ((*error = from->write_message(nullptr, 0, m)) != HandshakeError::kNone) break;
    sent.push_back(m);
    if ((*error = to->read_message(m.data(), m.size(), pl)) != HandshakeError::kNone) break;
  }
  return sent;
}

TEST(NoiseHandshake, XX_FreshKeysComplete_SameHashAndKeys) {
  Pair p(NoisePattern::kXX);
  HandshakeState i(p.init_cfg, p.rng), r(p.resp_cfg, p.rng);
  Bytes m, pl;
  HandshakeError error;
  ASSERT_EQ(run_handshake(i, r, &error).size(), 3u);
  ASSERT_EQ(error, HandshakeError::kNone);
  ASSERT_TRUE(i.complete() && r.complete());
  EXPECT_EQ(i.handshake_hash(), r.handshake_hash());
  EXPECT_EQ(i.split().initiator_to_responder, r.split().initiator_to_responder);
  EXPECT_EQ(*r.remote_static(), p.init_static.public_key);
  EXPECT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kAlreadyComplete);
  EXPECT_EQ(r.read_message(m.data(), m.size(), pl), HandshakeError::kAlreadyComplete);
  EXPECT_TRUE(i.complete());
}

TEST(NoiseHandshake, WrongTurn_ReportedWithoutBreakingTheHandshake) {
  Pair p(NoisePattern::kIK);
  HandshakeState i(p.init_cfg, p.rng), r(p.resp_cfg, p.rng);
  Bytes m, pl;
  EXPECT_EQ(r.write_message(nullptr, 0, m), HandshakeError::kWrongTurn);
  EXPECT_EQ(i.read_message(m.data(), m.size(), pl), HandshakeError::kWrongTurn);
  ASSERT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kNone);
  ASSERT_EQ(r.read_message(m.data(), m.size(), pl), HandshakeError::kNone);
}

TEST(NoiseHandshake, IK_InitiatorWithoutResponderKey_MissingKey) {
  Pair p(NoisePattern::kIK);
  p.init_cfg.remote_static.reset();
  HandshakeState i(p.init_cfg, p.rng);
  Bytes m;
  EXPECT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kMissingKey);
  EXPECT_FALSE(i.is_my_turn());
}

TEST(NoiseHandshake, XX_ResponderWithoutStatic_MissingKeyOnItsMessage) {
  Pair p(NoisePattern::kXX);
  p.resp_cfg.local_static.reset();
  HandshakeState i(p.init_cfg, p.rng), r(p.resp_cfg, p.rng);
  Bytes m, pl;
  ASSERT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kNone);
  ASSERT_EQ(r.read_message(m.data(), m.size(), pl), HandshakeError::kNone);
  EXPECT_EQ(r.write_message(nullptr, 0, m), HandshakeError::kMissingKey);
  EXPECT_TRUE(m.empty());
}

TEST(NoiseHandshake, PskPositionWithoutPsk_MissingKey) {
  Pair p(NoisePattern::kXX);
  p.init_cfg.psk_positions = {3};
  HandshakeState i(p.init_cfg, p.rng);
  Bytes m;
  EXPECT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kMissingKey);
}

TEST(NoiseHandshake, IK_EveryTruncation_FailsCleanlyAndSticks) {
  Pair p(NoisePattern::kIK);
  HandshakeState i(p.init_cfg, p.rng);
  Bytes m, pl;
  const uint8_t payload[3] = {1, 2, 3};
  ASSERT_EQ(i.write_message(payload, sizeof(payload), m), HandshakeError::kNone);
  for (size_t len = 0; len < m.size(); ++len) {
    HandshakeState r(p.resp_cfg, p.rng);
    const HandshakeError e = r.read_message(m.data(), len, pl);
    EXPECT_TRUE(e == HandshakeError::kTruncated || e == HandshakeError::kDecryptFailed) << "len " << len;
    EXPECT_TRUE(pl.empty());
    EXPECT_EQ(r.read_message(m.data(), m.size(), pl), e) << "the failure must stick";
    EXPECT_FALSE(r.complete());
  }
}

TEST(NoiseHandshake, IK_AnyFlippedBit_Rejected) {
  Pair p(NoisePattern::kIK);
  HandshakeState i(p.init_cfg, p.rng);
  Bytes m, pl;
  ASSERT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kNone);
  for (size_t pos = 0; pos < m.size(); ++pos) {
    Bytes bad = m;
    bad[pos] ^= 0x01;
    HandshakeState r(p.resp_cfg, p.rng);
    EXPECT_NE(r.read_message(bad.data(), bad.size(), pl), HandshakeError::kNone) << "byte " << pos;
  }
}

TEST(NoiseHandshake, LowOrderEphemeral_DhFailed) {
  Pair p(NoisePattern::kNN);
  HandshakeState r(p.resp_cfg, p.rng);
  const Bytes zero_ephemeral(32, 0);
  Bytes pl;
  EXPECT_EQ(r.read_message(zero_ephemeral.data(), zero_ephemeral.size(), pl), HandshakeError::kNone);
  Bytes m;
  EXPECT_EQ(r.write_message(nullptr, 0, m), HandshakeError::kDhFailed);
}

TEST(NoiseHandshake, OversizedMessages_TooLong) {
  Pair p(NoisePattern::kXX);
  HandshakeState i(p.init_cfg, p.rng), r(p.resp_cfg, p.rng);
  const Bytes big(65535, 0);
  Bytes m, pl;
  EXPECT_EQ(i.write_message(big.data(), big.size(), m), HandshakeError::kTooLong);
  // A rejected write changes nothing: a smaller payload still goes out.
  ASSERT_EQ(i.write_message(big.data(), 65535 - 32, m), HandshakeError::kNone);
  EXPECT_EQ(m.size(), 65535u);
  const Bytes huge(65536, 0);
  EXPECT_EQ(r.read_message(huge.data(), huge.size(), pl), HandshakeError::kTooLong);
}

TEST(NoiseHandshake, ToString_NamesEveryError) {
  for (HandshakeError e :
       {HandshakeError::kNone, HandshakeError::kWrongTurn, HandshakeError::kMissingKey,
        HandshakeError::kTruncated, HandshakeError::kDecryptFailed, HandshakeError::kDhFailed,
        HandshakeError::kTooLong, HandshakeError::kAlreadyComplete}) {
    EXPECT_GT(std::string(to_string(e)).size(), 3u);
  }
}

// --- Work done ahead (protocol::Endpoint::give_ephemeral and its static-static cache) ---

TEST(NoiseHandshake, IK_PreparedEphemeralAndStaticStatic_SameMessagesAndKeysAsComputed) {
  Pair p(NoisePattern::kIK);
  SeededRandom rng{5};
  const X25519KeyPair e = x25519_generate(rng), re = x25519_generate(rng);
  Key32 ss{};
  ASSERT_TRUE(x25519(p.init_static.private_key, p.resp_static.public_key, ss));
  HandshakeConfig computed = p.init_cfg, given = p.init_cfg, resp = p.resp_cfg;
  computed.local_ephemeral = e;
  given.local_ephemeral = e;
  given.static_static = ss;
  resp.local_ephemeral = re;
  HandshakeState i1(computed, p.rng), r1(resp, p.rng), i2(given, p.rng), r2(resp, p.rng);
  HandshakeError e1, e2;
  const std::vector<Bytes> a = run_handshake(i1, r1, &e1), b = run_handshake(i2, r2, &e2);
  ASSERT_EQ(e1, HandshakeError::kNone);
  ASSERT_EQ(e2, HandshakeError::kNone);
  ASSERT_TRUE(i2.complete() && r2.complete());
  EXPECT_EQ(i2.handshake_hash(), r2.handshake_hash());
  EXPECT_EQ(i1.handshake_hash(), i2.handshake_hash());
  EXPECT_EQ(a, b);  // byte for byte: nonces and keys are deterministic given the ephemerals
  EXPECT_EQ(i1.split().initiator_to_responder, i2.split().initiator_to_responder);
  // The prepared ephemeral keys are the ones the two messages carry.
  ASSERT_EQ(b.size(), 2u);
  EXPECT_TRUE(std::equal(e.public_key.begin(), e.public_key.end(), b[0].begin()));
  EXPECT_TRUE(std::equal(re.public_key.begin(), re.public_key.end(), b[1].begin()));
}

// An Endpoint hands its identity's key object to every handshake; the handshake must come out as when it
// makes its own. A copy of a state part-way through (as a connection reads a Response into one) shares the
// keys' objects and must read the same.
TEST(NoiseHandshake, IK_StaticKeyObjectsGiven_SameMessagesAndKeysAsMadeInside) {
  Pair p(NoisePattern::kIK);
  SeededRandom rng{9};
  const X25519KeyPair e = x25519_generate(rng), re = x25519_generate(rng);
  HandshakeConfig init_plain = p.init_cfg, init_given = p.init_cfg;
  HandshakeConfig resp_plain = p.resp_cfg, resp_given = p.resp_cfg;
  init_plain.local_ephemeral = init_given.local_ephemeral = e;
  resp_plain.local_ephemeral = resp_given.local_ephemeral = re;
  init_given.local_static_object = X25519Local(p.init_static.private_key);
  resp_given.local_static_object = X25519Local(p.resp_static.private_key);
  HandshakeState i1(init_plain, p.rng), r1(resp_plain, p.rng), i2(init_given, p.rng), r2(resp_given, p.rng);
  HandshakeError e1, e2;
  const std::vector<Bytes> a = run_handshake(i1, r1, &e1), b = run_handshake(i2, r2, &e2);
  ASSERT_EQ(e1, HandshakeError::kNone);
  ASSERT_EQ(e2, HandshakeError::kNone);
  EXPECT_EQ(a, b);
  EXPECT_EQ(i1.handshake_hash(), i2.handshake_hash());
  EXPECT_EQ(r2.split().responder_to_initiator, i1.split().responder_to_initiator);

  // The given object is the one used: one made from another key spoils ss, and the responder cannot read.
  HandshakeConfig init_wrong = init_given;
  init_wrong.local_static_object = X25519Local(p.resp_static.private_key);
  HandshakeState i4(init_wrong, p.rng), r4(resp_plain, p.rng);
  Bytes wrong_m1, wrong_payload;
  ASSERT_EQ(i4.write_message(nullptr, 0, wrong_m1), HandshakeError::kNone);
  EXPECT_EQ(r4.read_message(wrong_m1.data(), wrong_m1.size(), wrong_payload), HandshakeError::kDecryptFailed);

  // Part-way: the initiator's state after message 1, copied, reads message 2 like the original.
  HandshakeState i3(init_given, p.rng), r3(resp_given, p.rng);
  Bytes m1, m2, payload;
  ASSERT_EQ(i3.write_message(nullptr, 0, m1), HandshakeError::kNone);
  ASSERT_EQ(r3.read_message(m1.data(), m1.size(), payload), HandshakeError::kNone);
  ASSERT_EQ(r3.write_message(nullptr, 0, m2), HandshakeError::kNone);
  HandshakeState copy(i3);
  ASSERT_EQ(copy.read_message(m2.data(), m2.size(), payload), HandshakeError::kNone);
  ASSERT_EQ(i3.read_message(m2.data(), m2.size(), payload), HandshakeError::kNone);
  EXPECT_EQ(copy.handshake_hash(), i3.handshake_hash());
  EXPECT_EQ(copy.split().initiator_to_responder, r3.split().initiator_to_responder);
}

TEST(NoiseHandshake, IK_WrongStaticStatic_ResponderCannotReadTheFirstMessage) {
  Pair p(NoisePattern::kIK);
  Key32 ss{};
  ASSERT_TRUE(x25519(p.init_static.private_key, p.resp_static.public_key, ss));
  ss[0] ^= 1;
  p.init_cfg.static_static = ss;
  HandshakeState i(p.init_cfg, p.rng), r(p.resp_cfg, p.rng);
  Bytes m, pl;
  ASSERT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kNone);
  EXPECT_EQ(r.read_message(m.data(), m.size(), pl), HandshakeError::kDecryptFailed);
}

TEST(NoiseHandshake, XX_StaticStaticWithoutAPreMessageKey_IsIgnored) {
  // In XX the peer's static key arrives in the handshake, so a precomputed value could belong to some
  // other key: it must not be used, and the handshake completes as if it were absent.
  Pair p(NoisePattern::kXX);
  p.init_cfg.static_static = Key32{};
  p.resp_cfg.static_static = Key32{};
  HandshakeState i(p.init_cfg, p.rng), r(p.resp_cfg, p.rng);
  HandshakeError error;
  EXPECT_EQ(run_handshake(i, r, &error).size(), 3u);
  EXPECT_EQ(error, HandshakeError::kNone);
  EXPECT_TRUE(i.complete() && r.complete());
  EXPECT_EQ(i.handshake_hash(), r.handshake_hash());
}

TEST(NoiseHandshake, IK_ResponderGivenAnEphemeralAfterReading_SendsItAndCompletes) {
  // What the Endpoint does with its spare: handed over once the Initiation has been read.
  Pair p(NoisePattern::kIK);
  SeededRandom rng{3};
  const X25519KeyPair e = x25519_generate(rng);
  HandshakeState i(p.init_cfg, p.rng), r(p.resp_cfg, p.rng);
  Bytes m, pl;
  ASSERT_EQ(i.write_message(nullptr, 0, m), HandshakeError::kNone);
  ASSERT_EQ(r.read_message(m.data(), m.size(), pl), HandshakeError::kNone);
  r.use_ephemeral(e);
  ASSERT_EQ(r.write_message(nullptr, 0, m), HandshakeError::kNone);
  EXPECT_TRUE(std::equal(e.public_key.begin(), e.public_key.end(), m.begin()));
  ASSERT_EQ(i.read_message(m.data(), m.size(), pl), HandshakeError::kNone);
  EXPECT_TRUE(i.complete() && r.complete());
  EXPECT_EQ(i.handshake_hash(), r.handshake_hash());
}

TEST(NoiseCipher, ReplayedOrReorderedMessage_Rejected) {
  Key32 k{};
  k[5] = 9;
  NoiseCipher a(AeadAlgorithm::kChaChaPoly, k), b(AeadAlgorithm::kChaChaPoly, k);
  Bytes m0, m1, out;
  const uint8_t p = 1;
  a.encrypt(&p, 1, m0);
  a.encrypt(&p, 1, m1);
  EXPECT_FALSE(b.decrypt(m1.data(), m1.size(), out));  // expects nonce 0 first
  EXPECT_TRUE(b.decrypt(m0.data(), m0.size(), out));
  EXPECT_FALSE(b.decrypt(m0.data(), m0.size(), out));
  EXPECT_TRUE(b.decrypt(m1.data(), m1.size(), out));
}

}  // namespace
}  // namespace peerlink::crypto
