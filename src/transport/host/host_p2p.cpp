// Host: peer-to-peer connections. The signaling plugins feed the Rendezvous, whose actions drive the
// IceAgent; once ICE connects, the offering side starts the Endpoint connection over the ICE stream and the
// answering side takes the connection request that arrives on it (expected, so no cookie round trip).
//
// One connect, through this file: connect() reserves the handle and starts a rendezvous session; the
// service thread's process_p2p() then applies the rendezvous' actions in turn (start_ice, the blobs to
// send, the peer's candidates) and reads what the plugins and ICE reported (read_signaling,
// read_ice_news) until on_ice_connected() hands the path to the Endpoint (adopt_endpoint_connection).
//
// Handles: a peer-to-peer connection's handle is an Endpoint id reserved when the connection starts, so it
// stays the same when the Endpoint connection is created later. Until then sends are kept here.
#include <algorithm>

#include "transport/host/candidates.hpp"
#include "transport/host/host_impl.hpp"
#include "transport/io/path_codec.hpp"

namespace peerlink {

using protocol::Instant;
using rendezvous::Action;

static_assert(rendezvous::kMaxBlobSize == kMaxSignalingBlob, "the rendezvous keeps to the contract's limit");

// --- start and stop ---

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
    n.candidates = host::to_signaling(c);
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
  cb.ready_changed = [this](ice::StreamId s) {
    IceNews n;
    n.kind = IceNews::kReadyChanged;
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
  base_ice_servers_ = ice;
  ice_->set_socket_buffer_bytes(config_.socket_buffer_bytes);
  rendezvous::RendezvousConfig rc;
  rc.setup_timeout = config_.connect_timeout;
  rz_ = std::make_unique<rendezvous::Rendezvous>(rc, config_.identity.public_key(), rng_,
                                                 [this] { return endpoint_.reserve_id(); });
  // Last: a plugin may deliver at once (into the inbox, read by the service thread).
  plugins_ = std::make_unique<host::SignalingPlugins>(config_.signaling, config_.identity.public_key(),
                                                      [this] { loop_.wake(); });
}

void Host::Impl::stop_p2p() {
  plugins_.reset();  // stops them: no more deliveries
  p2p_.clear();
  ice_batch_.clear();
  ice_batch_socket_ = nullptr;
  streams_.clear();
  retired_streams_.clear();
  ice_.reset();
}

// --- application calls ---

Result<ListenSocketHandle> Host::Impl::listen_p2p(uint16_t virtual_port, const ListenOptions& options) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!rz_) return Error{ErrorCode::kNoSignaling, "no signaling plugin (HostConfig::signaling is empty)"};
  if (p2p_listeners_.count(virtual_port))
    return Error{
        ErrorCode::kAlreadyExists,
        "already listening for peer-to-peer connections on virtual port " + std::to_string(virtual_port)};
  if (options.poll_group != kDefaultPollGroup && !groups_.count(options.poll_group))
    return Error{ErrorCode::kNotFound, "no such poll group"};
  P2PListener& l = p2p_listeners_[virtual_port];
  l.handle = next_listen_++;
  l.options = options;
  rz_->set_listening(virtual_port, true);
  return l.handle;
}

Result<ConnectionHandle> Host::Impl::connect(const PeerId& peer, const ConnectOptions& options) {
  Error error;
  ConnectionHandle c = kInvalidConnection;
  if (peer.empty()) {
    error = {ErrorCode::kInvalidArgument, "empty peer id (use PeerId::parse)"};
  } else if (!plugins_ || !plugins_->serves(peer)) {
    error = {ErrorCode::kNoSignaling, "no signaling plugin for scheme '" + std::string(peer.scheme()) +
                                          "' (HostConfig::signaling has: " +
                                          (plugins_ ? plugins_->schemes() : std::string("none")) + ")"};
  } else if (plugins_->is_local(peer)) {  // asks the plugin: not under our lock
    error = {ErrorCode::kSelf, "cannot connect to " + peer.str() + ": it is this Host's own peer id"};
  } else {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto refusal = connect_refusal(options)) {
      error = std::move(*refusal);
    } else {
      Instant now = io::monotonic_now();
      ConnectionHandle h = endpoint_.reserve_id();
      c = rz_->connect(now, h, peer, options.virtual_port, options.symmetric);
      if (c != h) {
        endpoint_.release_id(h);  // an existing symmetric connection with this peer (and virtual port)
      } else {
        hold(c, options);
        P2P& p = p2p_[c];
        p.peer = peer;
        p.virtual_port = options.virtual_port;
        p.expected_key = options.expected_key;
        log_.log(LogLevel::kInfo, "connection %u: connecting to %s (virtual port %u)", c, peer.str().c_str(),
                 unsigned(options.virtual_port));
      }
      loop_.wake();
    }
  }
  if (c == kInvalidConnection)
    log_.log(LogLevel::kWarning, "connect(%s): %s", peer.str().c_str(), error.message.c_str());
  log_.flush();
  if (c == kInvalidConnection) return error;
  return c;
}

