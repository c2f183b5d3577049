// UdpSocket: batched, non-blocking UDP with GSO and GRO. Every kernel feature here is optional: when the
// kernel refuses one, the socket carries on without it rather than failing.
#include "transport/io/udp_socket.hpp"

#include <errno.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <mutex>

#include "transport/io/socket_address.hpp"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace peerlink::io {
namespace {

// The kernel's limits for one GSO send: UDP_MAX_SEGMENTS segments, and the whole payload must fit one
// IPv4 datagram (65535 minus 20 bytes of IP and 8 of UDP header; IPv6 allows a little more).
constexpr size_t kMaxGsoSegments = 64;
constexpr size_t kMaxGsoBytes = 65507;
// A GRO-coalesced receive holds up to 64 KiB; without GRO a datagram never exceeds what we send.
constexpr size_t kGroSlotBytes = 65536;
// sendmmsg and recvmmsg take at most UIO_MAXIOV messages per call.
constexpr size_t kMaxMessagesPerCall = 1024;
// A receive() that meets only errors (ICMP reports, truncated datagrams) gives up after this many calls,
// so that a flood of them cannot keep the service loop here.
constexpr int kMaxReceiveAttempts = 8;

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

template <typename T>
bool set_option(int fd, int level, int name, T value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0;
}

// SO_*BUFFORCE lets root go beyond net.core.[rw]mem_max; without CAP_NET_ADMIN the plain option still gives
// as much as the sysctl allows. Neither failing is fatal: the default buffers work, only less smoothly.
void set_buffer(int fd, int force_name, int name, int bytes) {
  if (bytes <= 0) return;
  if (!set_option(fd, SOL_SOCKET, force_name, bytes)) set_option(fd, SOL_SOCKET, name, bytes);
}

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS;
}

// The address a UDP socket someone else made is bound to; false if fd is not a bound IPv4/IPv6 UDP socket.
bool bound_udp_socket(int fd, sockaddr_storage& ss, socklen_t& len) {
  len = sizeof ss;
  int type = 0;
  socklen_t type_len = sizeof type;
  return fd >= 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 &&
         getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 && type == SOCK_DGRAM &&
         (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

void keep_gro_enabled(int family) {
  static std::once_flag v4, v6;
  std::call_once(family == AF_INET6 ? v6 : v4, [family] {
    const int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd >= 0 && !set_option(fd, SOL_UDP, UDP_GRO, 1)) ::close(fd);
    // Otherwise deliberately never closed: see keep_udp_gro_enabled().
  });
}

}  // namespace

void keep_udp_gro_enabled() {
  keep_gro_enabled(AF_INET);
  keep_gro_enabled(AF_INET6);
}

// ---------------------------------------------------------------------------------------------------------
// ReceiveBatch

ReceiveBatch::ReceiveBatch(size_t slots)
    : slots_(std::clamp<size_t>(slots, 1, kMaxMessagesPerCall)),
      headers_(slots_),
      iovecs_(slots_),
      names_(slots_),
      controls_(slots_) {
  datagrams_.reserve(slots_);
}

void ReceiveBatch::ensure_slot_bytes(size_t bytes) {
  if (slot_bytes_ == bytes) return;
  datagrams_.clear();
  buffers_.reset(new uint8_t[slots_ * bytes]);
  slot_bytes_ = bytes;
}

// ---------------------------------------------------------------------------------------------------------
// SendBatch

SendBatch::SendBatch(size_t max_datagrams)
    : max_datagrams_(std::max<size_t>(max_datagrams, 1)),
      storage_(new uint8_t[max_datagrams_ * kMaxDatagram]),
      headers_(max_datagrams_),
      iovecs_(max_datagrams_),
      names_(max_datagrams_),
      controls_(max_datagrams_),
      message_datagrams_(max_datagrams_) {
  entries_.reserve(max_datagrams_);
}

uint8_t* SendBatch::next_buffer() {
  return full() ? nullptr : slot(entries_.size());
}

void SendBatch::commit(size_t len, const Address& to) {
  assert(!full() && len <= kMaxDatagram);
  if (full() || len > kMaxDatagram) return;  // a caller bug; dropping beats sending a truncated datagram
  entries_.push_back(Entry{len, to});
}

void SendBatch::remove_front(size_t n) {
  if (n == 0) return;
  if (n >= entries_.size()) {
    entries_.clear();
    return;
  }
  for (size_t i = n; i < entries_.size(); ++i)
    std::memcpy(slot(i - n), slot(i), entries_[i].length);
  entries_.erase(entries_.begin(), entries_.begin() + std::ptrdiff_t(n));
}

