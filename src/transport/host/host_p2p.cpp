// Peer-to-peer connections: signaling plugins feed the Rendezvous, whose actions drive the IceAgent; once
// ICE connects, the offering side starts the Endpoint connection over the ICE stream and the answering side
// takes the connection request that arrives on it (expected, so no cookie round trip).
//
// Handles: a peer-to-peer connection's handle is an Endpoint id reserved when the connection starts, so it
// stays the same when the Endpoint connection is created later. Until then sends are kept here.
#include <algorithm>
#include <cstring>

#include "transport/host/candidates.hpp"
#include "transport/host/host_impl.hpp"
#include "transport/io/path_codec.hpp"

namespace peerlink {

using protocol::Instant;
using rendezvous::Action;
static_assert(rendezvous::kMaxBlobSize == kMaxSignalingBlob, "the rendezvous keeps to the contract's limit");

using host::to_ice;
using host::to_signaling;

class Host::Impl::Sink final : public SignalingSink {
 public:
  explicit Sink(Host::Impl& host) : host_(host) {}
  void deliver(const PeerId& from, const void* blob, size_t size) override {
    if (size == 0 || size > kMaxSignalingBlob || !blob) {  // not worth a copy
      std::lock_guard<std::mutex> lock(host_.inbox_mutex_);
      ++host_.inbox_invalid_;
      return;
    }
    Inbound in;
    in.peer = from;
    in.blob.assign(static_cast<const uint8_t*>(blob), static_cast<const uint8_t*>(blob) + size);
    push(std::move(in));
  }
  void peer_unreachable(const PeerId& peer, const std::string& detail) override {
    Inbound in;
    in.unreachable = true;
    in.peer = peer;
    in.detail = detail;
    push(std::move(in));
  }

 private:
  void push(Inbound in) {
    {
      std::lock_guard<std::mutex> lock(host_.inbox_mutex_);
      if (host_.inbox_.size() >= kMaxInbox) {  // a flood the service thread cannot keep up with
        ++host_.inbox_dropped_;
        return;
      }
      host_.inbox_.push_back(std::move(in));
    }
    host_.loop_.wake();
  }
  Host::Impl& host_;
};

void Host::Impl::start_p2p() {
  if (config_.signaling.empty()) return;
  IceConfig ice = config_.ice;
  std::string why;
  if (!ice::IceAgent::resolve_servers(ice, &why)) log_.log(LogLevel::kWarning, "%s", why.c_str());
  ice::IceCallbacks cb;
  cb.local_candidates = [this](ice::StreamId s, const std::vector<ice::Candidate>& c, bool done) {
    IceNews n;
    n.kind = IceNews::kCandidates;
    n.stream = s;
    n.candidates = to_signaling(c);
    n.done = done;
    ice_news_.push_back(std::move(n));
  };
  cb.state = [this](ice::StreamId s, ice::StreamState state) {
    IceNews n;
    n.kind = IceNews::kState;
    n.stream = s;
    n.state = state;
    ice_news_.push_back(std::move(n));
  };
  cb.selected_pair = [this](ice::StreamId s) {
    IceNews n;
    n.kind = IceNews::kSelectedPair;
    n.stream = s;
    ice_news_.push_back(std::move(n));
  };
  cb.receive = [this](ice::StreamId s, uint8_t* data, size_t size) {
    IceNews n;
    n.kind = IceNews::kDatagram;
    n.stream = s;
    n.data.assign(data, data + size);
    ice_news_.push_back(std::move(n));
  };
  ice_ = std::make_unique<ice::IceAgent>(loop_.context(), ice, std::move(cb));
  ice_->set_socket_buffer_bytes(config_.socket_buffer_bytes);
  rendezvous::RendezvousConfig rc;
  rc.setup_timeout = config_.connect_timeout;
  rz_ = std::make_unique<rendezvous::Rendezvous>(rc, config_.identity.public_key(), rng_,
                                                 [this] { return endpoint_.reserve_id(); });
  sink_ = std::make_unique<Sink>(*this);
  for (const auto& plugin : config_.signaling) {
    try {
      plugin->start(*sink_);
    } catch (...) {
      stop_p2p();  // the plugins started so far
      throw;
    }
    plugins_[plugin->scheme()] = plugin;
  }
}

void Host::Impl::stop_p2p() {
  for (auto& [scheme, plugin] : plugins_)
    plugin->stop();
  plugins_.clear();
  p2p_.clear();
  stream_handles_.clear();
  closing_streams_.clear();
  ice_batch_.clear();
  ice_batch_socket_ = nullptr;
  direct_.clear();
  ice_.reset();
}

ListenSocketHandle Host::Impl::listen_p2p(const ListenOptions& options, std::string* error) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string why;
  if (!rz_)
    why = "no signaling plugin (HostConfig::signaling is empty)";
  else if (p2p_listen_ != kInvalidListenSocket)
    why = "already listening for peer-to-peer connections";
  else if (options.poll_group != kInvalidPollGroup && !groups_.count(options.poll_group))
    why = "no such poll group";
  if (!why.empty()) {
    if (error) *error = why;
    return kInvalidListenSocket;
  }
  p2p_listen_ = next_listen_++;
  p2p_options_ = options;
  rz_->set_listening(true);
  return p2p_listen_;
}

