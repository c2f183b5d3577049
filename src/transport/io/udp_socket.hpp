// A non-blocking UDP socket that moves datagrams in batches: recvmmsg/sendmmsg, plus UDP GSO (many
// equal-sized datagrams handed to the kernel as one) and GRO (the kernel hands many back as one) where the
// kernel supports them. One syscall per batch instead of one per datagram is most of the CPU cost of UDP.
//
//   std::string error;
//   auto socket = UdpSocket::open(Address::any_v6(7777), {}, &error);   // dual-stack [::]:7777
//   SendBatch out;
//   size_t n = encode_packet(out.next_buffer(), SendBatch::kMaxDatagram);
//   out.commit(n, peer);
//   if (!socket->send(out)) { /* would block: poll for POLLOUT, then send(out) again */ }
//   ReceiveBatch in;
//   for (size_t i = 0, n = socket->receive(in); i < n; ++i) handle(in[i].data, in[i].size, in[i].from);
//
// Thread-safety: none; a socket and its batches belong to one thread (the service loop).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "peerlink/address.hpp"
#include "peerlink/error.hpp"

namespace peerlink::io {

struct UdpSocketOptions {
  // Large buffers absorb bursts between two turns of the service loop. Root may exceed net.core.*mem_max.
  int receive_buffer_bytes = 4 << 20;
  int send_buffer_bytes = 4 << 20;
  bool enable_gso = true;
  bool enable_gro = true;
};

struct ReceivedDatagram {
  uint8_t* data;  // valid until the next receive() into the same batch
  size_t size;
  Address from;  // never v4-mapped: IPv4 peers of a dual-stack socket appear as plain IPv4
};

// Buffers for UdpSocket::receive(), reused from call to call so that receiving allocates nothing.
class ReceiveBatch {
 public:
  explicit ReceiveBatch(size_t slots = 16);
  ReceiveBatch(const ReceiveBatch&) = delete;
  ReceiveBatch& operator=(const ReceiveBatch&) = delete;

  // Datagrams of the last receive(); may exceed slots() when the kernel coalesced datagrams (GRO).
  size_t size() const { return datagrams_.size(); }
  ReceivedDatagram& operator[](size_t i) { return datagrams_[i]; }
  const ReceivedDatagram& operator[](size_t i) const { return datagrams_[i]; }
  size_t slots() const { return slots_; }

 private:
  friend class UdpSocket;
  void ensure_slot_bytes(size_t bytes);

  struct alignas(cmsghdr) Control {
    uint8_t bytes[64];  // room for the UDP_GRO cmsg (an int) with plenty to spare
  };

  size_t slots_;
  size_t slot_bytes_ = 0;
  // Not zeroed: the kernel writes what it receives, and a megabyte of fresh pages touched at once costs a
  // connection's first datagram milliseconds.
  std::unique_ptr<uint8_t[]> buffers_;
  std::vector<mmsghdr> headers_;
  std::vector<iovec> iovecs_;
  std::vector<sockaddr_storage> names_;
  std::vector<Control> controls_;
  std::vector<ReceivedDatagram> datagrams_;
};

// Datagrams waiting to be sent, each written in place into a fixed-size slot.
class SendBatch {
 public:
  // Our protocol never sends more than 1500 bytes; the slack keeps probes and tests simple.
  static constexpr size_t kMaxDatagram = 2048;

  explicit SendBatch(size_t max_datagrams = 64);
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;

  // Where to write the next datagram (kMaxDatagram bytes of room); nullptr when full().
  uint8_t* next_buffer();
  // Queues the datagram written into next_buffer(). len must be <= kMaxDatagram and the batch not full.
  void commit(size_t len, const Address& to);

  size_t size() const { return entries_.size(); }
  bool full() const { return entries_.size() == max_datagrams_; }
  bool empty() const { return entries_.empty(); }
  void clear() { entries_.clear(); }

  // The i-th queued datagram, for callers and tests that inspect what is still unsent.
  const uint8_t* data(size_t i) const { return storage_.get() + i * kMaxDatagram; }
  size_t length(size_t i) const { return entries_[i].length; }
  const Address& destination(size_t i) const { return entries_[i].to; }

 private:
  friend class UdpSocket;
  uint8_t* slot(size_t i) { return storage_.get() + i * kMaxDatagram; }
  // Drops the first n datagrams (sent or failed), moving the rest to the front in order.
  void remove_front(size_t n);

  struct Entry {
    size_t length;
    Address to;
  };
  struct alignas(cmsghdr) Control {
    uint8_t bytes[CMSG_SPACE(sizeof(uint16_t))];  // UDP_SEGMENT
  };