Result<void> Host::Impl::set_ice_servers(const std::vector<StunServer>& stun,
                                         const std::vector<TurnServer>& turn) {
  IceConfig servers;
  servers.stun_servers = stun;
  servers.turn_servers = turn;
  if (Result<void> valid = servers.validate(); !valid) return valid.error();
  std::string why;
  if (!ice::IceAgent::resolve_servers(servers, &why)) return Error{ErrorCode::kNameResolution, why};
  if (!rz_)
    return Error{ErrorCode::kNoSignaling,
                 "no signaling plugin (HostConfig::signaling is empty): no peer-to-peer side"};
  std::lock_guard<std::mutex> lock(mutex_);
  new_ice_servers_ = std::move(servers);
  loop_.wake();
  return {};
}

// A message sent while the connection is being set up: kept until the Endpoint connection exists, with the
// checks the Endpoint would make.
SendResult Host::Impl::keep_p2p_send(P2P& p, const uint8_t* data, size_t size, std::vector<uint8_t>* owned,
                                     uint32_t flags, uint32_t lane) {
  if (p.ended) return SendResult::kInvalidState;
  if (!protocol::valid_send_flags(flags)) return SendResult::kInvalidFlags;
  const bool reliable = !(flags & send_flags::kUnreliable);
  if (size > (reliable ? config_.max_message_size : size_t(64u << 10))) return SendResult::kMessageTooLarge;
  if (!reliable && size == 0) return SendResult::kDropped;
  if (!reliable && (flags & send_flags::kDropIfBlocked)) return SendResult::kDropped;  // cannot leave now
  if (lane >= std::max<size_t>(1, p.lanes.size())) return SendResult::kInvalidLane;
  if (p.send_bytes + size > config_.send_buffer_bytes) return SendResult::kLimitExceeded;
  p.sends.push_back({owned ? std::move(*owned) : std::vector<uint8_t>(data, data + size), flags, lane});
  p.send_bytes += size;
  return SendResult::kOk;
}

// The application released c (close or reject).
void Host::Impl::release_p2p(ConnectionHandle c, uint32_t reason, Instant now) {
  auto it = p2p_.find(c);
  if (it == p2p_.end()) return;
  P2P& p = it->second;
  if (rz_->has(c)) rz_->close(now, c, reason);  // a setup still going on: the peer is told
  if (p.stream) retire_stream(p.stream, p.created);
  if (!p.created) endpoint_.release_id(c);
  p2p_.erase(it);
  loop_.wake();
}

// --- the service thread ---

void Host::Impl::process_p2p(Instant now) {
  if (new_ice_servers_) {
    base_ice_servers_ = std::move(*new_ice_servers_);
    new_ice_servers_.reset();
    apply_ice_servers();
  }
  read_signaling(now);
  read_ice_news(now);
  if (now >= next_path_watch_) {
    watch_p2p_paths(now);
    next_path_watch_ = now + kPathWatchInterval;
  }
  if (rz_->next_timeout() <= now) rz_->handle_timeout(now);
  Action a;
  while (rz_->poll(a))
    apply(now, a);
  exact_senders_.clear();
}

void Host::Impl::read_signaling(Instant now) {
  std::vector<host::SignalingPlugins::Inbound> inbox;
  plugins_->take_inbox(inbox);
  for (host::SignalingPlugins::Inbound& in : inbox) {
    switch (in.kind) {
      case host::SignalingPlugins::Inbound::kBlob:
        if (in.exact != in.peer) exact_senders_[in.peer] = in.exact;  // for the actions this blob causes
        rz_->receive(now, in.peer, in.blob.data(), in.blob.size());
        break;
      case host::SignalingPlugins::Inbound::kUnreachable:
        fall_back(now, in.peer, in.detail);  // those that can go on elsewhere do; the others end
        rz_->peer_unreachable(now, in.peer, in.detail);
        break;
      case host::SignalingPlugins::Inbound::kIceServers:
        if (!in.detail.empty())
          log_.log(LogLevel::kWarning, "%s signaling: ICE servers left out: %s", in.scheme.c_str(),
                   in.detail.c_str());
        offered_ice_servers_[in.scheme] = std::move(in.servers);
        apply_ice_servers();
        break;
      case host::SignalingPlugins::Inbound::kNetworkChanged:
        on_network_changed(now, in.scheme, in.detail);
        break;
    }
  }
}

