// The Host's service thread. Each turn: read datagrams in batches, run the peer-to-peer work and the
// Endpoint's timers, send what it has ready in batches, turn its events into the application's; then
// deliver what goes to callbacks on this thread, and sleep until the next deadline, a datagram, or a
// wake-up from an application thread.
#include <sys/prctl.h>

#include <algorithm>
#include <optional>

#include "transport/crypto/x25519.hpp"
#include "transport/host/host_impl.hpp"
#include "transport/io/path_codec.hpp"

namespace peerlink {

using protocol::Instant;
using protocol::PathAddress;

namespace {
constexpr size_t kDatagramsSentPerTurn = 512;
}  // namespace

void Host::Impl::service_main() {
  // Timer slack of 1 us instead of 50 us: pacing and ack timers are often only microseconds away.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  loop_.attach_to_this_thread();
  std::vector<pollfd> fds;
  std::vector<uint8_t> readable;
  uint64_t delivered_notified = 0;
  uint64_t events_notified = 0;

  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    sleeping_ = false;
    // Whether this turn runs after the destructor's releases: flush_signaling() below lets go of the lock,
    // and a stop that comes in then must first get a turn of its own (its releases become signaling blobs
    // in run_turn), or the peers of connections being set up would never be told.
    const bool stop_seen = stopping_;
    Instant now = io::monotonic_now();
    bool more = false;
    run_turn(now, readable, more);
    publish_news();
    readable.assign(readable.size(), 0);

    // Waiters are notified after the lock is released, so that a woken thread does not block on it at once.
    bool notify = (waiters_ > 0 || poller_active_) &&
                  (endpoint_.messages_delivered() != delivered_notified || events_queued_ != events_notified);
    delivered_notified = endpoint_.messages_delivered();
    events_notified = events_queued_;
    if (deliver_on_service_thread(lock, notify)) continue;  // a callback may have queued work
    // A peer-to-peer connection closed by the destructor tells its peer through the signaling: out first.
    flush_signaling(lock);
    if (stop_seen && shutdown_done(now)) {
      if (notify) notify_waiters();
      break;
    }

    Instant deadline = next_wake(now, more);
    fds.resize(sockets_.size());
    sockets_left_to_poller_ = false;
    for (size_t i = 0; i < sockets_.size(); ++i) {
      const SocketSlot& s = *sockets_[i];
      // A waiter reads it (receive_on_wait): left out (poll skips a negative descriptor).
      const bool left = poller_active_ && i < poller_sockets_ && !s.blocked;
      sockets_left_to_poller_ |= left;
      fds[i] = pollfd{left ? -1 : s.socket->fd(), short(POLLIN | (s.blocked ? POLLOUT : 0)), 0};
    }
    // Then the ICE paths read here rather than by libnice.
    polled_sockets_ = sockets_.size();
    polled_streams_.clear();
    for (const auto& [id, stream] : streams_) {
      if (!stream.direct_owned) continue;
      polled_streams_.push_back(id);
      fds.push_back(pollfd{stream.direct->fd(), POLLIN, 0});
    }
    sleeping_ = true;
    sleep_deadline_ = deadline;
    // The next handshake's ephemeral key pair is made ahead, off its critical path, once this Host has
    // been quiet for kQuietBeforeKey: made at once, it would hold up the answer to a handshake under way.
    Instant wait_until = deadline;
    bool key_if_quiet = false;
    if (endpoint_.wants_ephemeral() && now + kQuietBeforeKey < deadline) {
      wait_until = now + kQuietBeforeKey;
      key_if_quiet = true;
    }
    lock.unlock();
    if (notify) notify_waiters();
    log_.flush();
    loop_.wait(fds, wait_until);
    std::optional<crypto::X25519KeyPair> key;
    if (key_if_quiet && io::monotonic_now() >= wait_until &&
        std::none_of(fds.begin(), fds.end(), [](const pollfd& p) { return p.revents != 0; })) {
      // Unlocked: a command meanwhile is seen by the next turn, which runs right after this one whatever
      // woke the wait (SystemRandom is safe to use from any thread).
      key = crypto::x25519_generate(rng_);
    }
    lock.lock();
    if (key) {
      endpoint_.give_ephemeral(*key);
      crypto::wipe(*key);
    }
    if (deadline_pulled_) {  // this turn looks at every timer anyway
      loop_.cancel_wake_at();
      deadline_pulled_ = false;
    }

    readable.assign(fds.size(), 0);
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents & (POLLIN | POLLERR)) readable[i] = 1;
      if ((fds[i].revents & POLLOUT) && i < polled_sockets_) sockets_[i]->blocked = false;
    }
  }
  // Whatever is still queued for the sockets goes out now, best effort.
  for (auto& s : sockets_)
    if (!s->outgoing.empty()) flush_socket(*s);
  lock.unlock();
  loop_.detach_from_this_thread();
  log_.flush();
}

