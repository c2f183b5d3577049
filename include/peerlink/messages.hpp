// Messages: connectionless, channel-addressed messaging between peers, on top of a Host (in the spirit of
// GameNetworkingSockets' ISteamNetworkingMessages). The application names a peer and a channel; sessions
// (one Host connection per peer) are opened on demand, accepted or ignored, and closed when idle.
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
// --- Taking over the Host ---
// A Messages object owns the Host's peer-to-peer side while it exists:
//   - its constructor replaces the Host's connection callback (Host::set_connection_callback) and calls
//     Host::listen_p2p() with auto_accept off, so every request arrives as a kIncomingRequest event. The
//     application must not set its own connection callback on that Host, call listen_p2p() on it, or set a
//     message callback (Host::set_message_callback) while the Messages object exists; events for
//     connections Messages did not make or accept are ignored.
//   - its connections live in a poll group of their own: the application must not receive from them, close
//     them or move them to another group. It may read them (Host::connection_info, Host::status; see
//     SessionInfo::connection) for diagnostics.
//   - it works with either HostConfig::callback_thread: Host events only update Messages' state; the
//     application's callbacks (below) always run inside Messages::run_callbacks().
// The Messages object must be destroyed before its Host. Its destructor closes every session (reason
// messages_end_reason::kClosed), stops listening and gives the Host's connection callback back (empty).
//
// --- Sessions ---
// A session is one Host connection with one peer, made with ConnectOptions::symmetric: when both sides
// send_to() each other at the same moment exactly one connection results and both sides use it.
//   - send_to() opens a session if there is none. Messages sent while it connects are kept by the Host and
//     leave when it is connected; send_to() returns kOk for them (accepted, not yet delivered: if the session
//     then fails they are lost, and on_session_failed says so).
//   - A request from a peer with whom there is no session goes to MessagesConfig::on_session_request (inside
//     run_callbacks()). true accepts it; false ignores it: the peer's session fails after its connect timeout
//     (EndReason::kMiscConnectTimeout), and the request's handle is released when the Host drops it. Unset:
//     every request is accepted. A request is accepted without asking if the application meanwhile called
//     send_to() for that peer (a send is consent, as in GameNetworkingSockets).
//   - A request from a peer with whom there already is a session replaces that session's connection at once
//     (the peer only asks again after it closed the old one): what already arrived on the old connection
//     stays readable; the old connection is closed with messages_end_reason::kReplaced.
//   - A session ends:
//       * closed by this side: close_session(), close_channel() closing the last open channel, the idle
//         timeout, or the destructor. No callback; the peer sees the matching messages_end_reason code.
//         The close lingers: reliable messages already sent are still delivered first (bounded by
//         HostConfig::linger_timeout; the Host's destructor waits for them), then the peer sees the close.
//       * failed: it could not connect (kRemoteRejected, kMiscConnectTimeout, kMiscSignalingUnreachable,
//         kMiscNoRoute, ...) or it ended by the peer or the network (kRemoteTimeout, or one of the peer's
//         messages_end_reason codes when its application or idle timer closed it). on_session_failed gets the
//         Host's end reason and debug text. Messages that arrived before the end stay readable.
//     A later send_to() (or a request from the peer) opens a new session, with every channel reset.
//   - Idle: a connected session in which no message was sent or received (with a valid header) for
//     MessagesConfig::idle_timeout is closed by run_callbacks() (reason messages_end_reason::kIdle). The
//     clock starts when the session is connected; the Host's connect_timeout bounds the setup before that.
//     Only messages Messages has taken from the Host count: ones left in the Host because the queues are
//     full (max_queued_bytes) do not, and are freed with the connection.
//
// --- Channels ---
// A channel is a uint32_t the sender picks; each message carries it. Per session, a channel is:
//   - unused, until the first send_to() on it or the first message from the peer that arrives on it; both
//     make it open;
//   - open: arriving messages are queued for receive(channel);
//   - closed, after close_channel(peer, channel): messages of that peer on that channel which are queued and
//     not yet received, and those that arrive later, are dropped (MessagesCounters::dropped_closed_channel).
//     Only a send_to() on that channel opens it again (arriving messages do not). When close_channel()
//     leaves the session with no open channel (it may have had none), the session is closed
//     (messages_end_reason::kChannelsClosed).
// Channels share the session's one reliable stream: messages of every channel (of one peer) arrive in the
// order they were sent, so a large message on one channel delays the others. At most
// MessagesConfig::max_channels_per_session channels per session are tracked; messages on further new
// channels are dropped (dropped_channel_limit).
//
// --- Wire format of a message (version 1) ---
//   byte 0      0xC1: message of the Messages API, header version 1. Other values are reserved.
//   bytes 1..n  the channel, unsigned LEB128 (7 bits per byte, least significant group first, high bit =
//               more follows): 1 byte for channels 0-127, at most 5. It must be minimal (no trailing 0x80
//               0x00 bytes) and fit 32 bits.
//   the rest    the application's payload, possibly empty.
// A message without such a header (empty, another first byte, a truncated, overlong or too large channel)
// is dropped and counted (MessagesCounters::invalid_messages); the session goes on.
//
// --- Costs ---
// Sending copies the payload once (behind the header) before the Host copies it into its send buffer: the
// Host has no gather send. Receiving copies nothing: a ChannelMessage keeps the Host's buffer and points past
// the header; only ChannelMessage::take_data() moves the payload to the buffer's front (a memmove of the
// payload, no allocation). Messages are taken from the Host eagerly (receive() of any channel and
// run_callbacks() take everything that arrived) and queued per channel, up to
// MessagesConfig::max_queued_bytes; beyond that they wait in the Host, whose flow control then slows the
// peers down.
//
// --- Thread-safety ---
// Every method may be called from any thread, concurrently: an internal mutex serialises them, and none
// waits for the network. The destructor must not race with other calls. The application's callbacks run
// only inside run_callbacks(), on the thread that calls it, with no Messages lock held: they may call any
// method of the Messages object or the Host (but must not destroy either, and must not throw). A
// run_callbacks() called from inside one of those callbacks returns 0 at once; concurrent run_callbacks()
// calls from several threads take turns.
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
#include "peerlink/host.hpp"
#include "peerlink/signaling.hpp"

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
  // buffer holds a header of payload_offset bytes followed by the payload (see "Wire format" above).
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