ConnectionHandle Host::Impl::connect(const PeerId& peer, const ConnectOptions& options, std::string* error) {
  std::string why;
  ConnectionHandle c = kInvalidConnection;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (peer.empty()) {
      why = "empty peer id";
    } else if (!plugins_.count(std::string(peer.scheme()))) {
      why = "no signaling plugin for scheme '" + std::string(peer.scheme()) + "' (HostConfig::signaling has:";
      for (const auto& [scheme, plugin] : plugins_)
        why += " " + scheme;
      why += plugins_.empty() ? " none)" : ")";
    } else if (handles_.size() >= config_.max_connections) {
      why = "too many connections (HostConfig::max_connections)";
    } else if (options.poll_group != kInvalidPollGroup && !groups_.count(options.poll_group)) {
      why = "no such poll group";
    } else {
      Instant now = io::monotonic_now();
      ConnectionHandle h = endpoint_.reserve_id();
      c = rz_->connect(now, h, peer, options.symmetric);
      if (c != h) {
        endpoint_.release_id(h);  // an existing symmetric connection with this peer
      } else {
        HandleState& hs = handles_[c];
        hs.user_data = options.user_data;
        hs.group = options.poll_group;
        P2P& p = p2p_[c];
        p.peer = peer;
        p.expected_key = options.expected_key;
        log_.log(LogLevel::kInfo, "connection %u: connecting to %s", c, peer.str().c_str());
      }
      loop_.wake();
    }
    if (c == kInvalidConnection)
      log_.log(LogLevel::kWarning, "connect(%s): %s", peer.str().c_str(), why.c_str());
  }
  log_.flush();
  if (c == kInvalidConnection && error) *error = why;
  return c;
}

bool Host::Impl::set_ice_servers(const std::vector<StunServer>& stun, const std::vector<TurnServer>& turn,
                                 std::string* error) {
  IceConfig servers;
  servers.stun_servers = stun;
  servers.turn_servers = turn;
  std::string why = servers.validate();
  if (why.empty()) ice::IceAgent::resolve_servers(servers, &why);
  if (why.empty() && !rz_) why = "no signaling plugin (HostConfig::signaling is empty): no peer-to-peer side";
  if (!why.empty()) {
    if (error) *error = why;
    return false;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  new_ice_servers_ = std::move(servers);
  loop_.wake();
  return true;
}

void Host::Impl::process_p2p(Instant now) {
  if (!rz_) return;
  if (new_ice_servers_) {
    ice_->set_servers(new_ice_servers_->stun_servers, new_ice_servers_->turn_servers);
    new_ice_servers_.reset();
    log_.log(LogLevel::kInfo, "new STUN/TURN servers for the connections from now on");
  }
  std::vector<Inbound> inbox;
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    inbox.swap(inbox_);
  }
  for (Inbound& in : inbox) {
    if (in.unreachable) {
      rz_->peer_unreachable(now, in.peer, in.detail);
    } else {
      ++signaling_received_;
      rz_->receive(now, in.peer, in.blob.data(), in.blob.size());
    }
  }
  std::vector<IceNews> news;
  news.swap(ice_news_);
  for (IceNews& n : news) {
    auto it = stream_handles_.find(n.stream);
    if (it == stream_handles_.end()) continue;
    ConnectionHandle c = it->second;
    if (n.kind == IceNews::kDatagram) {  // also for a released connection that is still closing
      endpoint_.handle_datagram(now, io::encode_ice_path(n.stream), n.data.data(), n.data.size(), false);
      continue;
    }
    auto p = p2p_.find(c);
    if (p == p2p_.end()) continue;
    switch (n.kind) {
      case IceNews::kCandidates:
        rz_->local_candidates(now, c, p->second.ufrag, p->second.pwd, n.candidates, n.done);
        break;
      case IceNews::kState:
        if (n.state == ice::StreamState::kConnected) {
          on_ice_connected(now, c, p->second);
        } else if (!p->second.created || !endpoint_.connection(c) ||
                   endpoint_.connection(c)->state() != ConnectionState::kConnected) {
          rz_->ice_failed(now, c, uint32_t(EndReason::kMiscNoRoute), "ICE found no working path to the peer");
        } else if (!p->second.restarting) {
          restart_p2p(now, c, p->second, "ICE lost the path (consent expired)");
        }  // else a restart that found nothing yet: watch_p2p_paths tries again
        break;
      case IceNews::kDatagram:
        break;  // above
      case IceNews::kSelectedPair:
        refresh_direct(n.stream);
        p->second.route = ice_->route(n.stream, &p->second.remote_address);
        log_.log(LogLevel::kInfo, "connection %u: ICE switched to a better path (%s, %s)", c,
                 to_string(p->second.route), p->second.remote_address.to_string().c_str());
        break;
    }
  }
  if (now >= next_path_watch_) {
    watch_p2p_paths(now);
    next_path_watch_ = now + kPathWatchInterval;
  }
  if (rz_->next_timeout() <= now) rz_->handle_timeout(now);
  Action a;
  while (rz_->poll(a))
    apply(now, a);
}