// HostConfig::ice's servers (or set_ice_servers()'s) with every plugin's offered ones, for the streams added
// or restarted from now on.
void Host::Impl::apply_ice_servers() {
  std::vector<StunServer> stun = base_ice_servers_.stun_servers;
  std::vector<TurnServer> turn = base_ice_servers_.turn_servers;
  for (const auto& [scheme, offered] : offered_ice_servers_) {
    stun.insert(stun.end(), offered.stun_servers.begin(), offered.stun_servers.end());
    turn.insert(turn.end(), offered.turn_servers.begin(), offered.turn_servers.end());
  }
  ice_->set_servers(stun, turn);
  log_.log(LogLevel::kInfo, "STUN/TURN servers for the connections from now on: %zu STUN, %zu TURN",
           stun.size(), turn.size());
}

// The exact sender of the blob that caused this action, if the plugin named one.
PeerId Host::Impl::exact_sender(const PeerId& peer) const {
  auto it = exact_senders_.find(peer);
  return it == exact_senders_.end() ? peer : it->second;
}

void Host::Impl::read_ice_news(Instant now) {
  std::vector<IceNews> news;
  news.swap(ice_news_);
  for (IceNews& n : news) {
    auto s = streams_.find(n.stream);
    if (s == streams_.end()) continue;
    const ConnectionHandle c = s->second.owner;
    if (n.kind == IceNews::kDatagram) {  // also for a released connection that is still closing
      endpoint_.handle_datagram(now, io::encode_ice_path(n.stream), n.data.data(), n.data.size(), false);
      continue;
    }
    if (n.kind == IceNews::kReadyChanged) {  // likewise: who reads the path
      refresh_direct(n.stream);
      continue;
    }
    auto it = p2p_.find(c);
    if (it == p2p_.end()) continue;
    P2P& p = it->second;
    switch (n.kind) {
      case IceNews::kCandidates:
        rz_->local_candidates(now, c, p.ufrag, p.pwd, n.candidates, n.done);
        break;
      case IceNews::kState:
        if (n.state == ice::StreamState::kConnected) {
          on_ice_connected(now, c, p);
        } else if (!p.created || !endpoint_.connection(c) ||
                   endpoint_.connection(c)->state() != ConnectionState::kConnected) {
          rz_->ice_failed(now, c, uint32_t(EndReason::kMiscNoRoute), "ICE found no working path to the peer");
        } else if (!p.restarting) {
          restart_p2p(now, c, p, "ICE lost the path");
        }  // else a restart that found nothing yet: watch_p2p_paths tries again
        break;
      case IceNews::kDatagram:
      case IceNews::kReadyChanged:
        break;  // above
      case IceNews::kSelectedPair:
        refresh_direct(n.stream);
        p.route = ice_->route(n.stream);
        log_.log(LogLevel::kInfo, "connection %u: ICE switched to a better path (%s, %s)", c,
                 to_string(p.route.type), p.route.remote.to_string().c_str());
        break;
    }
  }
}

