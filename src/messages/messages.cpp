// Messages: sessions, channels and callbacks on top of the public Host API (see messages.hpp).
//
// All state lives in Messages::Impl under one mutex:
//   sessions_   peer -> Session: its connection, channel states and activity clock
//   by_handle_  connection -> peer, for the sessions' connections
//   pending_    requests the Host raised and the application has not yet decided on (connection -> peer)
//   ignored_    requests the application declined: released when the Host gives up on them
//   inbox_      channel -> received messages waiting for receive()
//   notices_    application callbacks to make in run_callbacks(), in the order things happened
// The callback of Messages' connections (on_event) only changes this state and queues notices, so it may
// run on the application's thread (inside Host::run_callbacks) or on the Host's service thread alike. Host
// methods are called with the mutex held: the Host never calls back into us while holding a lock of its own,
// and none of its calls waits for the network.
#include "peerlink/messages.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "channel_header.hpp"

namespace peerlink {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kQueuedOverhead = 64;            // per queued message, counted against max_queued_bytes
constexpr size_t kReceiveBatch = 256;             // messages taken from the Host per call
constexpr size_t kScratchKeep = size_t(1) << 20;  // a larger send buffer is freed after use

using messages::decode_channel_header;
using messages::encode_channel_header;
using messages::kMaxChannelHeader;

}  // namespace

// --- ChannelMessage ---

ChannelMessage::ChannelMessage(std::shared_ptr<const PeerId> peer, uint32_t channel, bool reliable,
                               ConnectionHandle connection, std::vector<uint8_t> buffer,
                               size_t payload_offset)
    : peer_(std::move(peer)),
      buffer_(std::move(buffer)),
      offset_(std::min(payload_offset, buffer_.size())),
      connection_(connection),
      channel_(channel),
      reliable_(reliable) {}

const PeerId& ChannelMessage::peer() const {
  static const PeerId kNobody;
  return peer_ ? *peer_ : kNobody;
}

std::vector<uint8_t> ChannelMessage::take_data() {
  std::vector<uint8_t> out = std::move(buffer_);
  buffer_.clear();
  out.erase(out.begin(), out.begin() + std::ptrdiff_t(std::min(offset_, out.size())));
  offset_ = 0;
  return out;
}

// --- Messages::Impl ---

class Messages::Impl : public std::enable_shared_from_this<Messages::Impl> {
 public:
  Impl(Host& host, MessagesConfig config) : host_(host), config_(std::move(config)) {}

  struct Session {
    std::shared_ptr<const PeerId> peer;  // shared with the ChannelMessages of this session
    ConnectionHandle connection = kInvalidConnection;
    bool connected = false;
    Clock::time_point last_activity;
    std::unordered_map<uint32_t, bool> channels;  // true: open, false: closed by close_channel()

    bool any_open() const {
      for (const auto& [channel, open] : channels)
        if (open) return true;
      return false;
    }
  };

  struct Notice {
    enum Kind : uint8_t { kRequest, kFailed } kind = kRequest;
    PeerId peer;
    ConnectionHandle connection = kInvalidConnection;
    uint32_t reason = 0;
    std::string debug;
  };

  // Marks the thread running run_callbacks(), for the whole call (also if a callback throws).
  class RunningScope {
   public:
    explicit RunningScope(std::atomic<std::thread::id>& slot) : slot_(slot) {
      slot_.store(std::this_thread::get_id());
    }
    ~RunningScope() { slot_.store(std::thread::id()); }
    RunningScope(const RunningScope&) = delete;
    RunningScope& operator=(const RunningScope&) = delete;

   private:
    std::atomic<std::thread::id>& slot_;
  };