struct MessagesConfig {
  // A connected session with no message sent or received for this long is closed. 0: never.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(3)};

  // A peer asks for a session: true accepts, false ignores the request (the peer fails after its connect
  // timeout). Unset: every request is accepted. Runs inside run_callbacks().
  std::function<bool(const PeerId& peer)> on_session_request;
  // A session failed to connect or was ended by the peer or the network; end_reason is the Host's
  // (EndReason, or an application code such as a messages_end_reason from the peer) and debug its text.
  // Not called for sessions this side closed. Runs inside run_callbacks().
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
  // Takes over the Host's peer-to-peer side (see above). Throws std::invalid_argument if the Host cannot
  // listen for peer-to-peer requests (no signaling plugin, or already listening) or the config is invalid
  // (negative idle_timeout, zero limits).
  explicit Messages(Host& host, MessagesConfig config = {});
  ~Messages();
  Messages(const Messages&) = delete;
  Messages& operator=(const Messages&) = delete;

  // Sends a message (data must point to size readable bytes) to peer on channel, opening a session if there
  // is none (see "Sessions"). flags are
  // send_flags (kReliable by default; unreliable messages may be lost or arrive out of order with respect
  // to reliable ones). The limits are the Host's minus the header (1–6 bytes): HostConfig::max_message_size
  // reliable, 64 KiB unreliable. Returns kOk when the message was taken (also while connecting);
  // kNoConnection when no session can be opened: an empty peer, a scheme no signaling plugin serves, or the
  // Host's connection limit (error, if given, says which); otherwise the Host's result (kLimitExceeded,
  // kMessageTooLarge, ...), with error saying so. A session whose connection ended but whose end
  // run_callbacks() has not yet seen is ended at once (on_session_failed follows in run_callbacks()) and a
  // new one is opened.
  SendResult send_to(const PeerId& peer, uint32_t channel, const void* data, size_t size,
                     uint32_t flags = send_flags::kReliable, std::string* error = nullptr);

  // Appends up to max messages received on channel (from any peer) to out, oldest first; returns how many.
  // Takes from the Host whatever arrived first, so it works without run_callbacks() too (but sessions are
  // only accepted, and idle ones closed, by run_callbacks()).
  size_t receive(uint32_t channel, std::vector<ChannelMessage>& out, size_t max = SIZE_MAX);

  // Closes the session with peer (reason messages_end_reason::kClosed) after delivering the reliable
  // messages already sent (lingering, see "Sessions"); a later send_to() opens a new session. Messages from
  // peer already received stay readable. False if there is no session.
  bool close_session(const PeerId& peer);
  // Closes channel with peer (see "Channels"): drops that peer's queued messages on it and every later one
  // until send_to() opens it again; closes the session when no channel of it is open any more. Returns false
  // if there is no session with peer (its queued messages on that channel are dropped all the same).
  bool close_channel(const PeerId& peer, uint32_t channel);

  // Runs Host::run_callbacks() (delivering the Host's events to Messages), takes arrived messages from the
  // Host, closes idle sessions, then calls on_session_request / on_session_failed for what happened, on
  // this thread, in order. Call it regularly (e.g. every frame, or after Host::wait()). Returns how many
  // application callbacks (and default decisions, when on_session_request is unset) it made.
  size_t run_callbacks();

  std::vector<PeerId> sessions() const;
  std::optional<SessionInfo> session_info(const PeerId& peer) const;
  MessagesCounters counters() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;  // shared with the Host's connection callback, which may outlive a call
};

}  // namespace peerlink
