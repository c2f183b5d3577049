// Datagrams anyone on the LAN can send to a LAN beacon's rendezvous port: opened by the receiving side
// (with and without a network key) and, as TXT strings, read as announcements published through a system
// responder. A datagram that opens (the seeds are genuine) opens once: again it is a replay; one that does
// not says why. Nothing may crash or allocate without bound.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "lan_beacon/beacon_records.hpp"
#include "lan_beacon/lan_rendezvous.hpp"

using peerlink::Identity;
using peerlink::lan::RendezvousCrypto;

namespace {

// Fixed keys: the receiver (whose key is in the seeds) and a network key.
const Identity& receiver() {
  static const Identity id =
      Identity::from_private_key({1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32});
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (bool with_network_key : {false, true}) {
    RendezvousCrypto crypto(receiver(),
                            with_network_key ? std::vector<uint8_t>(32, 9) : std::vector<uint8_t>{});
    RendezvousCrypto::Refusal why = RendezvousCrypto::Refusal::kNone;
    if (auto opened = crypto.open(data, size, &why)) {
      FUZZ_CHECK(why == RendezvousCrypto::Refusal::kNone);
      FUZZ_CHECK(opened->blob.size() + peerlink::lan::kRendezvousHeader + peerlink::lan::kRendezvousTag ==
                 size);
      FUZZ_CHECK(opened->sender != receiver().public_key());
      FUZZ_CHECK(!crypto.open(data, size, &why) && why == RendezvousCrypto::Refusal::kReplayed);
    } else {
      FUZZ_CHECK(why != RendezvousCrypto::Refusal::kNone);
    }
  }
  // The same bytes as TXT strings (length-prefixed, as on the wire).
  std::vector<std::string> txt;
  for (size_t i = 0; i < size;) {
    const size_t n = data[i++];
    txt.emplace_back(reinterpret_cast<const char*>(data + i), std::min(n, size - i));
    i += n;
  }
  const auto service = *peerlink::lan::service_name("fuzz");
  const peerlink::lan::Heard h = peerlink::lan::read_portable(service, 4242, txt, {});
  if (h.verdict == peerlink::lan::Verdict::kOk) {
    FUZZ_CHECK(h.announcement.port == 4242);
    FUZZ_CHECK(h.announcement.display_name.size() <= peerlink::lan::kMaxDisplayName);
    FUZZ_CHECK(h.announcement.aliases.size() <= peerlink::lan::kMaxAliases);
  }
  return 0;
}