  // Listens on the virtual port, with Messages' own poll group and callback (see "Sharing the Host").
  void start() {
    group_ = host_.create_poll_group();
    ListenOptions lo;
    lo.auto_accept = false;
    lo.poll_group = group_;
    lo.callback = event_callback();
    Result<ListenSocketHandle> listener = host_.listen_p2p(config_.virtual_port, lo);
    if (!listener) {
      host_.destroy_poll_group(group_);
      Error e = listener.error();
      e.message = "Messages: the Host cannot listen for peer-to-peer requests: " + e.message;
      throw Exception(std::move(e));
    }
    listener_ = *listener;
  }

  void shut_down() {
    std::lock_guard<std::mutex> lock(mutex_);
    shut_down_ = true;
    host_.close_listen_socket(listener_);
    for (auto& [peer, s] : sessions_)
      host_.close(s.connection, CloseMode::kAfterDelivery, messages_end_reason::kClosed,
                  "the peer's Messages shut down");
    for (const auto& [c, peer] : pending_)
      host_.close(c);
    for (ConnectionHandle c : ignored_)
      host_.close(c);
    sessions_.clear();
    by_handle_.clear();
    pending_.clear();
    ignored_.clear();
    notices_.clear();
    host_.destroy_poll_group(group_);
  }

  // The callback of Messages' connections. It keeps the Impl only weakly: a Host still holding a copy after
  // the Messages object is gone finds nothing to call.
  ConnectionCallback event_callback() {
    std::weak_ptr<Impl> weak = weak_from_this();
    Host* host = &host_;  // outlives every call of this callback: the Host makes them
    return [weak, host](const ConnectionEvent& e) {
      if (std::shared_ptr<Impl> self = weak.lock())
        self->on_event(e);
      else
        host->close(e.info.handle);  // a request or connection nobody else will release
    };
  }

  // An event of one of Messages' connections.
  void on_event(const ConnectionEvent& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    const ConnectionInfo& info = e.info;
    const bool ours_request = info.listen_socket == listener_ && !info.remote_peer.empty();
    if (shut_down_) {
      // Raised just before the listener closed (a request): nobody else will release it.
      host_.close(info.handle);
      return;
    }
    switch (e.kind) {
      case ConnectionEventKind::kIncomingRequest:
        if (ours_request) on_request_locked(info);
        return;
      case ConnectionEventKind::kConnected: {
        auto it = by_handle_.find(info.handle);
        if (it == by_handle_.end()) return;
        Session& s = sessions_.at(it->second);
        s.connected = true;
        s.last_activity = Clock::now();  // the idle clock starts now
        return;
      }
      case ConnectionEventKind::kClosed:
        on_closed_locked(info);
        return;
    }
  }

  SendResult send_to(const PeerId& peer, uint32_t channel, const void* data, size_t size, uint32_t flags) {
    if (peer.empty()) return SendResult::kNoConnection;
    if (size > SIZE_MAX - kMaxChannelHeader) return SendResult::kMessageTooLarge;
    std::lock_guard<std::mutex> lock(mutex_);
    uint8_t header[kMaxChannelHeader];
    const size_t header_size = encode_channel_header(channel, header);
    scratch_.resize(header_size + size);
    std::memcpy(scratch_.data(), header, header_size);
    if (size > 0) std::memcpy(scratch_.data() + header_size, data, size);

    Session* s = find_session(peer);
    const bool fresh = !s;
    if (!s) s = open_locked(peer);
    if (!s) return SendResult::kNoConnection;
    SendResult r = host_.send(s->connection, scratch_.data(), scratch_.size(), flags);
    if (fresh && (r == SendResult::kInvalidState || r == SendResult::kNoConnection)) {
      // The new session failed already (the signaling knew the peer unreachable at once): like a message
      // sent while connecting, it is lost with the session, and on_session_failed will say why.
      r = SendResult::kOk;
    } else if (r == SendResult::kInvalidState || r == SendResult::kNoConnection) {
      // The connection ended and run_callbacks() has not seen it yet: end the session now, start another.
      std::optional<ConnectionInfo> info = host_.connection_info(s->connection);
      if (!info || info->state == ConnectionState::kClosed) {
        fail_session_locked(peer, info ? info->end_reason : uint32_t(EndReason::kMiscGeneric),
                            info ? info->end_debug : "the connection is gone");
        s = open_locked(peer);
        if (!s) return SendResult::kNoConnection;
        r = host_.send(s->connection, scratch_.data(), scratch_.size(), flags);
      }
    }
    if (scratch_.capacity() > kScratchKeep) std::vector<uint8_t>().swap(scratch_);
    if (r != SendResult::kOk) return r;
    ++counters_.messages_sent;
    s->last_activity = Clock::now();
    s->channels[channel] = true;  // opens it (again)
    return r;
  }