// ---------------------------------------------------------------------------------------------------------
// UdpSocket

UdpSocket::UdpSocket(int fd, int family, bool v6only) : fd_(fd), family_(family), v6only_(v6only) {}

UdpSocket::~UdpSocket() {
  if (owns_fd_) ::close(fd_);
}

std::unique_ptr<UdpSocket> UdpSocket::adopt_for_sending(int fd, bool enable_gso) {
  sockaddr_storage ss;
  socklen_t len;
  if (!bound_udp_socket(fd, ss, len)) return nullptr;
  int v6only = 0;
  socklen_t v6_len = sizeof v6only;
  if (ss.ss_family == AF_INET6) getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &v6_len);
  std::unique_ptr<UdpSocket> socket(new UdpSocket(fd, ss.ss_family, v6only != 0));
  socket->owns_fd_ = false;
  socket->local_ = from_sockaddr(ss, len);
  if (enable_gso) {
    int segment = 0;
    socklen_t segment_len = sizeof segment;
    socket->gso_enabled_ = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &segment, &segment_len) == 0;
  }
  return socket;
}

std::unique_ptr<UdpSocket> UdpSocket::open(const Address& bind, const UdpSocketOptions& options,
                                           Error* error) {
  return open_socket(bind, options, error, -1, nullptr);
}

std::unique_ptr<UdpSocket> UdpSocket::open_connected(int shared, const Address& remote,
                                                     const UdpSocketOptions& options, Error* error) {
  sockaddr_storage ss;
  socklen_t len;
  if (!bound_udp_socket(shared, ss, len)) {
    if (error) *error = Error{ErrorCode::kInvalidArgument, "not a bound UDP socket"};
    return nullptr;
  }
  const Address local = from_sockaddr(ss, len);
  if (local.is_any() || local.port() == 0) {  // a wildcard socket would be joined, not split
    if (error) *error = Error{ErrorCode::kInvalidArgument, "the shared socket is not bound to one address"};
    return nullptr;
  }
  return open_socket(local, options, error, shared, &remote);
}

std::unique_ptr<UdpSocket> UdpSocket::open_socket(const Address& bind, const UdpSocketOptions& options,
                                                  Error* error, int shared, const Address* remote) {
  // The code follows errno (when the message came from a system call).
  auto fail = [&](const std::string& message, int fd, int err = 0) -> std::unique_ptr<UdpSocket> {
    if (fd >= 0) ::close(fd);
    if (error) {
      error->message = message;
      error->code = err == EADDRINUSE                ? ErrorCode::kAddressInUse
                    : err == EADDRNOTAVAIL           ? ErrorCode::kInvalidArgument
                    : err == EMFILE || err == ENFILE ? ErrorCode::kLimitExceeded
                    : err == 0                       ? ErrorCode::kInvalidArgument
                                                     : ErrorCode::kSystem;
    }
    return nullptr;
  };

  Address address = bind.is_unspecified() ? Address::any_v6(bind.port()) : bind;
  const bool wildcard_v6 = address.is_ipv6() && address.is_any();
  int family = address.is_ipv4() ? AF_INET : AF_INET6;
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0 && wildcard_v6 && errno == EAFNOSUPPORT) {
    // A host without IPv6 (ipv6.disable=1) still deserves a socket on every IPv4 interface.
    family = AF_INET;
    address = Address::ipv4({0, 0, 0, 0}, address.port());
    fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  }
  if (fd < 0) {
    const int err = errno;
    return fail(errno_text("socket", err), -1, err);
  }

  // Dual-stack where IPv4 can arrive at all: on [::], or on a v4-mapped address. A socket on a specific
  // IPv6 address is IPv6-only, so that IPv4 destinations are refused up front instead of by the kernel.
  const bool v6only = family == AF_INET6 && !wildcard_v6 && !address.is_ipv4_or_mapped();
  if (family == AF_INET6 && !set_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, int(v6only)))
    return fail(errno_text("setsockopt(IPV6_V6ONLY)", errno), fd, EINVAL);

  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, options.receive_buffer_bytes);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, options.send_buffer_bytes);

  // Never fragment: the protocol probes the path MTU itself, and a lost fragment loses the whole datagram.
  // PROBE rather than DO: the kernel's cached path MTU, which a forged ICMP message can lower, is ignored;
  // our own probing decides (as QUIC stacks do). Best effort; a kernel that refuses still delivers.
  if (family == AF_INET || !v6only) set_option(fd, IPPROTO_IP, IP_MTU_DISCOVER, int(IP_PMTUDISC_PROBE));
  if (family == AF_INET6) {
    set_option(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, int(IPV6_PMTUDISC_PROBE));
    set_option(fd, IPPROTO_IPV6, IPV6_DONTFRAG, 1);
  }

  sockaddr_storage ss;
  socklen_t len = to_sockaddr(address, family, &ss);
  if (len == 0) return fail("cannot bind to " + address.to_string() + ": not an IP address", fd);
  if (shared >= 0 &&
      (!set_option(fd, SOL_SOCKET, SO_REUSEADDR, 1) || !set_option(shared, SOL_SOCKET, SO_REUSEADDR, 1)))
    return fail(errno_text("setsockopt(SO_REUSEADDR)", errno), fd, EINVAL);
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len);
  const int bind_errno = errno;
  if (shared >= 0) {
    set_option(shared, SOL_SOCKET, SO_REUSEADDR, 0);
    set_option(fd, SOL_SOCKET, SO_REUSEADDR, 0);
  }
  if (bound != 0)
    return fail(errno_text(("bind " + address.to_string()).c_str(), bind_errno), fd, bind_errno);
  if (remote) {
    sockaddr_storage to;
    const socklen_t to_len = to_sockaddr(*remote, family, &to);
    if (to_len == 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&to), to_len) != 0) {
      const int err = to_len == 0 ? EAFNOSUPPORT : errno;
      return fail(errno_text(("connect " + remote->to_string()).c_str(), err), fd, err);
    }
  }

  std::unique_ptr<UdpSocket> socket(new UdpSocket(fd, family, v6only));
  len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return fail(errno_text("getsockname", errno), -1, EINVAL);  // the socket's destructor closes fd
  socket->local_ = from_sockaddr(ss, len);

  if (options.enable_gso) {
    // Reading the option is a harmless way to ask whether this kernel knows UDP_SEGMENT (4.18+).
    int segment = 0;
    socklen_t segment_len = sizeof segment;
    socket->gso_enabled_ = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &segment, &segment_len) == 0;
  }
  if (options.enable_gro) {
    keep_gro_enabled(family);
    socket->gro_enabled_ = set_option(fd, SOL_UDP, UDP_GRO, 1);
  }
  return socket;
}

