// The message records of a lane's reliable stream (a varint length, then the bytes): written by
// ReliableSendStream::push_message, parsed by ReliableRecvStream. Round trips through every segmentation,
// reordering, and the bad inputs a peer can send.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "transport/protocol/reliable_recv_stream.hpp"
#include "transport/protocol/reliable_send_stream.hpp"

namespace peerlink::protocol {
namespace {

using Bytes = std::vector<uint8_t>;
using Result = ReliableRecvStream::Result;
constexpr uint64_t kNoLimit = ~uint64_t(0) >> 2;

// The stream bytes the sender would send for these messages.
Bytes stream_of(const std::vector<Bytes>& messages) {
  ReliableSendStream s;
  for (const Bytes& m : messages)
    s.push_message(m.data(), m.size());
  Bytes out(size_t(s.end_offset()));
  s.copy_out(0, out.size(), out.data());
  return out;
}

std::vector<Bytes> sample_messages() {
  std::vector<Bytes> m;
  for (size_t size : {0, 1, 63, 64, 16383, 16384, 70000, 0, 5}) {
    Bytes b(size);
    for (size_t i = 0; i < size; ++i)
      b[i] = uint8_t(i * 7 + size);
    m.push_back(std::move(b));
  }
  return m;
}

TEST(ReliableStreamRecords, EverySplitPoint_SameMessages) {
  const std::vector<Bytes> messages = sample_messages();
  const Bytes stream = stream_of(messages);
  // Two segments, split at every offset within the first records (and a sample beyond).
  for (size_t cut = 0; cut <= stream.size(); cut += cut < 200 ? 1 : 997) {
    SCOPED_TRACE(cut);
    ReliableRecvStream r;
    std::vector<Bytes> got;
    auto deliver = [&](Bytes&& m) { got.push_back(std::move(m)); };
    ASSERT_EQ(r.on_data(0, stream.data(), cut, kNoLimit, 1 << 20, deliver), Result::kOk);
    ASSERT_EQ(r.on_data(cut, stream.data() + cut, stream.size() - cut, kNoLimit, 1 << 20, deliver),
              Result::kOk);
    ASSERT_EQ(got, messages);
  }
}

// The sender copies segments out in order, goes back for retransmissions and frees acknowledged chunks
// meanwhile (copy_out remembers the chunk it found last): every segment holds the stream's bytes.
TEST(ReliableStreamRecords, SegmentsInOrderWithRetransmitsAndAcks_CopyTheStreamsBytes) {
  std::vector<Bytes> messages;
  for (int round = 0; round < 4; ++round)
    for (Bytes& m : sample_messages())
      messages.push_back(std::move(m));
  const Bytes stream = stream_of(messages);
  ReliableSendStream s;
  for (const Bytes& m : messages)
    s.push_message(m.data(), m.size());
  std::mt19937 rng(11);
  uint64_t acked = 0;
  Bytes out;
  for (uint64_t offset = 0; offset < stream.size();) {
    const size_t len = std::min<size_t>(1 + rng() % 1500, stream.size() - offset);
    out.assign(len, 0);
    s.copy_out(offset, len, out.data());
    ASSERT_TRUE(std::equal(out.begin(), out.end(), stream.begin() + offset)) << "new data at " << offset;
    s.on_sent(offset, len);
    offset += len;
    if (rng() % 4 == 0 && offset > acked) {  // a retransmission of unacknowledged bytes
      const uint64_t from = acked + rng() % (offset - acked);
      const size_t n = size_t(std::min<uint64_t>(1 + rng() % 3000, offset - from));
      out.assign(n, 0);
      s.copy_out(from, n, out.data());
      ASSERT_TRUE(std::equal(out.begin(), out.end(), stream.begin() + from)) << "retransmit at " << from;
    }
    if (rng() % 8 == 0) {  // everything sent so far is acknowledged: chunks before it are freed
      s.on_acked(acked, size_t(offset - acked));
      acked = offset;
    }
  }
  EXPECT_GT(acked, 0u);
}

// gather_out, as a packet's payload: short runs (length prefixes, small packed records) are copied, long
// runs of a message are left for the seal to read where they lie, at most PacketSources::kMax of them; the
// copied bytes plus the recorded ones are the stream's bytes, at every segmentation.
TEST(ReliableStreamRecords, GatherOut_CopiesShortRunsRecordsLongOnes_TogetherTheStreamsBytes) {
  const std::vector<Bytes> messages = sample_messages();
  const Bytes stream = stream_of(messages);
  ReliableSendStream s;
  for (const Bytes& m : messages)
    s.push_message(m.data(), m.size());
  std::mt19937 rng(5);
  size_t recorded_runs = 0, copied_only = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const uint64_t offset = rng() % stream.size();
    const size_t len = std::min<size_t>(1 + rng() % 40000, size_t(stream.size() - offset));
    Bytes packet(len + 3, 0xee);
    PacketSources sources;
    sources.payload = packet.data();
    s.gather_out(offset, len, packet.data() + 3, sources);  // 3 bytes of frame header before the data
    ASSERT_LE(sources.count, PacketSources::kMax);
    size_t at = 3;
    for (size_t i = 0; i < sources.count; ++i) {
      const auto& src = sources.items[i];
      ASSERT_GE(src.at, at) << "sources in order, not overlapping";
      ASSERT_GE(src.len, PacketSources::kMinRun);
      ASSERT_LE(src.at + src.len, packet.size());
      std::copy(src.data, src.data + src.len, packet.begin() + long(src.at));  // what the seal would read
      at = src.at + src.len;
    }
    recorded_runs += sources.count;
    copied_only += sources.count == 0;
    ASSERT_TRUE(std::equal(packet.begin() + 3, packet.end(), stream.begin() + long(offset)))
        << "offset " << offset << ", " << len << " bytes";
  }
  EXPECT_GT(recorded_runs, 0u);
  EXPECT_GT(copied_only, 0u);
}

TEST(ReliableStreamRecords, ShuffledDuplicatedSegments_SameMessagesOnce) {
  const std::vector<Bytes> messages = sample_messages();
  const Bytes stream = stream_of(messages);
  std::mt19937 rng(7);
  std::vector<std::pair<size_t, size_t>> segments;
  for (size_t at = 0; at < stream.size();) {
    size_t len = std::min<size_t>(1 + rng() % 1500, stream.size() - at);
    segments.emplace_back(at, len);
    at += len;
  }
  for (size_t i = 0; i < segments.size(); i += 3)
    segments.push_back(segments[i]);  // duplicates
  std::shuffle(segments.begin(), segments.end(), rng);
  ReliableRecvStream r;
  std::vector<Bytes> got;
  for (auto [at, len] : segments)
    ASSERT_EQ(r.on_data(at, stream.data() + at, len, kNoLimit, 1 << 20, [&](Bytes&& m) { got.push_back(m); }),
              Result::kOk);
  EXPECT_EQ(got, messages);
  EXPECT_EQ(r.out_of_order_bytes(), 0u);
  EXPECT_EQ(r.consumed_offset(), stream.size());
}

TEST(ReliableStreamRecords, LengthAboveTheLimit_RefusedBeforeAnyAllocation) {
  // An 8-byte varint announcing 2^61 bytes, and one just above the configured limit.
  const Bytes huge = {0xDF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  ReliableRecvStream r;
  EXPECT_EQ(r.on_data(0, huge.data(), huge.size(), kNoLimit, 1 << 20, [](Bytes&&) { FAIL(); }),
            Result::kMessageTooLarge);
  const Bytes above = stream_of({Bytes(1001)});
  ReliableRecvStream r2;
  EXPECT_EQ(r2.on_data(0, above.data(), above.size(), kNoLimit, 1000, [](Bytes&&) { FAIL(); }),
            Result::kMessageTooLarge);
}

TEST(ReliableStreamRecords, BeyondTheGrantedCredit_FlowControlViolation) {
  const Bytes stream = stream_of({Bytes(100)});
  ReliableRecvStream r;
  EXPECT_EQ(r.on_data(0, stream.data(), stream.size(), 50, 1 << 20, [](Bytes&&) {}),
            Result::kFlowControlViolation);
}

// Segments that overlap each other in any way (a retransmission cut differently, a peer's crafted copies)
// give the same messages, and each byte past a gap is held once.
TEST(ReliableStreamRecords, OverlappingSegments_SameMessages_EachByteHeldOnce) {
  const std::vector<Bytes> messages = sample_messages();
  const Bytes stream = stream_of(messages);
  std::mt19937 rng(11);
  std::vector<std::pair<size_t, size_t>> segments;
  for (int i = 0; i < 400; ++i) {
    const size_t at = 1 + rng() % (stream.size() - 1);  // never offset 0: everything waits for the gap
    segments.emplace_back(at, std::min<size_t>(1 + rng() % 3000, stream.size() - at));
  }
  ReliableRecvStream r;
  std::vector<Bytes> got;
  auto deliver = [&](Bytes&& m) { got.push_back(m); };
  for (auto [at, len] : segments) {
    ASSERT_EQ(r.on_data(at, stream.data() + at, len, kNoLimit, 1 << 20, deliver), Result::kOk);
    ASSERT_LE(r.out_of_order_bytes(), stream.size() - 1);  // was the sum of the copies (about 600 KB)
  }
  ASSERT_EQ(r.on_data(0, stream.data(), stream.size(), kNoLimit, 1 << 20, deliver), Result::kOk);
  EXPECT_EQ(got, messages);
  EXPECT_EQ(r.out_of_order_bytes(), 0u);
}

// A peer that sends the same window over and over at offsets one byte apart, or empty segments past the
// gap, or single bytes two apart: bounded by the window, then by the number of pieces (an error, which
// closes the connection), never a copy per segment.
TEST(ReliableStreamRecords, CrumbsPastAGap_BoundedThenRefused) {
  const Bytes window(4000, 0x42);
  ReliableRecvStream r;
  auto deliver = [](Bytes&&) { FAIL(); };
  for (uint64_t at = 1; at < 2000; ++at)
    ASSERT_EQ(r.on_data(at, window.data(), 2000, kNoLimit, 1 << 20, deliver), Result::kOk);
  const size_t held = 1999 + 2000 - 1;  // [1, 3999): once, not 1,999 copies of 2,000 bytes
  EXPECT_EQ(r.out_of_order_bytes(), held);
  const uint64_t base = 1u << 20;
  for (uint64_t at = base; at < base + 1000; ++at)
    ASSERT_EQ(r.on_data(at, window.data(), 0, kNoLimit, 1 << 20, deliver), Result::kOk);  // empty
  EXPECT_EQ(r.out_of_order_bytes(), held);
  Result last = Result::kOk;
  for (uint64_t i = 0; i < 2 * ReliableRecvStream::kMaxPieces && last == Result::kOk; ++i)
    last = r.on_data(base + 2 * i, window.data(), 1, kNoLimit, 1 << 20, deliver);
  EXPECT_EQ(last, Result::kTooFragmented);
  EXPECT_LE(r.out_of_order_bytes(), held + ReliableRecvStream::kMaxPieces);
}

// A segment declared lost and then acknowledged (the loss was spurious) is not waiting to be resent: the
// packet builder picks a lane with something to resend first, and found nothing to send.
TEST(ReliableStreamRecords, SpuriousLossAcknowledgedPastAGap_NothingLeftToResend) {
  ReliableSendStream s;
  const Bytes m(300, 1);
  s.push_message(m.data(), m.size());
  uint64_t offset = 0;
  size_t len = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.next_segment(100, kNoLimit, offset, len));
    s.on_sent(offset, len);
  }
  s.on_lost(100, 100);
  EXPECT_TRUE(s.has_retransmit());
  s.on_acked(100, 100);  // [0, 100) still unacknowledged: past the gap
  EXPECT_FALSE(s.has_retransmit());
  s.on_lost(0, 100);
  ASSERT_TRUE(s.next_segment(1000, kNoLimit, offset, len));
  EXPECT_EQ(offset, 0u);
  EXPECT_EQ(len, 100u);
}

}  // namespace
}  // namespace peerlink::protocol
