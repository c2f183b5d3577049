// The Host's service thread: read datagrams in batches, run the Endpoint's timers, send what it has ready in
// batches, turn its events into the application's, then sleep until the next deadline, a datagram, or a
// wake-up from an application thread.
#include <sys/prctl.h>

#include "transport/host/host_impl.hpp"
#include "transport/io/path_codec.hpp"

namespace peerlink {

using protocol::Instant;
using protocol::PathAddress;

namespace {
// Work done per turn before the loop looks at everything else again: enough to amortise a wake-up, small
// enough that acks, timers and application calls are never starved for long.
constexpr int kReceiveBatchesPerTurn = 8;
constexpr size_t kDatagramsSentPerTurn = 512;
// Events kept while no connection callback is set.
constexpr size_t kMaxQueuedEvents = 4096;
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
    Instant now = io::monotonic_now();

    for (size_t i = 0; i < readable.size(); ++i)
      if (readable[i]) receive_from(uint8_t(i), now);
    readable.assign(readable.size(),
                    0);  // what is left is reported again by the next (level-triggered) ppoll
    if (receive_impairment_) {
      io::ImpairedDatagram d;
      while (receive_impairment_->pop_due(now, d))
        deliver_datagram(now, d.address, d.data.data(), d.data.size());
    }
    if (rz_) {
      for (ice::StreamId stream : streams_to_remove_) {
        stream_handles_.erase(stream);
        forget_direct(stream);
        ice_->remove_stream(stream);
      }
      streams_to_remove_.clear();
      process_p2p(now);
    }
    if (endpoint_.next_timeout() <= now) endpoint_.handle_timeout(now);
    bool more = transmit(now);
    if (rz_ && !closing_streams_.empty()) reap_closing_streams();  // after transmit: their CLOSE is out
    collect_events(now);

    // Waiters are notified after the lock is released, so that a woken thread does not block on it at once.
    bool notify = waiters_ > 0 &&
                  (endpoint_.messages_delivered() != delivered_notified || events_queued_ != events_notified);
    delivered_notified = endpoint_.messages_delivered();
    events_notified = events_queued_;

    // Events before messages: a connection's kConnected comes before its first message.
    if (config_.callback_thread == CallbackThread::kService && callback_ && !events_.empty()) {
      std::deque<ConnectionEvent> batch;
      batch.swap(events_);
      ConnectionCallback callback = callback_;
      lock.unlock();
      if (notify) activity_.notify_all();
      deliver_events(batch, callback);
      lock.lock();
      continue;  // the callback may have queued work
    }
    if (message_callback_ && endpoint_.messages_delivered() != messages_seen_) {
      take_messages_for_callback();
      MessageCallback callback = message_callback_;
      lock.unlock();
      if (notify) activity_.notify_all();
      log_.flush();
      for (Message& m : callback_messages_)
        callback(std::move(m));
      callback_messages_.clear();
      lock.lock();
      continue;  // replies may be waiting to go out, and events to be delivered
    }
    if (stopping_ && shutdown_done(now)) {
      if (notify) activity_.notify_all();
      break;
    }

    flush_signaling(lock);
    Instant deadline = more || !ice_news_.empty() ? now : endpoint_.next_timeout();
    if (rz_) deadline = std::min(deadline, rz_->next_timeout());
    if (rz_ && !p2p_.empty()) deadline = std::min(deadline, next_path_watch_);
    if (send_impairment_) deadline = std::min(deadline, send_impairment_->next_due());
    if (receive_impairment_) deadline = std::min(deadline, receive_impairment_->next_due());
    if (stopping_) deadline = std::min(deadline, stop_deadline_);
    fds.resize(sockets_.size());
    for (size_t i = 0; i < sockets_.size(); ++i) {
      const SocketSlot& s = *sockets_[i];
      fds[i] = pollfd{s.socket->fd(), short(POLLIN | (s.blocked ? POLLOUT : 0)), 0};
    }
    sleeping_ = true;
    sleep_deadline_ = deadline;
    lock.unlock();
    if (notify) activity_.notify_all();
    log_.flush();
    loop_.wait(fds, deadline);
    lock.lock();