void Host::Impl::apply(Instant now, Action& a) {
  switch (a.kind) {
    case Action::Kind::kSend:
      outbox_.emplace_back(std::move(a.peer), std::move(a.blob));
      return;
    case Action::Kind::kIncomingRequest:
      on_request(now, a);
      return;
    case Action::Kind::kStartIce:
      start_ice(now, a);
      return;
    case Action::Kind::kRemoteCandidates: {
      auto it = p2p_.find(a.handle);
      if (it == p2p_.end() || !it->second.stream) return;
      it->second.peer_key = a.peer_key;
      it->second.peer_exact = exact_sender(a.peer);
      if (key_refused(now, a.handle, it->second)) return;
      ice_->set_remote(it->second.stream, a.ufrag, a.pwd, host::to_ice(a.candidates), a.end_of_candidates);
      return;
    }
    case Action::Kind::kRestartIce:
      restart_ice(now, a);
      return;
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

void Host::Impl::on_request(Instant now, const Action& a) {
  if (!plugins_->key_matches(a.peer, a.peer_key)) {  // refused before the application sees it
    log_.log(LogLevel::kWarning, "request from %s refused: its key %s is not the one its name stands for",
             a.peer.str().c_str(), Identity::fingerprint_of(a.peer_key).c_str());
    rz_->reject(now, a.handle, uint32_t(EndReason::kRemoteKeyMismatch),
                "the key is not the one the name stands for");
    endpoint_.release_id(a.handle);
    return;
  }
  auto listener = p2p_listeners_.find(a.virtual_port);
  if (listener == p2p_listeners_.end() || handles_.size() >= config_.max_connections) {
    // The listener closed since the rendezvous took the request, or no room: refused.
    const bool listening = listener != p2p_listeners_.end();
    rz_->reject(now, a.handle, uint32_t(listening ? EndReason::kRemoteBusy : EndReason::kRemoteRejected),
                listening ? "too many connections" : "not listening any more");
    endpoint_.release_id(a.handle);
    return;
  }
  const ListenOptions& options = listener->second.options;
  HandleState& h = handles_[a.handle];
  h.incoming = true;
  h.listen = listener->second.handle;
  h.group = options.poll_group;
  h.callback = options.callback;
  P2P& p = p2p_[a.handle];
  p.peer = a.peer;
  p.peer_exact = exact_sender(a.peer);
  p.virtual_port = a.virtual_port;
  p.offerer = false;
  p.peer_key = a.peer_key;
  log_.log(LogLevel::kInfo, "connection %u: request from %s (%s, virtual port %u)", a.handle,
           a.peer.str().c_str(), Identity::fingerprint_of(a.peer_key).c_str(), unsigned(a.virtual_port));
  if (options.auto_accept)
    rz_->accept(now, a.handle);
  else
    queue_event(ConnectionEventKind::kIncomingRequest, a.handle);
}

void Host::Impl::start_ice(Instant now, const Action& a) {
  auto it = p2p_.find(a.handle);
  if (it == p2p_.end()) return;
  P2P& p = it->second;
  if (p.stream) {  // a lost symmetric race: the stream starts over in the other role
    drop_stream(p.stream);
    p.stream = 0;
  }
  p.offerer = a.role == rendezvous::Role::kOfferer;
  if (!p.offerer) p.peer_key = a.peer_key;
  if (!p.offerer && key_refused(now, a.handle, p)) return;
  std::string why;
  bool no_descriptors = false;
  if (!open_stream(a.handle, p, &why, &no_descriptors)) {
    const EndReason reason = no_descriptors ? EndReason::kLocalLimitExceeded : EndReason::kMiscNoRoute;
    rz_->ice_failed(now, a.handle, uint32_t(reason), why);
    return;
  }
  rz_->local_candidates(now, a.handle, p.ufrag, p.pwd, {}, false);
}

void Host::Impl::restart_ice(Instant now, const Action& a) {
  auto it = p2p_.find(a.handle);
  if (it == p2p_.end() || !it->second.stream) return;
  P2P& p = it->second;
  if (!p.restarting) log_.log(LogLevel::kInfo, "connection %u: the peer restarts ICE", a.handle);
  p.restarting = true;
  p.restart_started = now;
  p.route = {};
  auto s = streams_.find(p.stream);
  if (s != streams_.end()) forget_direct(s->second);
  std::string why;
  bool no_descriptors = false;
  if (!ice_->restart(p.stream, p.ufrag, p.pwd, &why, &no_descriptors)) {  // libnice dropped the stream
    streams_.erase(p.stream);
    retired_streams_.erase(p.stream);
    p.stream = 0;
    const EndReason reason = no_descriptors ? EndReason::kLocalLimitExceeded : EndReason::kMiscNoRoute;
    rz_->ice_failed(now, a.handle, uint32_t(reason), "ICE restart failed: " + why);
    return;
  }
  rz_->local_candidates(now, a.handle, p.ufrag, p.pwd, {}, false);
}

void Host::Impl::on_ice_connected(Instant now, ConnectionHandle c, P2P& p) {
  // Before the rendezvous hears of the path: while its setup is under way it tells the peer why it failed,
  // and the peer, waiting for our handshake, would otherwise wait for its handshake deadline.
  if (p.offerer && !p.created && p.expected_key && p.peer_key && *p.expected_key != *p.peer_key) {
    rz_->ice_failed(now, c, uint32_t(EndReason::kRemoteKeyMismatch),
                    "the peer's key is not the expected one");
    return;
  }
  rz_->connected(now, c);
  // Answering: the offerer's handshake comes next, over the path. A peer that never sends it (it failed,
  // it went away, it is hostile) must not hold the connection and its ICE stream for good: nothing else
  // ends it, since the rendezvous is done and the path watch looks at created connections only.
  if (!p.offerer && !p.created && p.handshake_deadline == protocol::kNever)
    p.handshake_deadline = now + config_.connect_timeout;
  p.route = ice_->route(p.stream);
  log_.log(LogLevel::kInfo, "connection %u: ICE path %s (%s, %s)", c, p.restarting ? "restored" : "found",
           to_string(p.route.type), p.route.remote.to_string().c_str());
  refresh_direct(p.stream);
  if (p.restarting && p.created) endpoint_.path_restored(c, now);
  p.restarting = false;
  p.watch.restart();  // the silence that caused a restart is over
  if (!p.offerer || p.created) return;
  endpoint_.connect(now, io::encode_ice_path(p.stream), p.peer_key, c);
  adopt_endpoint_connection(c, p, now);
}

// A connected peer-to-peer connection whose ICE path went silent while we sent (a NAT rebinding, a network
// change, a relay gone) restarts ICE: new sockets, candidates and credentials through the signaling, the
// same encrypted connection on the new path. A restart that found nothing within kRestartRetry is tried
// again; the connection's idle timeout ends the attempts.
void Host::Impl::watch_p2p_paths(Instant now) {
  std::vector<ConnectionHandle> no_handshake;
  for (auto& [c, p] : p2p_) {
    if (!p.created && !p.ended && p.handshake_deadline <= now) no_handshake.push_back(c);
    if (!p.created || p.ended || !p.stream) continue;
    const protocol::Connection* conn = endpoint_.connection(c);
    if (!conn || conn->state() != ConnectionState::kConnected) continue;
    const protocol::Duration silent =
        p.watch.look(now, conn->packets_received(), conn->answerable_packets_sent());
    if (p.restarting) {
      if (silent > protocol::Duration::zero() && now - p.restart_started >= kRestartRetry)
        restart_p2p(now, c, p, "the restarted ICE found no path yet");
    } else if (silent >= kPathSilence) {
      restart_p2p(
          now, c, p,
          "nothing received for " + std::to_string(protocol::to_us(silent) / 1000) + " ms since sending");
    }
  }
  for (ConnectionHandle c : no_handshake) {
    const uint32_t reason = uint32_t(EndReason::kMiscConnectTimeout);
    rz_->close(now, c, reason);  // its setup is done: the peer is not told (it is the one that went quiet)
    end_p2p(c, reason, "ICE found a path, but the peer's handshake did not come within the connect timeout");
  }
}

bool Host::Impl::key_refused(Instant now, ConnectionHandle c, const P2P& p) {
  if (!p.peer_key) return false;
  if (plugins_->key_matches(p.peer, *p.peer_key) &&
      (p.peer_exact.empty() || plugins_->key_matches(p.peer_exact, *p.peer_key)))
    return false;
  rz_->ice_failed(now, c, uint32_t(EndReason::kRemoteKeyMismatch),
                  "the peer's key " + Identity::fingerprint_of(*p.peer_key) + " is not the one " +
                      p.peer.str() + " stands for");
  return true;
}

void Host::Impl::fall_back(Instant now, const PeerId& peer, const std::string& detail) {
  if (!config_.signaling_fallback) return;
  auto known = known_keys_.find(peer);
  if (known == known_keys_.end()) return;    // nothing to hold a stand-in to: unreachable
  std::vector<ConnectionHandle> setting_up;  // our offers to `peer` not connected yet
  for (const auto& [c, p] : p2p_)
    if (p.peer == peer && p.offerer && !p.created && !p.ended && !p.fell_back) setting_up.push_back(c);
  if (setting_up.empty()) return;
  // Among the peers that say they are `peer`, the one holding its key; others are refused.
  const std::vector<PeerId> claims = plugins_->find_alias(peer);
  if (claims.empty()) return;
  auto holder = std::find_if(claims.begin(), claims.end(),
                             [&](const PeerId& q) { return plugins_->key_matches(q, known->second); });
  for (ConnectionHandle c : setting_up) {
    if (holder == claims.end()) {
      const std::string why = peer.str() + " is unreachable (" + detail + "); " + claims.front().str() +
                              " says it is " + peer.str() + " but does not hold the key learned for it (" +
                              Identity::fingerprint_of(known->second) + "): refused";
      log_.log(LogLevel::kWarning, "connection %u: %s", c, why.c_str());
      rz_->ice_failed(now, c, uint32_t(EndReason::kRemoteKeyMismatch), why);
      continue;
    }
    if (!rz_->retarget(now, c, *holder)) continue;
    log_.log(LogLevel::kInfo,
             "connection %u: %s is unreachable (%s); going on through %s, with the key learned for it", c,
             peer.str().c_str(), detail.c_str(), holder->str().c_str());
    P2P& p = p2p_.at(c);
    p.fell_back = true;
    p.peer_exact = *holder;
    if (!p.expected_key) p.expected_key = known->second;
  }
}

void Host::Impl::learn_key(ConnectionHandle c) {
  auto it = p2p_.find(c);
  const protocol::Connection* conn = endpoint_.connection(c);
  if (it == p2p_.end() || !conn || !conn->remote_key()) return;
  constexpr size_t kMaxKnownKeys = 65536;  // a bound on memory; beyond it new names are not remembered
  for (const PeerId* name : {&it->second.peer, &it->second.peer_exact})
    if (!name->empty() && (known_keys_.size() < kMaxKnownKeys || known_keys_.count(*name)))
      known_keys_[*name] = *conn->remote_key();
}

void Host::Impl::on_network_changed(Instant now, const std::string& scheme, const std::string& detail) {
  const bool interfaces = ice_->refresh_interfaces();
  log_.log(LogLevel::kInfo, "%s signaling: the network changed (%s)%s", scheme.c_str(), detail.c_str(),
           interfaces ? "; ICE gathers from the new addresses" : "");
  for (auto& [c, p] : p2p_)
    if (p.created && !p.ended && p.stream && !p.restarting)
      restart_p2p(now, c, p, "the network changed (" + detail + ")");
}

void Host::Impl::restart_p2p(Instant now, ConnectionHandle c, P2P& p, const std::string& why) {
  if (!rz_->restart(now, c)) return;  // its signaling session is over: the connection is ending
  log_.log(LogLevel::kInfo, "connection %u: %s; restarting ICE", c, why.c_str());
  ++ice_restarts_;
  p.restarting = true;  // before the kRestartIce action is applied: this restart is ours, not the peer's
}

// The Endpoint connection now exists: it takes the poll group, the lanes and the sends kept so far.
void Host::Impl::adopt_endpoint_connection(ConnectionHandle c, P2P& p, Instant now) {
  p.created = true;
  rz_->established(c);
  auto h = handles_.find(c);
  if (h != handles_.end() && h->second.group != kDefaultPollGroup)
    endpoint_.set_poll_group(c, h->second.group);
  if (!p.lanes.empty()) endpoint_.configure_lanes(c, p.lanes);
  for (auto& m : p.sends)
    endpoint_.send(c, std::move(m.data), m.flags, m.lane, now);
  p.sends.clear();
  p.send_bytes = 0;
}

bool Host::Impl::accept_p2p_request(Instant now, ConnectionHandle c, const PublicKey& remote_key) {
  auto it = p2p_.find(c);
  if (it == p2p_.end()) return false;
  P2P& p = it->second;
  if (!p.peer_key || *p.peer_key != remote_key) {
    // The handshake proved a key other than the one the signaling named. The Endpoint's connection now
    // exists, rejected: its kClosed ends the handle (not the handshake deadline, a second time).
    endpoint_.reject(c, uint32_t(EndReason::kRemoteKeyMismatch), now);
    p.created = true;
    p.handshake_deadline = protocol::kNever;
    return true;
  }
  endpoint_.accept(c, now);
  adopt_endpoint_connection(c, p, now);
  return true;
}

// The setup failed (rendezvous kFailed): the stream goes, the handle stays until the application closes it.
void Host::Impl::end_p2p(ConnectionHandle c, uint32_t reason, const std::string& debug) {
  auto it = p2p_.find(c);
  if (it == p2p_.end()) return;
  P2P& p = it->second;
  log_.log(LogLevel::kInfo, "connection %u: ended during setup (%u %s: %s)", c, reason,
           to_string(EndReason(reason)), debug.c_str());
  if (p.stream) {
    drop_stream(p.stream);
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

void Host::Impl::flush_signaling(std::unique_lock<std::mutex>& lock) {
  if (outbox_.empty()) return;
  std::vector<std::pair<PeerId, std::vector<uint8_t>>> out;
  out.swap(outbox_);
  signaling_sent_ += out.size();
  lock.unlock();
  for (auto& [peer, blob] : out)
    plugins_->send(peer, blob);
  lock.lock();
}

}  // namespace peerlink