// Steps 1–4 of a turn, under the lock. more: the send budget ran out (come back at once).
void Host::Impl::run_turn(Instant now, const std::vector<uint8_t>& readable, bool& more) {
  // now moves on where receiving sends between batches (send_between_batches).
  const size_t sockets = std::min(readable.size(), polled_sockets_);
  for (size_t i = 0; i < sockets; ++i)
    if (readable[i]) receive_from(uint8_t(i), now);
  for (size_t i = sockets; i < readable.size() && i - sockets < polled_streams_.size(); ++i)
    if (readable[i]) receive_from_stream(polled_streams_[i - sockets], now);
  // What is left in a socket is reported again by the next (level-triggered) ppoll.
  if (receive_impairment_) {
    io::ImpairedDatagram d;
    while (receive_impairment_->pop_due(now, d))
      deliver_datagram(now, d.address, d.data.data(), d.data.size());
  }
  if (rz_) process_p2p(now);
  if (endpoint_.next_timeout() <= now) endpoint_.handle_timeout(now);
  more = transmit(now);
  if (rz_) reap_retired_streams();  // after transmit: the CLOSE of a released connection is out
  collect_events(now);
}

// kService: events, then received messages, go to their callbacks here, with the lock released. Events
// before messages: a connection's kConnected comes before its first message. True if it called any.
bool Host::Impl::deliver_on_service_thread(std::unique_lock<std::mutex>& lock, bool notify) {
  if (config_.callback_thread != CallbackThread::kService) return false;
  std::vector<std::pair<ConnectionEvent, ConnectionCallback>> batch;
  take_callback_events(batch);
  if (!batch.empty()) {
    lock.unlock();
    if (notify) notify_waiters();
    deliver_events(batch);
    lock.lock();
    return true;
  }
  if (!message_callback_ || endpoint_.messages_delivered() == messages_seen_) return false;
  callback_messages_.clear();
  take_group_messages(kDefaultPollGroup, callback_messages_, SIZE_MAX);
  for (PollGroupHandle g : groups_)
    take_group_messages(g, callback_messages_, SIZE_MAX);
  MessageCallback callback = message_callback_;
  lock.unlock();
  if (notify) notify_waiters();
  log_.flush();
  for (Message& m : callback_messages_)
    callback(std::move(m));
  callback_messages_.clear();
  lock.lock();
  return true;  // replies may be waiting to go out, and events to be delivered
}

Instant Host::Impl::next_wake(Instant now, bool more) const {
  Instant deadline = more || !ice_news_.empty() ? now : endpoint_.next_timeout();
  if (rz_) deadline = std::min(deadline, rz_->next_timeout());
  if (rz_ && !p2p_.empty()) deadline = std::min(deadline, next_path_watch_);
  if (send_impairment_) deadline = std::min(deadline, send_impairment_->next_due());
  if (receive_impairment_) deadline = std::min(deadline, receive_impairment_->next_due());
  if (stopping_) deadline = std::min(deadline, stop_deadline_);
  return deadline;
}