  size_t receive(uint32_t channel, std::vector<ChannelMessage>& out, size_t max) {
    std::lock_guard<std::mutex> lock(mutex_);
    pull_locked();
    auto it = inbox_.find(channel);
    if (it == inbox_.end()) return 0;
    std::deque<ChannelMessage>& q = it->second;
    size_t n = 0;
    while (n < max && !q.empty()) {
      unqueue_locked(q.front());
      out.push_back(std::move(q.front()));
      q.pop_front();
      ++n;
    }
    if (q.empty()) inbox_.erase(it);
    return n;
  }

  bool close_session(const PeerId& peer) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!find_session(peer)) return false;
    pull_locked();
    end_session_locked(peer, messages_end_reason::kClosed, "the peer closed the session");
    ++counters_.sessions_closed;
    return true;
  }

  bool close_channel(const PeerId& peer, uint32_t channel) {
    std::lock_guard<std::mutex> lock(mutex_);
    pull_locked();
    auto q = inbox_.find(channel);
    if (q != inbox_.end()) {
      std::deque<ChannelMessage> keep;
      for (ChannelMessage& m : q->second) {
        if (m.peer() == peer) {
          unqueue_locked(m);
          ++counters_.dropped_closed_channel;
        } else {
          keep.push_back(std::move(m));
        }
      }
      q->second.swap(keep);
      if (q->second.empty()) inbox_.erase(q);
    }
    Session* s = find_session(peer);
    if (!s) return false;
    s->channels[channel] = false;
    if (!s->any_open()) {
      end_session_locked(peer, messages_end_reason::kChannelsClosed, "the peer closed its last open channel");
      ++counters_.sessions_closed;
    }
    return true;
  }

  size_t run_callbacks() {
    if (running_thread_.load() == std::this_thread::get_id()) return 0;  // from inside a callback
    // The Host's events first, with no lock of ours held (a thread delivering Host callbacks may call
    // into us meanwhile).
    host_.run_callbacks();  // Messages' own events -> on_event
    // One thread at a time makes Messages' callbacks, in order; another one that gets here meanwhile
    // leaves them to it (and to the next call) instead of waiting for it.
    std::unique_lock<std::mutex> order(run_order_, std::try_to_lock);
    if (!order.owns_lock()) return 0;
    RunningScope running(running_thread_);
    std::vector<Notice> notices;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (shut_down_) return 0;
      pull_locked();
      close_idle_locked(Clock::now());
      notices.swap(notices_);
    }
    size_t made = 0;
    for (const Notice& n : notices) {
      if (n.kind == Notice::kFailed) {
        if (config_.on_session_failed) config_.on_session_failed(n.peer, n.reason, n.debug);
        ++made;
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!pending_.count(n.connection)) continue;  // taken by send_to(), or ended, meanwhile
        if (sessions_.count(n.peer)) {  // a session with that peer exists by now: no need to ask
          adopt_locked(n.peer, n.connection);
          continue;
        }
      }
      const bool accept = config_.on_session_request ? config_.on_session_request(n.peer) : true;
      ++made;
      std::lock_guard<std::mutex> lock(mutex_);
      auto p = pending_.find(n.connection);
      if (p == pending_.end()) continue;  // decided otherwise while the callback ran
      if (accept || sessions_.count(n.peer)) {
        adopt_locked(n.peer, n.connection);
      } else {
        pending_.erase(p);
        ignored_.insert(n.connection);
        ++counters_.requests_ignored;
      }
    }
    return made;
  }

  std::vector<PeerId> sessions() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<PeerId> out;
    out.reserve(sessions_.size());
    for (const auto& [peer, s] : sessions_)
      out.push_back(peer);
    std::sort(out.begin(), out.end());
    return out;
  }

  std::optional<SessionInfo> session_info(const PeerId& peer) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(peer);
    if (it == sessions_.end()) return std::nullopt;
    const Session& s = it->second;
    SessionInfo info;
    info.peer = peer;
    info.connection = s.connection;
    info.connected = s.connected;
    for (const auto& [channel, open] : s.channels)
      (open ? info.open_channels : info.closed_channels).push_back(channel);
    std::sort(info.open_channels.begin(), info.open_channels.end());
    std::sort(info.closed_channels.begin(), info.closed_channels.end());
    info.idle = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - s.last_activity);
    return info;
  }

  MessagesCounters counters() const {
    std::lock_guard<std::mutex> lock(mutex_);
    MessagesCounters c = counters_;
    c.sessions = sessions_.size();
    c.queued_messages = queued_messages_;
    return c;
  }

 private:
  Session* find_session(const PeerId& peer) {
    auto it = sessions_.find(peer);
    return it == sessions_.end() ? nullptr : &it->second;
  }

  void on_request_locked(const ConnectionInfo& info) {
    const ConnectionHandle c = info.handle;
    if (by_handle_.count(c)) {  // send_to()'s connect() took this request already (and accepted it)
      host_.accept(c);
      return;
    }
    if (sessions_.count(info.remote_peer)) {  // the peer dropped our common connection and asks again
      adopt_locked(info.remote_peer, c);
      return;
    }
    pending_[c] = info.remote_peer;
    Notice n;
    n.kind = Notice::kRequest;
    n.peer = info.remote_peer;
    n.connection = c;
    notices_.push_back(std::move(n));
  }

  void on_closed_locked(const ConnectionInfo& info) {
    const ConnectionHandle c = info.handle;
    if (pending_.erase(c) || ignored_.erase(c)) {  // a request that ended before it was accepted
      host_.close(c);
      return;
    }
    auto it = by_handle_.find(c);
    if (it == by_handle_.end()) return;  // not ours
    const PeerId peer = it->second;
    fail_session_locked(peer, info.end_reason, info.end_debug);
  }

  // Opens a session with peer for send_to(): a symmetric connect, which returns the connection already
  // being set up with that peer if there is one (also a pending request of it, which it then accepts).
  // When the Host refuses, on_session_failed says why.
  Session* open_locked(const PeerId& peer) {
    ConnectOptions o;
    o.symmetric = true;
    o.poll_group = group_;
    o.callback = event_callback();
    o.virtual_port = config_.virtual_port;
    for (int attempt = 0; attempt < 2; ++attempt) {
      Result<ConnectionHandle> connected = host_.connect(peer, o);
      if (!connected) {
        const uint32_t reason = connected.error().code == ErrorCode::kLimitExceeded
                                    ? uint32_t(EndReason::kLocalLimitExceeded)
                                    : uint32_t(EndReason::kMiscSignalingUnreachable);
        notice_failed_locked(peer, reason, "cannot open a session: " + connected.error().message);
        return nullptr;
      }
      const ConnectionHandle c = *connected;
      std::optional<ConnectionInfo> info = host_.connection_info(c);
      if (info && info->state == ConnectionState::kClosed && info->incoming && !by_handle_.count(c)) {
        // A request of that peer that ended, its kClosed event not yet delivered: release it, try again.
        // (Our own new connection may have failed at once too, the peer known unreachable: that one is
        // adopted, and its failure comes through run_callbacks() like any other.)
        pending_.erase(c);
        ignored_.erase(c);
        host_.close(c);
        continue;
      }
      return &adopt_locked(peer, c);
    }
    notice_failed_locked(peer, uint32_t(EndReason::kMiscGeneric),
                         "cannot open a session: the Host keeps returning a closed connection");
    return nullptr;
  }

  // Makes connection c the session with peer (accepting it if it is a request), replacing the session's
  // previous connection if it had another one.
  Session& adopt_locked(const PeerId& peer, ConnectionHandle c) {
    auto it = sessions_.find(peer);
    if (it != sessions_.end() && it->second.connection != c) {
      pull_locked();  // what arrived on the old connection stays readable
      end_session_locked(peer, messages_end_reason::kReplaced,
                         "replaced by a newer connection with the same peer");
      ++counters_.sessions_closed;
      it = sessions_.end();
    }
    pending_.erase(c);
    ignored_.erase(c);
    host_.accept(c);  // false if connect() accepted it already, or it is our own request
    host_.set_poll_group(c, group_);
    if (it != sessions_.end()) return it->second;
    Session& s = sessions_[peer];
    s.peer = std::make_shared<const PeerId>(peer);
    s.connection = c;
    std::optional<ConnectionInfo> info = host_.connection_info(c);
    s.connected = info && info->state == ConnectionState::kConnected;
    s.last_activity = Clock::now();
    by_handle_[c] = peer;
    ++counters_.sessions_opened;
    return s;
  }

  // Closes the session's connection (releasing its handle) and forgets the session.
  void end_session_locked(const PeerId& peer, uint32_t reason, const std::string& debug) {
    auto it = sessions_.find(peer);
    if (it == sessions_.end()) return;
    const ConnectionHandle c = it->second.connection;
    by_handle_.erase(c);
    sessions_.erase(it);
    // Lingering: reliable messages already sent still reach the peer (bounded by the Host's linger_timeout).
    host_.close(c, CloseMode::kAfterDelivery, reason, debug);
  }

  // The session's connection ended on its own: keep what arrived, end it, tell the application.
  void fail_session_locked(const PeerId& peer, uint32_t reason, const std::string& debug) {
    pull_locked();
    end_session_locked(peer, reason, debug);
    notice_failed_locked(peer, reason, debug);
  }

  // on_session_failed, in run_callbacks().
  void notice_failed_locked(const PeerId& peer, uint32_t reason, const std::string& debug) {
    ++counters_.sessions_failed;
    Notice n;
    n.kind = Notice::kFailed;
    n.peer = peer;
    n.reason = reason;
    n.debug = debug;
    notices_.push_back(std::move(n));
  }

  void close_idle_locked(Clock::time_point now) {
    if (config_.idle_timeout.count() == 0) return;
    std::vector<PeerId> idle;
    for (const auto& [peer, s] : sessions_)
      if (s.connected && now - s.last_activity >= config_.idle_timeout) idle.push_back(peer);
    for (const PeerId& peer : idle) {
      end_session_locked(peer, messages_end_reason::kIdle,
                         "idle for " + std::to_string(config_.idle_timeout.count()) + " ms");
      ++counters_.sessions_idle_closed;
    }
  }

  // Takes what arrived from the Host and queues it per channel, while the queues are below their limit.
  void pull_locked() {
    const Clock::time_point now = Clock::now();
    while (queued_bytes_ < config_.max_queued_bytes) {
      batch_.clear();
      const size_t n = host_.receive_on_poll_group(group_, batch_, kReceiveBatch);
      for (Message& m : batch_)
        deliver_locked(m, now);
      batch_.clear();
      if (n < kReceiveBatch) break;
    }
  }

  void deliver_locked(Message& m, Clock::time_point now) {
    auto h = by_handle_.find(m.connection());
    if (h == by_handle_.end()) return;  // no longer a session's (cannot happen: released handles lose theirs)
    Session& s = sessions_.at(h->second);
    uint32_t channel = 0;
    const size_t header_size = decode_channel_header(m.data(), m.size(), channel);
    if (header_size == 0) {
      ++counters_.invalid_messages;
      return;
    }
    s.last_activity = now;
    auto ch = s.channels.find(channel);
    if (ch == s.channels.end()) {
      if (s.channels.size() >= config_.max_channels_per_session) {
        ++counters_.dropped_channel_limit;
        return;
      }
      ch = s.channels.emplace(channel, true).first;
    }
    if (!ch->second) {
      ++counters_.dropped_closed_channel;
      return;
    }
    queued_bytes_ += m.size() - header_size + kQueuedOverhead;
    ++queued_messages_;
    ++counters_.messages_received;
    inbox_[channel].emplace_back(s.peer, channel, m.reliable(), m.connection(), m.take_data(), header_size);
  }

  // Accounts for a message leaving the queues.
  void unqueue_locked(const ChannelMessage& m) {
    queued_bytes_ -= std::min(queued_bytes_, m.size() + kQueuedOverhead);
    --queued_messages_;
  }

  Host& host_;
  const MessagesConfig config_;
  PollGroupHandle group_ = kDefaultPollGroup;
  ListenSocketHandle listener_ = kInvalidListenSocket;

  mutable std::mutex mutex_;
  bool shut_down_ = false;
  std::unordered_map<PeerId, Session> sessions_;
  std::unordered_map<ConnectionHandle, PeerId> by_handle_;
  std::unordered_map<ConnectionHandle, PeerId> pending_;
  std::unordered_set<ConnectionHandle> ignored_;
  std::unordered_map<uint32_t, std::deque<ChannelMessage>> inbox_;
  size_t queued_bytes_ = 0, queued_messages_ = 0;
  std::vector<Notice> notices_;
  MessagesCounters counters_;
  std::vector<uint8_t> scratch_;  // send_to()'s header + payload
  std::vector<Message> batch_;    // pull_locked()'s

  std::mutex run_order_;  // held by the thread making Messages' callbacks
  std::atomic<std::thread::id> running_thread_{};
};