bool UdpSocket::reachable(const Address& to) const {
  if (to.is_unspecified() || to.port() == 0) return false;
  if (family_ == AF_INET) return to.is_ipv4_or_mapped();
  return !(v6only_ && to.is_ipv4_or_mapped());
}

size_t UdpSocket::receive(ReceiveBatch& batch) {
  batch.datagrams_.clear();
  batch.ensure_slot_bytes(gro_enabled_ ? kGroSlotBytes : SendBatch::kMaxDatagram);
  const size_t slots = batch.slots_;

  for (int attempt = 0; attempt < kMaxReceiveAttempts && batch.datagrams_.empty(); ++attempt) {
    for (size_t s = 0; s < slots; ++s) {
      batch.iovecs_[s] = iovec{batch.buffers_.get() + s * batch.slot_bytes_, batch.slot_bytes_};
      msghdr& h = batch.headers_[s].msg_hdr;
      h = msghdr{};
      h.msg_name = &batch.names_[s];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &batch.iovecs_[s];
      h.msg_iovlen = 1;
      h.msg_control = batch.controls_[s].bytes;
      h.msg_controllen = sizeof batch.controls_[s].bytes;
      batch.headers_[s].msg_len = 0;
    }
    int rc = ::recvmmsg(fd_, batch.headers_.data(), unsigned(slots), MSG_DONTWAIT, nullptr);
    if (rc < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      // Typically ECONNREFUSED: an ICMP error for an earlier send, reported here and cleared by reporting it.
      if (err != EINTR) ++counters_.receive_errors;
      continue;
    }

    for (size_t s = 0; s < size_t(rc); ++s) {
      msghdr& h = batch.headers_[s].msg_hdr;
      size_t length = batch.headers_[s].msg_len;
      // A truncated datagram is not ours (ours fit the slot); a cut-off control area may have lost the
      // segment size, without which a coalesced buffer cannot be split.
      if ((h.msg_flags & MSG_TRUNC) || (h.msg_flags & MSG_CTRUNC)) {
        ++counters_.receive_errors;
        continue;
      }
      size_t segment = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          int value = 0;
          std::memcpy(&value, CMSG_DATA(c), sizeof value);
          if (value > 0) segment = size_t(value);
        }
      }
      Address from = from_sockaddr(batch.names_[s], h.msg_namelen);
      uint8_t* data = batch.buffers_.get() + s * batch.slot_bytes_;
      if (segment == 0 || length <= segment) {
        batch.datagrams_.push_back(ReceivedDatagram{data, length, from});
        ++counters_.datagrams_received;
        continue;
      }
      ++counters_.gro_coalesced;
      for (size_t offset = 0; offset < length; offset += segment) {
        batch.datagrams_.push_back(ReceivedDatagram{data + offset, std::min(segment, length - offset), from});
        ++counters_.datagrams_received;
      }
    }
    if (size_t(rc) < slots) break;  // the queue is drained; another call would only say EAGAIN
  }
  return batch.datagrams_.size();
}