void Host::Impl::apply(Instant now, Action& a) {
  switch (a.kind) {
    case Action::Kind::kSend:
      outbox_.emplace_back(std::move(a.peer), std::move(a.blob));
      return;
    case Action::Kind::kIncomingRequest: {
      if (handles_.size() >= config_.max_connections) {
        rz_->reject(now, a.handle, uint32_t(EndReason::kRemoteBusy), "too many connections");
        endpoint_.release_id(a.handle);
        return;
      }
      HandleState& h = handles_[a.handle];
      h.incoming = true;
      h.listen = p2p_listen_;
      h.group = p2p_options_.poll_group;
      P2P& p = p2p_[a.handle];
      p.peer = a.peer;
      p.offerer = false;
      p.peer_key = a.peer_key;
      log_.log(LogLevel::kInfo, "connection %u: request from %s (%s)", a.handle, a.peer.str().c_str(),
               Identity::fingerprint_of(a.peer_key).c_str());
      if (p2p_options_.auto_accept)
        rz_->accept(now, a.handle);
      else
        queue_event(ConnectionEventKind::kIncomingRequest, a.handle);
      return;
    }
    case Action::Kind::kStartIce: {
      auto it = p2p_.find(a.handle);
      if (it == p2p_.end()) return;
      P2P& p = it->second;
      if (p.stream) {  // a lost symmetric race: the stream starts over in the other role
        endpoint_.cancel_expectation(io::encode_ice_path(p.stream));
        stream_handles_.erase(p.stream);
        forget_direct(p.stream);
        ice_->remove_stream(p.stream);
        p.stream = 0;
      }
      p.offerer = a.role == rendezvous::Role::kOfferer;
      if (!p.offerer) p.peer_key = a.peer_key;
      std::string why;
      // The answering side controls ICE: see ice_agent.hpp.
      ice::StreamId s = ice_->add_stream(!p.offerer, p.ufrag, p.pwd, &why);
      if (!s) {
        rz_->ice_failed(now, a.handle, uint32_t(EndReason::kMiscNoRoute), why);
        return;
      }
      p.stream = s;
      stream_handles_[s] = a.handle;
      if (!p.offerer) endpoint_.expect_initiation(io::encode_ice_path(s), a.handle);
      rz_->local_candidates(now, a.handle, p.ufrag, p.pwd, {}, false);
      return;
    }
    case Action::Kind::kRemoteCandidates: {
      auto it = p2p_.find(a.handle);
      if (it == p2p_.end() || !it->second.stream) return;
      it->second.peer_key = a.peer_key;
      ice_->set_remote(it->second.stream, a.ufrag, a.pwd, to_ice(a.candidates), a.end_of_candidates);
      return;
    }
    case Action::Kind::kRestartIce: {
      auto it = p2p_.find(a.handle);
      if (it == p2p_.end() || !it->second.stream) return;
      P2P& p = it->second;
      if (!p.restarting) log_.log(LogLevel::kInfo, "connection %u: the peer restarts ICE", a.handle);
      p.restarting = true;
      p.restart_started = now;
      p.route = RouteType::kNone;
      std::string why;
      forget_direct(p.stream);
      if (!ice_->restart(p.stream, p.ufrag, p.pwd, &why)) {
        stream_handles_.erase(p.stream);
        p.stream = 0;
        rz_->ice_failed(now, a.handle, uint32_t(EndReason::kMiscNoRoute), "ICE restart failed: " + why);
        return;
      }
      rz_->local_candidates(now, a.handle, p.ufrag, p.pwd, {}, false);
      return;
    }
    case Action::Kind::kFailed: {
      std::string text = a.text;
      auto it = p2p_.find(a.handle);
      const bool no_path = a.reason == uint32_t(EndReason::kMiscNoRoute) ||
                           a.reason == uint32_t(EndReason::kMiscConnectTimeout);
      if (no_path && it != p2p_.end() && it->second.stream && !ice_->connected(it->second.stream))
        text += " (" + ice_->diagnosis(it->second.stream) + ")";
      end_p2p(a.handle, a.reason, text);
      return;
    }
  }
}