// --- Messages ---

Messages::Messages(Host& host, MessagesConfig config) {
  auto invalid = [](const char* what) { return Exception(Error{ErrorCode::kInvalidConfig, what}); };
  if (config.idle_timeout.count() < 0) throw invalid("Messages: idle_timeout is negative");
  if (config.max_queued_bytes == 0) throw invalid("Messages: max_queued_bytes is 0");
  if (config.max_channels_per_session == 0) throw invalid("Messages: max_channels_per_session is 0");
  impl_ = std::make_shared<Impl>(host, std::move(config));
  impl_->start();
}

Result<std::unique_ptr<Messages>> Messages::create(Host& host, MessagesConfig config) {
  try {
    return std::make_unique<Messages>(host, std::move(config));
  } catch (const Exception& e) {
    return e.error();
  }
}

Messages::~Messages() {
  impl_->shut_down();
}

SendResult Messages::send_to(const PeerId& peer, uint32_t channel, const void* data, size_t size,
                             uint32_t flags) {
  return impl_->send_to(peer, channel, data, size, flags);
}

size_t Messages::receive(uint32_t channel, std::vector<ChannelMessage>& out, size_t max) {
  return impl_->receive(channel, out, max);
}

bool Messages::close_session(const PeerId& peer) {
  return impl_->close_session(peer);
}

bool Messages::close_channel(const PeerId& peer, uint32_t channel) {
  return impl_->close_channel(peer, channel);
}

size_t Messages::run_callbacks() {
  return impl_->run_callbacks();
}

std::vector<PeerId> Messages::sessions() const {
  return impl_->sessions();
}

std::optional<SessionInfo> Messages::session_info(const PeerId& peer) const {
  return impl_->session_info(peer);
}

MessagesCounters Messages::counters() const {
  return impl_->counters();
}

}  // namespace peerlink
