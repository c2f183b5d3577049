// Host: the ICE streams under peer-to-peer connections (service thread, mutex_ held). A stream belongs to
// one connection; it is opened when the rendezvous starts ICE, dropped when the connection's setup ends or
// ICE starts over in the other role, and retired when the application releases the connection: a closing
// connection still needs its path to deliver what it lingers for and to send its CLOSE, so a retired
// stream is removed once the Endpoint has freed the connection.
//
// Sending: where the selected pair is a plain UDP socket, datagrams go out on it directly, batched with
// sendmmsg and GSO (libnice sends one datagram per call); otherwise (relayed, TCP) through libnice.
// Receiving: once ICE is done with such a pair, the Host reads it through a socket of its own, bound
// beside libnice's and connected to the peer (recvmmsg and GRO; libnice reads one datagram per call and
// the Host copied each), and answers the peer's checks there; libnice keeps everything else (its TURN
// traffic, other candidates, other peers' checks).
#include <sys/socket.h>

#include <cstring>

#include "transport/host/host_impl.hpp"
#include "transport/io/descriptors.hpp"
#include "transport/io/path_codec.hpp"

namespace peerlink {

using protocol::Instant;

ice::StreamId Host::Impl::open_stream(ConnectionHandle c, P2P& p, std::string* error,
                                      bool* out_of_descriptors) {
  // The answering side controls ICE: see ice_agent.hpp.
  ice::StreamId s = ice_->add_stream(!p.offerer, p.ufrag, p.pwd, error, out_of_descriptors);
  if (!s) return 0;
  p.stream = s;
  streams_[s].owner = c;
  // The answering side's Endpoint takes the handshake that arrives on the stream as this connection's.
  if (!p.offerer) endpoint_.expect_initiation(io::encode_ice_path(s), c);
  return s;
}

void Host::Impl::drop_stream(ice::StreamId stream) {
  retired_streams_.erase(stream);
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  endpoint_.cancel_expectation(io::encode_ice_path(stream));
  forget_direct(it->second);
  streams_.erase(it);
  ice_->remove_stream(stream);
}

void Host::Impl::retire_stream(ice::StreamId stream, bool has_connection) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  endpoint_.cancel_expectation(io::encode_ice_path(stream));
  retired_streams_[stream] = has_connection;
  loop_.wake();  // the service thread reaps it
}

void Host::Impl::reap_retired_streams() {
  std::vector<ice::StreamId> done;
  for (const auto& [id, has_connection] : retired_streams_) {
    auto it = streams_.find(id);
    if (it == streams_.end() || !(has_connection && endpoint_.connection(it->second.owner)))
      done.push_back(id);
  }
  for (ice::StreamId id : done)
    drop_stream(id);
}

void Host::Impl::refresh_direct(ice::StreamId stream) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  IceStream& s = it->second;
  auto d = ice_->direct_path(stream);
  // The extra descriptor only where the reserve stays whole (GLib aborts the process when it cannot have
  // one): otherwise libnice goes on reading the path.
  const bool own = d && d->ready && (s.direct_owned || io::descriptors_available(1 + io::kDescriptorReserve));
  // Nothing changed (libnice reports a pair's state and its selection one after the other): the socket
  // stays, and so does what is queued in it. A new one would leave that to be dropped with the old, the
  // peer's checks among it, and a check lost there is sent again only after libnice's backed-off timeout,
  // seconds when it checks many pairs.
  if (d && s.direct && s.direct_base == d->fd && s.direct_remote == d->remote && s.direct_owned == own)
    return;
  forget_direct(s);
  if (!d) return;
  if (own) {
    io::UdpSocketOptions options;
    options.receive_buffer_bytes = options.send_buffer_bytes = config_.socket_buffer_bytes;
    Error error;
    auto own_socket = io::UdpSocket::open_connected(d->fd, d->remote, options, &error);
    if (own_socket) {
      s.direct = std::move(own_socket);
      s.direct_remote = d->remote;
      s.direct_base = d->fd;
      s.direct_owned = true;
      loop_.wake();  // a new descriptor for the service thread's poll
      return;
    }
    log_.log(LogLevel::kDebug, "ICE stream %u: no socket of our own on the path (%s); libnice reads it",
             stream, error.message.c_str());
  }
  auto socket = io::UdpSocket::adopt_for_sending(d->fd, io::UdpSocketOptions().enable_gso);
  if (!socket || !socket->reachable(d->remote)) return;
  s.direct = std::move(socket);
  s.direct_remote = d->remote;
  s.direct_base = d->fd;
}

void Host::Impl::forget_direct(IceStream& s) {
  if (!s.direct) return;
  if (ice_batch_socket_ == s.direct.get()) flush_ice_batch();
  s.direct.reset();
  s.direct_base = -1;
  s.direct_owned = false;  // libnice reads the path again
}

void Host::Impl::receive_from_stream(ice::StreamId stream, Instant& now) {
  auto it = streams_.find(stream);
  if (it == streams_.end() || !it->second.direct_owned) return;
  io::UdpSocket& socket = *it->second.direct;
  const protocol::PathAddress path = io::encode_ice_path(stream);
  receive_batches(socket, now, [&](io::ReceivedDatagram& d) {
    if (!ice::IceAgent::is_stun(d.data, d.size)) {
      endpoint_.handle_datagram(now, path, d.data, d.size, false);
      return;
    }
    uint8_t reply[512];
    size_t reply_size = 0;
    ice_->answer_check(stream, d.data, d.size, d.from, reply, reply_size);
    if (reply_size > 0) ::send(socket.fd(), reply, reply_size, MSG_DONTWAIT);  // lost: the peer asks again
  });
}

// Best effort, like libnice's own sends: what the kernel does not take now is dropped (the connection
// retransmits).
void Host::Impl::flush_ice_batch() {
  if (ice_batch_socket_ && !ice_batch_.empty() && !ice_batch_socket_->send(ice_batch_)) ice_batch_.clear();
  ice_batch_socket_ = nullptr;
}

void Host::Impl::send_to_stream(const protocol::PathAddress& path, const uint8_t* data, size_t size) {
  uint32_t stream;
  if (!io::decode_ice_path(path, stream) || !ice_) return;
  auto it = streams_.find(stream);
  if (it != streams_.end() && it->second.direct && size <= io::SendBatch::kMaxDatagram) {
    io::UdpSocket* socket = it->second.direct.get();
    if (ice_batch_socket_ != socket) flush_ice_batch();
    ice_batch_socket_ = socket;
    std::memcpy(ice_batch_.next_buffer(), data, size);
    ice_batch_.commit(size, it->second.direct_remote);
    if (ice_batch_.full()) flush_ice_batch();
    return;
  }
  ice_->send(stream, data, size);  // before ICE connects there is no path: dropped (the core retransmits)
}

}  // namespace peerlink