void Host::Impl::on_ice_connected(Instant now, ConnectionHandle c, P2P& p) {
  rz_->connected(now, c);
  p.route = ice_->route(p.stream, &p.remote_address);
  log_.log(LogLevel::kInfo, "connection %u: ICE path %s (%s, %s)", c, p.restarting ? "restored" : "found",
           to_string(p.route), p.remote_address.to_string().c_str());
  refresh_direct(p.stream);
  if (p.restarting && p.created) endpoint_.path_restored(c, now);
  p.restarting = false;
  p.rx_at = now;  // the silence that caused a restart is over
  if (!p.offerer || p.created) return;
  if (p.expected_key && p.peer_key && *p.expected_key != *p.peer_key) {
    rz_->ice_failed(now, c, uint32_t(EndReason::kRemoteKeyMismatch),
                    "the peer's key is not the expected one");
    return;
  }
  endpoint_.connect(now, io::encode_ice_path(p.stream), p.peer_key, c);
  adopt_endpoint_connection(c, p, now);
}

// A connected peer-to-peer connection whose ICE path went silent while we sent (a NAT rebinding, a network
// change, a relay gone) restarts ICE: new sockets, candidates and credentials through the signaling, the
// same encrypted connection on the new path. A restart that found nothing within kRestartRetry is tried
// again; the connection's idle timeout ends the attempts.
void Host::Impl::watch_p2p_paths(Instant now) {
  for (auto& [c, p] : p2p_) {
    if (!p.created || p.ended || !p.stream) continue;
    const protocol::Connection* conn = endpoint_.connection(c);
    if (!conn || conn->state() != ConnectionState::kConnected) continue;
    const uint64_t received = conn->packets_received(), sent = conn->packets_sent();
    if (received != p.seen_rx || p.rx_at == Instant{}) {
      p.seen_rx = received;
      p.tx_at_rx = sent;
      if (!p.restarting) p.rx_at = now;
      continue;
    }
    if (p.restarting) {
      if (now - p.restart_started >= kRestartRetry)
        restart_p2p(now, c, p, "the restarted ICE found no path yet");
    } else if (sent > p.tx_at_rx && now - p.rx_at >= kPathSilence) {
      restart_p2p(now, c, p,
                  "nothing received for " + std::to_string(protocol::to_us(now - p.rx_at) / 1000) +
                      " ms while sending");
    }
  }
}

void Host::Impl::restart_p2p(Instant now, ConnectionHandle c, P2P& p, const std::string& why) {
  if (!rz_->restart(now, c)) return;  // its signaling session is over: the connection is ending
  log_.log(LogLevel::kInfo, "connection %u: %s; restarting ICE", c, why.c_str());
  ++ice_restarts_;
  p.restarting = true;  // before the kRestartIce action is applied: this restart is ours, not the peer's
}

// The Endpoint connection now exists: it takes the poll group and the sends kept so far.
void Host::Impl::adopt_endpoint_connection(ConnectionHandle c, P2P& p, Instant now) {
  p.created = true;
  auto h = handles_.find(c);
  if (h != handles_.end() && h->second.group != kInvalidPollGroup)
    endpoint_.set_poll_group(c, h->second.group);
  for (auto& m : p.sends)
    endpoint_.send(c, m.data.data(), m.data.size(), m.flags, m.lane, now);
  p.sends.clear();
  p.send_bytes = 0;
}

