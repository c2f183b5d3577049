// Messages: connectionless, channel-addressed messaging between peers, on top of a Host (in the spirit of
// GameNetworkingSockets' ISteamNetworkingMessages). The application names a peer and a channel; sessions
// (one peer-to-peer connection per peer) are opened on demand, accepted or ignored, and closed when idle.
// docs/MESSAGES.md is the manual: sessions, channels, the wire format, costs.
//
//   peerlink::HostConfig hc;
//   hc.signaling.push_back(my_plugin);                     // Messages works with peer-to-peer connections
//   peerlink::Host host(hc);
//   peerlink::MessagesConfig mc;
//   mc.on_session_request = [](const peerlink::PeerId& p) { return is_friend(p); };
//   mc.on_session_failed = [](const peerlink::PeerId& p, uint32_t reason, const std::string& debug) {
//     std::cerr << p.str() << ": " << reason << " " << debug << "\n";
//   };
//   peerlink::Messages messages(host, mc);
//   messages.send_to(*peerlink::PeerId::parse("xmpp:bob@example.org"), 1, "hi", 2);
//   std::vector<peerlink::ChannelMessage> in;
//   for (;;) {
//     host.wait(std::chrono::milliseconds(10));
//     messages.run_callbacks();                           // events, callbacks, idle timeouts
//     messages.receive(1, in);
//     for (auto& m : in) std::cout << m.peer().str() << ": " << m.text() << "\n";
//     in.clear();
//   }
//
// Sharing the Host: Messages uses a peer-to-peer virtual port of its own (MessagesConfig::virtual_port),
// a poll group of its own and a callback of its own on its connections, so the application keeps the rest
// of the Host: its own listen_p2p() on other virtual ports, its own connections, its connection callback,
// service(), and receive_on_poll_group() of other groups. What it must not do: touch Messages' connections
// (close them, receive from them, move them to another group; reading connection_info() or status() of
// SessionInfo::connection is fine), listen_p2p() on Messages' virtual port, or set a message callback
// (Host::set_message_callback takes every message, Messages' too). Messages::run_callbacks() runs
// Host::run_callbacks(), which also delivers the application's own queued Host events to their callbacks.
// The Messages object must be destroyed before its Host.
//
// Thread-safety: every method may be called from any thread, concurrently. The application's callbacks
// run only inside run_callbacks(), on the thread that calls it, with no Messages lock held: they may call
// any method of the Messages object or the Host (but must not destroy either, and must not throw).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "peerlink/connection.hpp"
#include "peerlink/end_reason.hpp"
#include "peerlink/error.hpp"
#include "peerlink/host.hpp"
#include "peerlink/peer_id.hpp"

namespace peerlink {

// The application end reasons (EndReason's 1000–1999 range) Messages closes connections with; the peer's
// on_session_failed receives them.
namespace messages_end_reason {
inline constexpr uint32_t kClosed = uint32_t(EndReason::kAppGeneric);  // close_session() or the destructor
inline constexpr uint32_t kIdle = 1001;                                // idle_timeout passed
inline constexpr uint32_t kChannelsClosed = 1002;  // close_channel() closed the last open channel
inline constexpr uint32_t kReplaced = 1003;        // a newer connection with the same peer took its place
}  // namespace messages_end_reason

// A received message: who sent it, on which channel, and its payload (the header is not part of it).
// A plain movable value; it may be handed to and used on any thread.
class ChannelMessage {
 public:
  ChannelMessage() = default;
  // buffer holds a header of payload_offset bytes followed by the payload (docs/MESSAGES.md, "Wire format").
  ChannelMessage(std::shared_ptr<const PeerId> peer, uint32_t channel, bool reliable,
                 ConnectionHandle connection, std::vector<uint8_t> buffer, size_t payload_offset);
  ChannelMessage(ChannelMessage&&) noexcept = default;
  ChannelMessage& operator=(ChannelMessage&&) noexcept = default;
  ChannelMessage(const ChannelMessage&) = delete;
  ChannelMessage& operator=(const ChannelMessage&) = delete;

  // The sender (shared by all messages of a session: no copy per message). An empty PeerId if default-made.
  const PeerId& peer() const;
  uint32_t channel() const { return channel_; }
  bool reliable() const { return reliable_; }
  // The session's Host connection when it arrived (for Host::status and the like; may be closed by now).
  ConnectionHandle connection() const { return connection_; }

  const uint8_t* data() const { return buffer_.data() + offset_; }
  size_t size() const { return buffer_.size() - offset_; }
  bool empty() const { return size() == 0; }
  std::string_view text() const { return {reinterpret_cast<const char*>(data()), size()}; }
  // The payload as a vector of its own. Moves the payload to the front of the received buffer (a memmove of
  // size() bytes, no allocation); the message is empty afterwards.
  std::vector<uint8_t> take_data();

 private:
  std::shared_ptr<const PeerId> peer_;
  std::vector<uint8_t> buffer_;
  size_t offset_ = 0;
  ConnectionHandle connection_ = kInvalidConnection;
  uint32_t channel_ = 0;
  bool reliable_ = false;
};

// The peer-to-peer virtual port Messages listens and connects on unless told otherwise.
inline constexpr uint16_t kMessagesVirtualPort = 0xFFFF;

struct MessagesConfig {
  // Both peers must use the same one. The application must not listen_p2p() on it itself.
  uint16_t virtual_port = kMessagesVirtualPort;
  // A connected session with no message sent or received for this long is closed. 0: never.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(3)};

