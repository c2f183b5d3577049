// The signaling blobs of a peer-to-peer connection setup, and their wire format (docs/SIGNALING.md,
// "Blob format"). Sans-I/O: encode to bytes, decode from untrusted bytes.
//
// Every blob names its session (a random id the offering side chose) and carries the sender's static key.
// Offer, Answer and Update blobs are cumulative: each carries the sender's ICE credentials and every local
// candidate known so far, so any one of them replaces the ones before (loss, duplication and reordering are
// harmless: the receiver keeps the highest sequence number).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "peerlink/address.hpp"
#include "peerlink/identity.hpp"

namespace peerlink::rendezvous {

// The largest blob (the signaling contract's kMaxSignalingBlob, which the Host checks is the same).
inline constexpr size_t kMaxBlobSize = 1200;

enum class BlobType : uint8_t {
  kOffer = 1,   // a connection request (the offering side's candidates)
  kAnswer = 2,  // the request is accepted (the answering side's candidates)
  kUpdate = 3,  // an acknowledgement only (no credentials, no candidates)
  kReject = 4,  // the request is refused (reason code and text)
  kClose = 5,   // the sender gave up on the session
};

enum class CandidateType : uint8_t { kHost = 0, kServerReflexive = 1, kPeerReflexive = 2, kRelayed = 3 };
enum class CandidateTransport : uint8_t { kUdp = 0, kTcpActive = 1, kTcpPassive = 2 };

struct Candidate {
  CandidateType type = CandidateType::kHost;
  CandidateTransport transport = CandidateTransport::kUdp;
  uint32_t priority = 0;
  std::string foundation;  // 1–32 ICE characters
  Address address;         // IPv4 or IPv6 with a port
  bool operator==(const Candidate& o) const;
};

struct Blob {
  static constexpr uint8_t kVersion = 2;
  static constexpr size_t kMaxCandidates = 24;
  static constexpr size_t kMaxReasonText = 128;

  BlobType type = BlobType::kOffer;
  uint64_t session = 0;
  PublicKey sender_key{};

  // Offer, Answer, Update:
  // The sender's state version, 1 and up (a higher one replaces a lower one); 0 in a pure acknowledgement
  // sent before any state.
  uint16_t seq = 0;
  uint16_t ack = 0;        // the highest seq received from the other side (0: none)
  uint8_t generation = 0;  // ICE generation: incremented by an ICE restart
  bool end_of_candidates = false;
  bool symmetric = false;     // Offer: the sender connects symmetrically (see Rendezvous)
  uint64_t tie_breaker = 0;   // Offer: decides between two symmetric offers
  uint16_t virtual_port = 0;  // the answering side's listen_p2p() virtual port the session is for
  std::string ufrag, pwd;     // ICE credentials (4–64 and 22–64 ICE characters); empty in a pure ack
  std::vector<Candidate> candidates;

  // Reject, Close:
  uint32_t reason = 0;
  std::string text;
};

// Appends the encoding to out; false (out unchanged) if the blob would exceed kMaxBlobSize or breaks a
// limit above.
bool encode(const Blob& blob, std::vector<uint8_t>& out);
// nullopt when the bytes are not a well-formed blob of a version we speak; error says why.
std::optional<Blob> decode(const uint8_t* data, size_t size, std::string* error = nullptr);

const char* to_string(BlobType type);
const char* to_string(CandidateType type);

}  // namespace peerlink::rendezvous
