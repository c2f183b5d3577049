// IceConfig checks and the TURN REST credentials helper.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctime>

#include "peerlink/ice.hpp"

namespace peerlink {

TurnServer TurnServer::with_shared_secret(std::string host, uint16_t port, TurnTransport transport,
                                          const std::string& user, const std::string& secret,
                                          std::chrono::seconds ttl) {
  TurnServer s;
  s.host = std::move(host);
  s.port = port;
  s.transport = transport;
  long long expiry = static_cast<long long>(std::time(nullptr)) + ttl.count();
  s.username = std::to_string(expiry) + (user.empty() ? "" : ":" + user);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret.data(), int(secret.size()),
       reinterpret_cast<const unsigned char*>(s.username.data()), s.username.size(), mac, &mac_len);
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, mac, int(mac_len));
  s.password.assign(reinterpret_cast<const char*>(b64), size_t(n));
  return s;
}

namespace {

std::string problem_of(const IceConfig& c) {
  for (const StunServer& s : c.stun_servers) {
    if (s.host.empty()) return "ice.stun_servers: a server has an empty host";
    if (s.port == 0) return "ice.stun_servers: " + s.host + " has port 0";
  }
  for (const TurnServer& s : c.turn_servers) {
    if (s.host.empty()) return "ice.turn_servers: a server has an empty host";
    if (s.port == 0) return "ice.turn_servers: " + s.host + " has port 0";
    if (s.username.empty() || s.password.empty())
      return "ice.turn_servers: " + s.host + " needs a username and a password";
    if (s.transport != TurnTransport::kUdp && s.transport != TurnTransport::kTcp)
      return "ice.turn_servers: " + s.host + " has an unknown transport";
  }
  if (c.candidates == 0) return "ice.candidates: no candidate kind is enabled";
  if (c.candidates & ~candidate_kinds::kAll) return "ice.candidates: unknown bits set";
  if (c.candidates == candidate_kinds::kRelay && c.turn_servers.empty())
    return "ice.candidates: relay-only needs at least one TURN server";
  if (c.check_pacing < std::chrono::milliseconds(5) || c.check_pacing > std::chrono::milliseconds(1000))
    return "ice.check_pacing must be within 5 and 1000 ms (RFC 8445's Ta)";
  return "";
}

}  // namespace

Result<void> IceConfig::validate() const {
  std::string problem = problem_of(*this);
  if (!problem.empty()) return Error{ErrorCode::kInvalidConfig, problem};
  return {};
}

}  // namespace peerlink