  // A peer asks for a session: true accepts, false ignores the request (the peer fails after its connect
  // timeout). Unset: every request is accepted. Runs inside run_callbacks().
  std::function<bool(const PeerId& peer)> on_session_request;
  // A session failed to connect or was ended by the peer or the network; end_reason is the Host's
  // (EndReason, or an application code such as a messages_end_reason from the peer) and debug its text.
  // Also when send_to() could not open a session at all (no plugin for the scheme, this Host's own id,
  // the Host's connection limit): end_reason kMiscSignalingUnreachable or kLocalLimitExceeded, debug the
  // Host's error. Not called for sessions this side closed. Runs inside run_callbacks().
  std::function<void(const PeerId& peer, uint32_t end_reason, const std::string& debug)> on_session_failed;

  // Received messages waiting for receive(), all channels, in bytes (payload plus a fixed per-message
  // overhead). Beyond it, messages are left in the Host until the application receives some.
  size_t max_queued_bytes = size_t(64) << 20;
  // Channels tracked per session (open or closed); messages on further new channels are dropped.
  size_t max_channels_per_session = 4096;
};

struct MessagesCounters {
  uint64_t messages_sent = 0;           // accepted by send_to() (kOk)
  uint64_t messages_received = 0;       // queued for receive()
  uint64_t dropped_closed_channel = 0;  // on a channel closed with close_channel(): queued or arriving
  uint64_t invalid_messages = 0;        // without a valid channel header: dropped
  uint64_t dropped_channel_limit = 0;   // on a new channel beyond max_channels_per_session: dropped
  uint64_t sessions_opened = 0;         // started by send_to() or an accepted request
  uint64_t sessions_failed = 0;         // on_session_failed calls (failed to connect, ended by peer/network)
  uint64_t sessions_idle_closed = 0;    // closed by this side's idle timeout
  uint64_t sessions_closed = 0;         // closed by close_session(), close_channel() or a replacing request
  uint64_t requests_ignored = 0;        // requests on_session_request returned false for
  size_t sessions = 0;                  // sessions now (connecting or connected)
  size_t queued_messages = 0;           // now waiting for receive(), all channels
};

// One session, as of the call.
struct SessionInfo {
  PeerId peer;
  ConnectionHandle connection = kInvalidConnection;      // its Host connection
  bool connected = false;                                // false while it is being set up
  std::vector<uint32_t> open_channels, closed_channels;  // ascending
  std::chrono::milliseconds idle{0};                     // since the last message sent or received
};

class Messages {
 public:
  // Listens for peer-to-peer requests on config.virtual_port of the Host (see "Sharing the Host").
  // Throws peerlink::Exception: kInvalidConfig (negative idle_timeout, zero limits), or the Host's
  // listen_p2p() error (kNoSignaling: no plugin; kAlreadyExists: that virtual port is taken).
  explicit Messages(Host& host, MessagesConfig config = {});
  // The same, with the failure as a Result.
  static Result<std::unique_ptr<Messages>> create(Host& host, MessagesConfig config = {});
  // Closes every session (reason messages_end_reason::kClosed, lingering) and stops listening.
  ~Messages();
  Messages(const Messages&) = delete;
  Messages& operator=(const Messages&) = delete;

  // Sends a message (data must point to size readable bytes) to peer on channel, opening a session if there
  // is none. flags are send_flags (reliable by default; unreliable messages may be lost or arrive out of
  // order with respect to reliable ones). The limits are the Host's minus the header (1–6 bytes):
  // HostConfig::max_message_size reliable, 64 KiB unreliable. Returns kOk when the message was taken (also
  // while the session connects: if it then fails, the message is lost and on_session_failed says so);
  // kNoConnection when no session can be opened (an empty peer; otherwise on_session_failed says why);
  // otherwise the Host's result (kLimitExceeded, kMessageTooLarge, kInvalidFlags, ...). A session whose
  // connection ended but whose end run_callbacks() has not yet seen is ended at once (on_session_failed
  // follows in run_callbacks()) and a new one is opened.
  SendResult send_to(const PeerId& peer, uint32_t channel, const void* data, size_t size,
                     uint32_t flags = send_flags::kReliable);

  // Appends up to max messages received on channel (from any peer) to out, oldest first; returns how many.
  // Takes from the Host whatever arrived first, so it works without run_callbacks() too (but sessions are
  // only accepted, and idle ones closed, by run_callbacks()).
  size_t receive(uint32_t channel, std::vector<ChannelMessage>& out, size_t max = SIZE_MAX);

  // Closes the session with peer (reason messages_end_reason::kClosed) after delivering the reliable
  // messages already sent; a later send_to() opens a new session. Messages from peer already received stay
  // readable. False if there is no session.
  bool close_session(const PeerId& peer);
  // Closes channel with peer: drops that peer's queued messages on it and every later one until send_to()
  // opens it again; closes the session when no channel of it is open any more. Returns false if there is
  // no session with peer (its queued messages on that channel are dropped all the same).
  bool close_channel(const PeerId& peer, uint32_t channel);

  // Runs Host::run_callbacks() (delivering the Host's events, Messages' and the application's), takes
  // arrived messages from the Host, closes idle sessions, then calls on_session_request / on_session_failed
  // for what happened, on this thread, in order. Call it regularly (e.g. every frame, or after
  // Host::wait()). Returns how many application callbacks (and default decisions, when
  // on_session_request is unset) it made. One thread at a time makes them: a call while another thread
  // is making them returns 0 after the Host's part.
  size_t run_callbacks();

  std::vector<PeerId> sessions() const;
  std::optional<SessionInfo> session_info(const PeerId& peer) const;
  MessagesCounters counters() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;  // its connections' callback keeps a weak_ptr to it
};

}  // namespace peerlink