  size_t max_datagrams_;
  std::unique_ptr<uint8_t[]> storage_;  // not zeroed: each slot is written before it is sent
  std::vector<Entry> entries_;
  // sendmmsg scratch, one per message; a GSO message spans several datagrams, hence several iovecs.
  std::vector<mmsghdr> headers_;
  std::vector<iovec> iovecs_;
  std::vector<sockaddr_storage> names_;
  std::vector<Control> controls_;
  std::vector<size_t> message_datagrams_;  // how many datagrams each message carries
};

// Linux switches its UDP encapsulation path on (a static key: kernel code patched on every CPU, which took
// 0.6 to 1.1 ms here) when the first socket of an address family enables UDP_GRO, and off again when the last
// one closes: a client Host, which opens its socket at its first connect, would pay that on every connect.
// One GRO socket per family, opened once and kept for the process's life, keeps it on. UdpSocket::open()
// calls this before it enables GRO; the Host calls it when it starts, so that the first connect does not pay.
void keep_udp_gro_enabled();

class UdpSocket {
 public:
  // bind: unspecified or [::] gives one dual-stack AF_INET6 socket on [::] (AF_INET 0.0.0.0 if the host
  // has no IPv6); an IPv4 address gives AF_INET; an IPv6 address AF_INET6, dual-stack if v4-mapped. Port 0
  // is ephemeral. On failure returns nullptr and, if error is given, why (kAddressInUse, kInvalidArgument
  // for an address not of this machine, kLimitExceeded when out of descriptors, else kSystem).
  static std::unique_ptr<UdpSocket> open(const Address& bind, const UdpSocketOptions& options, Error* error);
  // Sends through a UDP socket someone else owns (libnice's socket of a selected ICE pair): batched and
  // with GSO like our own, never closed here. Receiving stays with the owner. nullptr if fd is not a
  // usable UDP socket.
  static std::unique_ptr<UdpSocket> adopt_for_sending(int fd, bool enable_gso);
  // A socket of our own on the address and port of someone else's bound UDP socket `shared` (libnice's
  // socket of a selected ICE pair), connected to remote: the kernel hands the connected socket every
  // datagram that comes from remote, and the other socket keeps what comes from anywhere else. Address reuse
  // is allowed on both sockets only for the moment of the bind, so no third socket can join them later.
  // nullptr (error) on failure, the shared socket then as it was.
  static std::unique_ptr<UdpSocket> open_connected(int shared, const Address& remote,
                                                   const UdpSocketOptions& options, Error* error);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  int fd() const { return fd_; }
  int family() const { return family_; }  // AF_INET or AF_INET6
  const Address& local_address() const { return local_; }
  bool gso_enabled() const { return gso_enabled_; }
  bool gro_enabled() const { return gro_enabled_; }
  // Whether this socket can send to `to` at all (address family, v6-only, a port).
  bool reachable(const Address& to) const;

  // Receives what is queued, up to batch.slots() kernel datagrams, splitting GRO-coalesced ones. Returns
  // batch.size(): 0 when nothing is queued. Errors (ICMP-reported ones, truncation) are counted and skipped.
  size_t receive(ReceiveBatch& batch);

  // Sends the batch, as GSO super-datagrams where consecutive datagrams share destination and size, and
  // removes what the kernel took or refused for good. Returns true when the batch is empty afterwards;
  // false when the socket would block, with the unsent datagrams left in order: poll for POLLOUT and call
  // again. Datagrams that can never go (unreachable, wrong family, too big) are counted and dropped.
  bool send(SendBatch& batch);

  struct Counters {
    uint64_t datagrams_received = 0;
    uint64_t datagrams_sent = 0;
    uint64_t receive_errors = 0;
    uint64_t send_errors = 0;       // datagrams dropped
    uint64_t send_would_block = 0;  // send() calls that returned false
    uint64_t gso_sends = 0;         // super-datagrams the kernel accepted
    uint64_t gro_coalesced = 0;     // received buffers that held more than one datagram
  };
  const Counters& counters() const { return counters_; }

 private:
  UdpSocket(int fd, int family, bool v6only);
  // open() and open_connected(): shared >= 0 binds beside that socket, and the result is connected to
  // *remote.
  static std::unique_ptr<UdpSocket> open_socket(const Address& bind, const UdpSocketOptions& options,
                                                Error* error, int shared, const Address* remote);
  // Fills the batch's sendmmsg scratch with messages for the datagrams from first on, up to the next one
  // that cannot be sent from this socket; datagrams before single_until get no GSO. Returns the count.
  size_t build_messages(SendBatch& batch, size_t first, size_t single_until);

  int fd_;
  int family_;
  bool v6only_;
  bool owns_fd_ = true;
  Address local_;
  bool gso_enabled_ = false;
  bool gro_enabled_ = false;
  Counters counters_;
};

}  // namespace peerlink::io
