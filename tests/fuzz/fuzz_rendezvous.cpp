// Signaling blobs from an untrusted peer: every decode that succeeds must re-encode to the same bytes, and
// a listening Rendezvous fed the input (whole, and split into two blobs from two peers) must not crash, leak
// or grow without bound.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_check.hpp"
#include "transport/crypto/random.hpp"
#include "transport/rendezvous/rendezvous.hpp"

namespace {

using namespace peerlink;
using namespace peerlink::rendezvous;

class CountingRandom final : public crypto::RandomSource {
 public:
  void fill(uint8_t* out, size_t n) override {
    for (size_t i = 0; i < n; ++i)
      out[i] = uint8_t(++state_ * 131);
  }

 private:
  uint64_t state_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<Blob> blob = decode(data, size);
  if (blob) {
    std::vector<uint8_t> bytes;
    FUZZ_CHECK(encode(*blob, bytes));
    FUZZ_CHECK(bytes.size() == size && std::equal(bytes.begin(), bytes.end(), data));
  }
  CountingRandom rng;
  Handle next = 1;
  Rendezvous rz(RendezvousConfig{}, PublicKey{}, rng, [&] { return next++; });
  rz.set_listening(0, true);
  PeerId a = *PeerId::parse("fuzz:a"), b = *PeerId::parse("fuzz:b");
  protocol::Instant now{};
  rz.connect(now, 1000, a, 0, true);
  rz.receive(now, a, data, size);
  size_t half = size / 2;
  rz.receive(now, b, data, half);
  rz.receive(now, a, data + half, size - half);
  Action action;
  int actions = 0;
  while (rz.poll(action)) {
    if (action.kind == Action::Kind::kIncomingRequest) rz.accept(now, action.handle);
    FUZZ_CHECK(++actions < 100);
  }
  rz.handle_timeout(now + std::chrono::seconds(30));
  while (rz.poll(action))
    FUZZ_CHECK(++actions < 200);
  FUZZ_CHECK(rz.size() == 0);
  return 0;
}