bool Host::Impl::accept_p2p_request(Instant now, ConnectionHandle c, const PublicKey& remote_key) {
  auto it = p2p_.find(c);
  if (it == p2p_.end()) return false;
  P2P& p = it->second;
  if (!p.peer_key || *p.peer_key != remote_key) {
    // The handshake proved a key other than the one the signaling named.
    endpoint_.reject(c, uint32_t(EndReason::kRemoteKeyMismatch), now);
    return true;
  }
  endpoint_.accept(c, now);
  adopt_endpoint_connection(c, p, now);
  return true;
}

void Host::Impl::end_p2p(ConnectionHandle c, uint32_t reason, const std::string& debug) {
  auto it = p2p_.find(c);
  if (it == p2p_.end()) return;
  P2P& p = it->second;
  log_.log(LogLevel::kInfo, "connection %u: ended during setup (%u %s: %s)", c, reason,
           to_string(EndReason(reason)), debug.c_str());
  if (p.stream) {
    endpoint_.cancel_expectation(io::encode_ice_path(p.stream));
    stream_handles_.erase(p.stream);
    forget_direct(p.stream);
    ice_->remove_stream(p.stream);
    p.stream = 0;
  }
  Instant now = io::monotonic_now();
  if (p.created) endpoint_.close(c, reason, debug, false, now);
  endpoint_.release_id(c);
  p.created = false;
  p.ended = true;
  p.end_reason = reason;
  p.end_debug = debug;
  p.sends.clear();
  if (handles_.count(c)) {
    queue_event(ConnectionEventKind::kClosed, c);
  } else {
    p2p_.erase(it);
  }
}

// The application released c (close or reject).
void Host::Impl::release_p2p(ConnectionHandle c, uint32_t reason, Instant now) {
  auto it = p2p_.find(c);
  if (it == p2p_.end()) return;
  P2P& p = it->second;
  if (rz_->has(c)) rz_->close(now, c, reason);
  if (p.stream) {
    endpoint_.cancel_expectation(io::encode_ice_path(p.stream));
    // A connection closed with linger still needs its path until the peer has everything; any close
    // needs it for the CLOSE.
    if (p.created)
      closing_streams_.emplace_back(c, p.stream);
    else
      streams_to_remove_.push_back(p.stream);
  }
  if (!p.created) endpoint_.release_id(c);
  p2p_.erase(it);
  loop_.wake();
}

void Host::Impl::reap_closing_streams() {
  for (size_t i = 0; i < closing_streams_.size();) {
    auto [c, stream] = closing_streams_[i];
    if (endpoint_.connection(c)) {
      ++i;
      continue;
    }
    stream_handles_.erase(stream);
    forget_direct(stream);
    ice_->remove_stream(stream);
    closing_streams_[i] = closing_streams_.back();
    closing_streams_.pop_back();
  }
}

void Host::Impl::refresh_direct(ice::StreamId stream) {
  forget_direct(stream);
  auto d = ice_->direct_path(stream);
  if (!d) return;
  auto socket = io::UdpSocket::adopt_for_sending(d->fd, io::UdpSocketOptions().enable_gso);
  if (socket && socket->reachable(d->remote)) direct_[stream] = DirectSender{std::move(socket), d->remote};
}

void Host::Impl::forget_direct(ice::StreamId stream) {
  auto it = direct_.find(stream);
  if (it == direct_.end()) return;
  if (ice_batch_socket_ == it->second.socket.get()) flush_ice_batch();
  direct_.erase(it);
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
  auto d = direct_.find(stream);
  if (d != direct_.end() && size <= io::SendBatch::kMaxDatagram) {
    io::UdpSocket* socket = d->second.socket.get();
    if (ice_batch_socket_ != socket) flush_ice_batch();
    ice_batch_socket_ = socket;
    std::memcpy(ice_batch_.next_buffer(), data, size);
    ice_batch_.commit(size, d->second.remote);
    if (ice_batch_.full()) flush_ice_batch();
    return;
  }
  ice_->send(stream, data, size);  // before ICE connects there is no path: dropped (the core retransmits)
}

void Host::Impl::flush_signaling(std::unique_lock<std::mutex>& lock) {
  if (outbox_.empty()) return;
  std::vector<std::pair<PeerId, std::vector<uint8_t>>> out;
  out.swap(outbox_);
  signaling_sent_ += out.size();
  lock.unlock();
  for (auto& [peer, blob] : out) {
    auto it = plugins_.find(std::string(peer.scheme()));
    if (it != plugins_.end()) it->second->send(peer, blob.data(), blob.size());
  }
  lock.lock();
}

}  // namespace peerlink