void Host::Impl::receive_from(uint8_t index, Instant& now) {
  SocketSlot& slot = *sockets_[index];
  receive_batches(*slot.socket, now, [&](io::ReceivedDatagram& d) {
    PathAddress from = io::encode_path(index, d.from);
    if (receive_impairment_)
      receive_impairment_->submit(now, from, d.data, d.size);
    else
      endpoint_.handle_datagram(now, from, d.data, d.size, slot.accepting && !stopping_);
  });
}

bool Host::Impl::send_between_batches(Instant& now) {
  // More is queued behind a full batch. What the batch made due, acknowledgements above all, goes out now
  // rather than after the whole turn: acknowledging a turn's megabytes at once shows the sender a burst,
  // BBR's window keeps room for such bursts, and with that room the queue here stood instead of draining
  // (docs/PROTOCOL.md 9.2).
  if (!endpoint_.wants_transmit()) return false;
  // The turn's instant moves on with these sends, and again once the next batch is read: an answer to a
  // packet sent here may be in it, and handled at the instant of its send it would measure a round trip
  // of zero.
  now = io::monotonic_now();
  transmit(now);
  return true;
}

void Host::Impl::deliver_datagram(Instant now, const PathAddress& from, uint8_t* data, size_t size) {
  SocketSlot* slot = socket_of(from);
  endpoint_.handle_datagram(now, from, data, size, slot && slot->accepting && !stopping_);
}

Host::Impl::SocketSlot* Host::Impl::socket_of(const PathAddress& path) {
  uint8_t index;
  return io::decode_path_socket(path, index) && index < sockets_.size() ? sockets_[index].get() : nullptr;
}

bool Host::Impl::transmit(Instant now) {
  if (send_impairment_) {
    io::ImpairedDatagram d;
    while (send_impairment_->pop_due(now, d)) {
      SocketSlot* slot = socket_of(d.address);
      uint8_t index;
      Address to;
      if (!slot || !io::decode_path(d.address, index, to)) continue;
      if (slot->outgoing.full() && !flush_socket(*slot)) continue;  // blocked: the datagram is lost
      std::memcpy(slot->outgoing.next_buffer(), d.data.data(), d.data.size());
      slot->outgoing.commit(d.data.size(), to);
    }
  }

  // Datagrams are built straight into the batch of the socket the previous one went to (usually the only
  // one), and moved only when the Endpoint picked another socket.
  // ICE paths are sent through libnice from a scratch buffer.
  SocketSlot* guess = sockets_.empty() ? nullptr : sockets_[client_socket_.value_or(0)].get();
  size_t sent = 0;
  bool budget_left = true;
  uint8_t scratch[io::SendBatch::kMaxDatagram];
  for (;;) {
    if (sent >= kDatagramsSentPerTurn) {
      budget_left = false;
      break;
    }
    if (guess && guess->outgoing.full() && !flush_socket(*guess))
      break;  // the kernel is full: wait for POLLOUT
    uint8_t* buf = guess ? guess->outgoing.next_buffer() : scratch;
    PathAddress to_path;
    size_t n = endpoint_.poll_transmit(now, buf, io::SendBatch::kMaxDatagram, to_path);
    if (n == 0) break;
    ++sent;
    uint8_t index;
    Address to;
    if (!io::decode_path(to_path, index, to) || index >= sockets_.size()) {
      send_to_stream(to_path, buf, n);
      continue;
    }
    if (send_impairment_) {
      send_impairment_->submit(now, to_path, buf, n);
      continue;
    }
    SocketSlot* slot = sockets_[index].get();
    if (slot == guess) {
      slot->outgoing.commit(n, to);
      continue;
    }
    if (slot->outgoing.full() && !flush_socket(*slot)) {
      guess = slot;  // blocked there; the datagram is lost like one dropped by a full router queue
      continue;
    }
    std::memcpy(slot->outgoing.next_buffer(), buf, n);
    slot->outgoing.commit(n, to);
    guess = slot;
  }
  for (auto& s : sockets_)
    if (!s->outgoing.empty() && !s->blocked) flush_socket(*s);
  flush_ice_batch();
  return !budget_left;
}

