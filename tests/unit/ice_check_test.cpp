// IceAgent::is_stun and answer_check: the peer's connectivity checks on a path the Host reads itself
// (src/transport/ice/). Requests are built with libstun, as the peer's libnice builds them.
#include <gtest/gtest.h>
#include <stun/stunagent.h>
#include <stun/usages/ice.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

#include "transport/ice/ice_agent.hpp"
#include "transport/io/service_loop.hpp"
#include "transport/io/socket_address.hpp"

namespace peerlink::ice {
namespace {

class IceCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    IceConfig config;
    config.interfaces_allow = {"lo"};
    agent_ = std::make_unique<IceAgent>(loop_.context(), config, IceCallbacks{});
    std::string error;
    stream_ = agent_->add_stream(/*controlling=*/true, ufrag_, pwd_, &error);
    ASSERT_NE(stream_, 0u) << error;
    static const uint16_t known[] = {STUN_ATTRIBUTE_USERNAME, STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                     STUN_ATTRIBUTE_FINGERPRINT, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, 0};
    stun_agent_init(
        &peer_, known, STUN_COMPATIBILITY_RFC5389,
        StunAgentUsageFlags(STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT));
  }

  // A check as the peer (controlled) sends it: USERNAME "<our ufrag>:<theirs>", keyed with `password`.
  std::vector<uint8_t> check(const std::string& username, const std::string& password) {
    StunMessage message;
    std::vector<uint8_t> buffer(512);
    const size_t n = stun_usage_ice_conncheck_create(
        &peer_, &message, buffer.data(), buffer.size(), reinterpret_cast<const uint8_t*>(username.data()),
        username.size(), reinterpret_cast<const uint8_t*>(password.data()), password.size(), false, false,
        0x6e0001ff, 42, nullptr, STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
    buffer.resize(n);
    return buffer;
  }

  io::ServiceLoop loop_;
  std::unique_ptr<IceAgent> agent_;
  StreamId stream_ = 0;
  std::string ufrag_, pwd_;
  StunAgent peer_;
  const Address from_ = Address::ipv4({127, 0, 0, 1}, 40000);
};

TEST_F(IceCheck, PeersCheck_AnsweredWithAnAuthenticSuccessResponse) {
  std::vector<uint8_t> request = check(ufrag_ + ":peer", pwd_);
  ASSERT_GT(request.size(), 20u);
  EXPECT_TRUE(IceAgent::is_stun(request.data(), request.size()));
  uint8_t reply[512];
  size_t reply_size = 0;
  agent_->answer_check(stream_, request.data(), request.size(), from_, reply, reply_size);
  ASSERT_GT(reply_size, 20u);
  EXPECT_TRUE(IceAgent::is_stun(reply, reply_size));
  // The peer's agent accepts it as the answer to its request: same transaction, our password's integrity.
  StunDefaultValidaterData key{reinterpret_cast<uint8_t*>(const_cast<char*>(ufrag_.data())), ufrag_.size(),
                               reinterpret_cast<uint8_t*>(const_cast<char*>(pwd_.data())), pwd_.size()};
  StunMessage response;
  ASSERT_EQ(stun_agent_validate(&peer_, &response, reply, reply_size, stun_agent_default_validater, &key),
            STUN_VALIDATION_SUCCESS);
  EXPECT_EQ(stun_message_get_class(&response), STUN_RESPONSE);
  sockaddr_storage mapped{};
  socklen_t mapped_length = sizeof mapped;
  ASSERT_EQ(stun_message_find_xor_addr(&response, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, &mapped, &mapped_length),
            STUN_MESSAGE_RETURN_SUCCESS);
  EXPECT_EQ(io::from_sockaddr(mapped, mapped_length), from_);
}

TEST_F(IceCheck, WrongPasswordOrUsername_NoAnswer) {
  uint8_t reply[512];
  size_t reply_size = 99;
  std::vector<uint8_t> forged = check(ufrag_ + ":peer", "not-the-password-at-all");
  EXPECT_TRUE(IceAgent::is_stun(forged.data(), forged.size()));
  agent_->answer_check(stream_, forged.data(), forged.size(), from_, reply, reply_size);
  EXPECT_EQ(reply_size, 0u);
  std::vector<uint8_t> other = check("someone-else:peer", pwd_);
  agent_->answer_check(stream_, other.data(), other.size(), from_, reply, reply_size);
  EXPECT_EQ(reply_size, 0u);
  std::vector<uint8_t> good = check(ufrag_ + ":peer", pwd_);
  agent_->answer_check(stream_ + 1, good.data(), good.size(), from_, reply, reply_size);  // no such stream
  EXPECT_EQ(reply_size, 0u);
}

TEST_F(IceCheck, TamperedOrTruncatedOrIndication_NoAnswerNoCrash) {
  uint8_t reply[512];
  size_t reply_size = 0;
  std::vector<uint8_t> request = check(ufrag_ + ":peer", pwd_);
  for (size_t i = 0; i < request.size(); ++i) {  // every byte flipped in turn
    std::vector<uint8_t> bad = request;
    bad[i] ^= 0x40;
    agent_->answer_check(stream_, bad.data(), bad.size(), from_, reply, reply_size);
    EXPECT_EQ(reply_size, 0u) << "byte " << i;
  }
  for (size_t n = 0; n < request.size(); ++n) {
    EXPECT_FALSE(IceAgent::is_stun(request.data(), n)) << n;
    agent_->answer_check(stream_, request.data(), n, from_, reply, reply_size);
    EXPECT_EQ(reply_size, 0u);
  }
  StunMessage indication;
  uint8_t buffer[128];
  ASSERT_TRUE(stun_agent_init_indication(&peer_, &indication, buffer, sizeof buffer, STUN_BINDING));
  const size_t n = stun_agent_finish_message(&peer_, &indication, nullptr, 0);
  ASSERT_GT(n, 0u);
  EXPECT_TRUE(IceAgent::is_stun(buffer, n));  // a keepalive: STUN, and dropped
  agent_->answer_check(stream_, buffer, n, from_, reply, reply_size);
  EXPECT_EQ(reply_size, 0u);
}

TEST(IceIsStun, ConnectionPackets_NotStun) {
  std::vector<uint8_t> packet(1200);
  for (size_t i = 0; i < packet.size(); ++i)
    packet[i] = uint8_t(i * 131 + 7);
  EXPECT_FALSE(IceAgent::is_stun(packet.data(), packet.size()));
  // Even with the STUN magic cookie where STUN has it, a length that does not fit is not STUN.
  packet[0] = 0x00;
  packet[1] = 0x01;
  std::memcpy(packet.data() + 4, "\x21\x12\xA4\x42", 4);
  EXPECT_FALSE(IceAgent::is_stun(packet.data(), packet.size()));
}

}  // namespace
}  // namespace peerlink::ice