    readable.assign(fds.size(), 0);
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents & (POLLIN | POLLERR)) readable[i] = 1;
      if ((fds[i].revents & POLLOUT) && i < sockets_.size()) sockets_[i]->blocked = false;
    }
  }
  // Whatever is still queued for the sockets goes out now, best effort.
  for (auto& s : sockets_)
    if (!s->outgoing.empty()) flush_socket(*s);
  lock.unlock();
  loop_.detach_from_this_thread();
  log_.flush();
}

void Host::Impl::receive_from(uint8_t index, Instant now) {
  SocketSlot& slot = *sockets_[index];
  for (int round = 0; round < kReceiveBatchesPerTurn; ++round) {
    size_t n = slot.socket->receive(receive_batch_);
    for (size_t i = 0; i < n; ++i) {
      io::ReceivedDatagram& d = receive_batch_[i];
      PathAddress from = io::encode_path(index, d.from);
      if (receive_impairment_)
        receive_impairment_->submit(now, from, d.data, d.size);
      else
        endpoint_.handle_datagram(now, from, d.data, d.size, slot.accepting && !stopping_);
    }
    // A batch that was not full emptied the socket; ppoll is level-triggered and brings us back for more,
    // so the next recvmmsg would only return EAGAIN (a syscall per wake-up on the latency path).
    if (n < receive_batch_.slots()) break;
  }
}

void Host::Impl::take_messages_for_callback() {
  messages_seen_ = endpoint_.messages_delivered();
  protocol::ReceivedMessage m;
  auto take_group = [&](PollGroupHandle group) {
    while (endpoint_.receive_group(group, m)) {
      auto it = handles_.find(m.connection);
      uint64_t user_data = it == handles_.end() ? 0 : it->second.user_data;
      callback_messages_.emplace_back(m.connection, m.lane, m.reliable, m.number, user_data,
                                      std::move(m.data));
    }
  };
  take_group(kInvalidPollGroup);
  for (PollGroupHandle g : groups_)
    take_group(g);
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

void Host::Impl::queue_event(ConnectionEventKind kind, ConnectionHandle c) {
  auto it = handles_.find(c);
  if (it == handles_.end()) return;
  ConnectionEvent e;
  e.kind = kind;
  e.info = info_locked(c, it->second);
  events_.push_back(std::move(e));
  ++events_queued_;
  if (events_.size() > kMaxQueuedEvents && !callback_) {
    events_.pop_front();  // nobody collects them: keep the newest, bounded
    ++events_dropped_;
  }
}

void Host::Impl::collect_events(Instant now) {
  protocol::Event e;
  while (endpoint_.poll_event(e)) {
    ConnectionHandle c = e.connection;
    if (e.kind == protocol::EventKind::kIncomingRequest) {
      const protocol::Connection* conn = endpoint_.connection(c);
      SocketSlot* slot = conn ? socket_of(conn->peer_address()) : nullptr;
      if (!stopping_ && accept_p2p_request(now, c, e.remote_key)) continue;
      if (!slot || !slot->accepting || stopping_) {
        endpoint_.reject(c, uint32_t(EndReason::kRemoteRejected), now);
        continue;
      }
      if (handles_.size() >= config_.max_connections) {
        endpoint_.reject(c, uint32_t(EndReason::kRemoteBusy), now);
        log_.log(LogLevel::kWarning, "incoming connection refused: HostConfig::max_connections reached");
        continue;
      }
      HandleState& h = handles_[c];
      h.incoming = true;
      h.listen = slot->listen;
      h.group = slot->options.poll_group;
      if (h.group != kInvalidPollGroup) endpoint_.set_poll_group(c, h.group);
      if (log_.enabled(LogLevel::kInfo)) {
        uint8_t index;
        Address from;
        io::decode_path(conn->peer_address(), index, from);
        log_.log(LogLevel::kInfo, "connection %u: request from %s (%s)", c, from.to_string().c_str(),
                 Identity::fingerprint_of(e.remote_key).c_str());
      }
      if (slot->options.auto_accept)
        endpoint_.accept(c, now);
      else
        queue_event(ConnectionEventKind::kIncomingRequest, c);
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

bool Host::Impl::shutdown_done(Instant now) {
  if (now >= stop_deadline_) return true;
  if (endpoint_.lingering_count() > 0 || endpoint_.wants_transmit()) return false;
  for (const auto& s : sockets_)
    if (!s->outgoing.empty()) return false;
  return true;
}

}  // namespace peerlink