bool Host::Impl::flush_socket(SocketSlot& slot) {
  if (slot.blocked) return false;
  if (slot.socket->send(slot.outgoing)) return true;
  slot.blocked = true;
  return false;
}

void Host::Impl::collect_events(Instant now) {
  protocol::Event e;
  while (endpoint_.poll_event(e)) {
    ConnectionHandle c = e.connection;
    if (e.kind == protocol::EventKind::kIncomingRequest) {
      // Over an ICE path: the request of a peer-to-peer connection the signaling set up and accepted.
      if (!stopping_ && accept_p2p_request(now, c, e.remote_key)) continue;
      on_direct_request(now, c, e.remote_key);
      continue;
    }
    if (!handles_.count(c)) {
      // Never handed to the application (a request that failed before kIncomingRequest, e.g. a half-open
      // handshake) or already released by it: free the connection, which nobody else will close.
      if (e.state == ConnectionState::kClosed) endpoint_.close(c, e.reason, e.debug, false, now);
      continue;
    }
    if (e.state == ConnectionState::kConnected) {
      log_.log(LogLevel::kInfo, "connection %u: connected", c);
      learn_key(c);
      queue_event(ConnectionEventKind::kConnected, c);
    } else if (e.state == ConnectionState::kClosed) {
      log_.log(LogLevel::kInfo, "connection %u: closed (%u %s: %s)", c, e.reason,
               to_string(EndReason(e.reason)), e.debug.c_str());
      // Its signaling session ends too: the peer's next (symmetric) request is a new connection, not a
      // late copy of this one's race, even while the application still holds the handle.
      if (rz_ && rz_->has(c)) rz_->close(now, c, e.reason);
      queue_event(ConnectionEventKind::kClosed, c);
    }
  }
  // Accepting or rejecting above may have made packets to send.
  if (endpoint_.wants_transmit()) transmit(now);
}

// A connection request on a UDP listen socket, its handshake done.
void Host::Impl::on_direct_request(Instant now, ConnectionHandle c, const PublicKey& remote_key) {
  const protocol::Connection* conn = endpoint_.connection(c);
  SocketSlot* slot = conn ? socket_of(conn->peer_address()) : nullptr;
  if (!slot || !slot->accepting || stopping_) {
    endpoint_.reject(c, uint32_t(EndReason::kRemoteRejected), now);
    return;
  }
  if (handles_.size() >= config_.max_connections) {
    endpoint_.reject(c, uint32_t(EndReason::kRemoteBusy), now);
    log_.log(LogLevel::kWarning, "incoming connection refused: HostConfig::max_connections reached");
    return;
  }
  HandleState& h = handles_[c];
  h.incoming = true;
  h.listen = slot->listen;
  h.group = slot->options.poll_group;
  h.callback = slot->options.callback;
  if (h.group != kDefaultPollGroup) endpoint_.set_poll_group(c, h.group);
  if (log_.enabled(LogLevel::kInfo)) {
    uint8_t index;
    Address from;
    io::decode_path(conn->peer_address(), index, from);
    log_.log(LogLevel::kInfo, "connection %u: request from %s (%s)", c, from.to_string().c_str(),
             Identity::fingerprint_of(remote_key).c_str());
  }
  if (slot->options.auto_accept)
    endpoint_.accept(c, now);
  else
    queue_event(ConnectionEventKind::kIncomingRequest, c);
}

bool Host::Impl::shutdown_done(Instant now) {
  if (now >= stop_deadline_) return true;
  if (endpoint_.lingering_count() > 0 || endpoint_.wants_transmit()) return false;
  for (const auto& s : sockets_)
    if (!s->outgoing.empty()) return false;
  return true;
}

}  // namespace peerlink