size_t UdpSocket::build_messages(SendBatch& batch, size_t first, size_t single_until) {
  const size_t n = batch.entries_.size();
  size_t messages = 0;
  size_t iov = 0;
  size_t i = first;
  while (i < n && messages < kMaxMessagesPerCall) {
    const Address& to = batch.entries_[i].to;
    if (!reachable(to)) break;  // the caller drops it once everything before it is sent
    const size_t size = batch.entries_[i].length;

    // A GSO run: same destination, same size, except that the last may be shorter.
    size_t count = 1;
    if (gso_enabled_ && i >= single_until && size > 0) {
      size_t total = size;
      while (i + count < n && count < kMaxGsoSegments) {
        const SendBatch::Entry& next = batch.entries_[i + count];
        if (next.to != to || next.length > size || next.length == 0 || total + next.length > kMaxGsoBytes)
          break;
        total += next.length;
        ++count;
        if (next.length < size) break;
      }
    }

    msghdr& h = batch.headers_[messages].msg_hdr;
    h = msghdr{};
    h.msg_name = &batch.names_[messages];
    h.msg_namelen = to_sockaddr(to, family_, &batch.names_[messages]);
    h.msg_iov = &batch.iovecs_[iov];
    h.msg_iovlen = count;
    for (size_t k = 0; k < count; ++k)
      batch.iovecs_[iov + k] = iovec{batch.slot(i + k), batch.entries_[i + k].length};
    if (count > 1) {
      SendBatch::Control& control = batch.controls_[messages];
      std::memset(control.bytes, 0, sizeof control.bytes);
      h.msg_control = control.bytes;
      h.msg_controllen = sizeof control.bytes;
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      const uint16_t segment = uint16_t(size);
      std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
    }
    batch.headers_[messages].msg_len = 0;
    batch.message_datagrams_[messages] = count;
    ++messages;
    iov += count;
    i += count;
  }
  return messages;
}

bool UdpSocket::send(SendBatch& batch) {
  const size_t n = batch.entries_.size();
  size_t done = 0;  // datagrams [0, done) are sent or dropped
  // After the kernel refuses a GSO run, its datagrams [done, single_until) go one by one. If the first of
  // them then goes through, GSO itself was the problem (old kernel, device without checksum offload), so
  // it is switched off for good; if that one fails too, the datagrams were at fault (say, too big).
  size_t single_until = 0;
  bool blaming_gso = false;

  while (done < n) {
    if (!reachable(batch.entries_[done].to)) {
      ++counters_.send_errors;
      ++done;
      continue;
    }
    const size_t messages = build_messages(batch, done, single_until);
    int rc = ::sendmmsg(fd_, batch.headers_.data(), unsigned(messages), MSG_DONTWAIT);
    if (rc > 0) {
      for (size_t m = 0; m < size_t(rc); ++m) {
        const size_t count = batch.message_datagrams_[m];
        if (count > 1) ++counters_.gso_sends;
        if (blaming_gso) gso_enabled_ = false;
        blaming_gso = false;
        counters_.datagrams_sent += count;
        done += count;
      }
      continue;
    }
    const int err = rc < 0 ? errno : EAGAIN;
    if (err == EINTR) continue;
    if (would_block(err)) {
      ++counters_.send_would_block;
      batch.remove_front(done);
      return false;
    }
    blaming_gso = false;
    const size_t count = batch.message_datagrams_[0];
    if (count > 1) {
      single_until = done + count;
      blaming_gso = true;
      continue;
    }
    // EMSGSIZE, ENETUNREACH, EACCES (firewall), ...: trying again would fail again.
    ++counters_.send_errors;
    ++done;
  }
  batch.clear();
  return true;
}

}  // namespace peerlink::io
