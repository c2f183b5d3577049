#include "session.hpp"

#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <sstream>

#include "text.hpp"

namespace peerlink::app {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<int> g_signal{0};
extern "C" void on_signal(int signal) {
  g_signal = signal;
}

// Text from a peer made harmless on a terminal: control characters (escape sequences) become '?'.
std::string printable(const std::string& text) {
  std::string out = text;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

std::string route_word(const ConnectionInfo& info) {
  return info.relayed ? "relay" : "direct";
}

// The JSON fields of a finished transfer, after the event's own ("name", "path", ... "seconds").
std::string file_fields(const ConversationEvent& e) {
  return ",\"name\":" + json_string(e.name) + ",\"path\":" + json_string(e.path) +
         ",\"size\":" + std::to_string(e.size) + ",\"sha256\":\"" + e.sha256 +
         "\",\"resumed_from\":" + std::to_string(e.resumed_from) +
         ",\"seconds\":" + std::to_string(e.seconds);
}

// "4.0 MB in 0.021 s, 183.5 MB/s" (the rate of what this attempt moved).
std::string transfer_summary(const ConversationEvent& e) {
  const double rate = e.seconds > 0 ? double(e.size - e.resumed_from) / e.seconds : 0;
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f", e.seconds);
  return human_bytes(double(e.size)) + " in " + seconds + " s, " + human_bytes(rate) + "/s";
}

std::string end_text(const ConnectionInfo& info) {
  std::string text = to_string(EndReason(info.end_reason));
  if (!info.end_debug.empty()) text += ": " + info.end_debug;
  return text;
}

}  // namespace

void LineQueue::push(std::string line) {
  std::lock_guard<std::mutex> lock(mutex_);
  lines_.push_back(std::move(line));
}
void LineQueue::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
}
bool LineQueue::pop(std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (lines_.empty()) return false;
  line = std::move(lines_.front());
  lines_.pop_front();
  return true;
}
bool LineQueue::ended() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return closed_ && lines_.empty();
}

StdinReader::StdinReader(LineQueue& queue) : queue_(queue) {
  thread_ = std::thread([this] {
    std::string partial;
    char buf[4096];
    while (!stop_) {
      pollfd p{STDIN_FILENO, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      partial.append(buf, size_t(n));
      for (size_t nl; (nl = partial.find('\n')) != std::string::npos;) {
        std::string line = partial.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        queue_.push(std::move(line));
        partial.erase(0, nl + 1);
      }
    }
    if (!partial.empty()) queue_.push(partial);
    queue_.close();
  });
}

StdinReader::~StdinReader() {
  stop_ = true;
  thread_.join();
}

const char kSessionCommands[] =
    "input lines (a line not starting with '/' is a message; '//' sends a line starting with '/'):\n"
    "  /connect PEER     connect to a peer: a JID (user@domain), or on the LAN a name or a lan: id\n"
    "  /accept [N]       accept the oldest (or the N-th) request to connect; /reject [N] refuses it\n"
    "  /file PATH        send a file (SHA-256 checked; an interrupted one resumes when sent again)\n"
    "  /to N             write to connection N from now on (/stats numbers them)\n"
    "  /peers            the peers one can connect to now\n"
    "  /stats            each connection's route, round-trip time, loss and rates\n"
    "  /quit             leave now (the end of input leaves once everything was delivered)\n"
    "  /help             this list\n";

namespace {

class Session {
 public:
  Session(Endpoint& endpoint, const SessionOptions& options, LineQueue& input)
      : ep_(endpoint), host_(*endpoint.host), options_(options), input_(input) {
    progress_on_ = options.progress && !options.json && isatty(STDERR_FILENO);
  }
  int run();

 private:
  struct Peer {
    int number = 0;
    PeerId peer;
    std::string label;  // for people
    std::unique_ptr<Conversation> conversation;
    bool outgoing = false, connected = false, closed = false, bye_sent = false, failed = false;
  };
  struct PendingConnect {
    std::string text;
    Clock::time_point deadline;
  };

  void emit(const std::string& json, const std::string& human, bool to_stderr = false);
  void error(const std::string& text);
  void note(const std::string& text);  // for people only
  void clear_progress();
  void show_progress();

  void poll_signaling();
  void on_host_event(HostEvent& event);
  void on_request(const ConnectionInfo& info);
  void on_connected(Peer& peer, const ConnectionInfo& info);
  void on_closed(Peer& peer, const ConnectionInfo& info);
  void report(Peer& peer, std::vector<ConversationEvent>& events);
  void start_connect(const std::string& text, bool from_command);
  void try_pending_connects();
  bool handle_line(const std::string& line);  // false: /quit
  void command(const std::string& name, const std::string& arg);
  Peer* current();
  Peer& add_peer(ConnectionHandle handle, const PeerId& peer, bool outgoing);
  void flush_held();
  void answer_request(const std::string& arg, bool accept);
  void show_stats();
  bool finished() const;

  Endpoint& ep_;
  Host& host_;
  const SessionOptions& options_;
  LineQueue& input_;
  std::map<ConnectionHandle, Peer> peers_;
  std::vector<ConnectionHandle> requests_;  // awaiting /accept or /reject
  std::vector<PendingConnect> pending_;
  std::deque<std::string> held_;  // lines waiting for a connection
  ConnectionHandle current_ = kInvalidConnection;
  int next_number_ = 1;
  bool ever_peer_ = false, failed_ = false, quit_ = false;
  bool connect_failed_ = false;  // a connect of ours could not be made (or started)
  XmppState xmpp_state_ = XmppState::kIdle;
  bool progress_on_ = false, progress_shown_ = false;
  Clock::time_point next_progress_{};
};

void Session::clear_progress() {
  if (!progress_shown_) return;
  std::fputs("\r\033[K", stderr);
  progress_shown_ = false;
}

void Session::emit(const std::string& json, const std::string& human, bool to_stderr) {
  if (options_.json) {
    std::fputs(("{" + json + "}\n").c_str(), stdout);
    std::fflush(stdout);
    return;
  }
  clear_progress();
  std::FILE* out = to_stderr ? stderr : stdout;
  std::fputs((human + "\n").c_str(), out);
  std::fflush(out);
}

void Session::error(const std::string& text) {
  failed_ = true;
  emit("\"event\":\"error\",\"text\":" + json_string(text), options_.program + ": " + text, true);
}

void Session::note(const std::string& text) {
  if (!options_.json) emit("", "* " + text);
}

void Session::show_progress() {
  if (!progress_on_ || Clock::now() < next_progress_) return;
  next_progress_ = Clock::now() + std::chrono::milliseconds(250);
  std::string line;
  for (const auto& [handle, peer] : peers_) {
    if (!peer.conversation || peer.closed) continue;
    for (const TransferProgress& p : peer.conversation->progress()) {
      line = (p.incoming ? "<- " : "-> ") + printable(p.name) + " " +
             progress_line(p.done, p.total, p.bytes_per_second);
      break;
    }
    if (!line.empty()) break;
  }
  if (line.empty()) return clear_progress();
  std::fputs(("\r\033[K" + line).c_str(), stderr);
  std::fflush(stderr);
  progress_shown_ = true;
}

Session::Peer& Session::add_peer(ConnectionHandle handle, const PeerId& peer, bool outgoing) {
  Peer& p = peers_[handle];
  p.number = next_number_++;
  p.peer = peer;
  p.label = std::string(peer.scheme() == "xmpp" ? peer.name() : peer.str());
  if (ep_.lan && peer.scheme() == "lan")
    if (std::optional<LanPeer> seen = ep_.lan->peer(peer))
      p.label = seen->display_name + " (" + peer.str() + ")";
  p.outgoing = outgoing;
  p.conversation = std::make_unique<Conversation>(host_, handle, options_.conversation);
  current_ = handle;
  ever_peer_ = true;
  return p;
}

void Session::flush_held() {
  // Lines typed before there was anyone to send them to go to the first connection.
  while (!held_.empty() && current()) {
    std::string line = std::move(held_.front());
    held_.pop_front();
    handle_line(line);
  }
}

Session::Peer* Session::current() {
  auto it = peers_.find(current_);
  if (it != peers_.end() && !it->second.closed) return &it->second;
  for (auto& [handle, peer] : peers_)
    if (!peer.closed) {
      current_ = handle;
      return &peer;
    }
  return nullptr;
}

void Session::start_connect(const std::string& text, bool from_command) {
  std::string why;
  const PeerId id = ep_.resolve(text, why);
  if (id.empty()) {
    // A LAN peer may not have been heard yet: wait for it (as for an XMPP contact's presence).
    if (ep_.lan && !from_command && why.find("no peer called") != std::string::npos) {
      pending_.push_back({text, Clock::now() + options_.connect_wait});
      return;
    }
    connect_failed_ = true;
    return error("cannot connect to '" + text + "': " + why);
  }
  if (!from_command && !ep_.reachable_now(id)) {
    pending_.push_back({text, Clock::now() + options_.connect_wait});
    return;
  }
  ConnectOptions co;
  co.expected_key = ep_.known.find(pin_name(id));
  Result<ConnectionHandle> handle = host_.connect(id, co);
  if (!handle) {
    connect_failed_ = true;
    return error("cannot connect to " + id.str() + ": " + handle.error().message);
  }
  Peer& p = add_peer(*handle, id, true);
  emit("\"event\":\"connecting\",\"peer\":" + json_string(id.str()),
       "* connecting to " + p.label + (co.expected_key ? " (its pinned key)" : " (first contact)") + " ...");
  flush_held();
}

void Session::try_pending_connects() {
  for (size_t i = 0; i < pending_.size();) {
    const PendingConnect& pc = pending_[i];
    std::string why;
    const PeerId id = ep_.resolve(pc.text, why);
    const bool ready = !id.empty() && ep_.reachable_now(id);
    const bool expired = Clock::now() >= pc.deadline;
    if (!ready && !expired) {
      ++i;
      continue;
    }
    const std::string text = pc.text;
    pending_.erase(pending_.begin() + long(i));
    // Past the deadline, connect anyway: the Host's answer says why it cannot be reached.
    start_connect(text, true);
  }
}

void Session::poll_signaling() {
  if (ep_.xmpp) {
    const XmppStatus st = ep_.xmpp->status();
    if (st.state != xmpp_state_) {
      xmpp_state_ = st.state;
      if (st.state == XmppState::kOnline) {
        emit("\"event\":\"online\",\"peer\":" + json_string("xmpp:" + st.jid) +
                 ",\"fingerprint\":" + json_string(ep_.identity.fingerprint()),
             "* online as " + st.jid + " (key " + ep_.identity.fingerprint() + ")");
      } else if (st.state == XmppState::kFailed) {
        error("XMPP login failed (" + std::string(to_string(st.failure)) + "): " + st.reason);
        quit_ = !ep_.lan;  // nothing left to do without signaling
      } else if (st.state == XmppState::kReconnecting) {
        emit("\"event\":\"warning\",\"text\":" + json_string("XMPP connection lost: " + st.reason),
             "* XMPP connection lost (" + st.reason + "); reconnecting", true);
      }
    }
  }
  if (ep_.lan) {
    LanEvent ev;
    while (ep_.lan->next_event(ev, std::chrono::milliseconds(0))) {
      if (ev.kind == LanEventKind::kUpdated) continue;
      const bool found = ev.kind == LanEventKind::kFound;
      emit("\"event\":\"peer\",\"change\":" + std::string(found ? "\"found\"" : "\"lost\"") + ",\"peer\":" +
               json_string(ev.peer.id.str()) + ",\"name\":" + json_string(ev.peer.display_name),
           std::string("* ") + (found ? "found " : "lost ") + printable(ev.peer.display_name) + "  " +
               ev.peer.id.str());
    }
  }
}

void Session::on_request(const ConnectionInfo& info) {
  const PeerId& from = info.remote_peer;
  const std::string fp = Identity::fingerprint_of(info.remote_key);
  if (std::optional<PublicKey> pinned = ep_.known.find(pin_name(from));
      pinned && *pinned != info.remote_key) {
    host_.reject(info.handle, "refused: not the key this peer pinned for you");
    std::string why;
    ep_.check_pin(from, info.remote_key, why);
    emit("\"event\":\"refused\",\"peer\":" + json_string(from.str()) + ",\"reason\":" + json_string(why),
         "* " + why, true);
    return;
  }
  if (!options_.accept_from.empty()) {
    bool expected = false;
    for (const std::string& text : options_.accept_from) {
      std::string why;
      const PeerId id = ep_.resolve(text, why);
      expected = expected || (!id.empty() && (id == from || pin_name(id) == pin_name(from)));
    }
    if (!expected) {
      host_.reject(info.handle, "refused: not the peer expected");
      emit("\"event\":\"refused\",\"peer\":" + json_string(from.str()) + ",\"reason\":\"not --from\"",
           "* refused " + printable(from.str()) + ": not the peer expected (--from)", true);
      return;
    }
  }
  if (options_.auto_accept) {
    host_.accept(info.handle);
    Peer& p = add_peer(info.handle, from, false);
    emit("\"event\":\"request\",\"peer\":" + json_string(from.str()) + ",\"fingerprint\":" + json_string(fp) +
             ",\"accepted\":true",
         "* " + p.label + " (key " + fp + ") connects; accepted");
    flush_held();
    return;
  }
  requests_.push_back(info.handle);
  emit("\"event\":\"request\",\"peer\":" + json_string(from.str()) + ",\"fingerprint\":" + json_string(fp) +
           ",\"number\":" + std::to_string(requests_.size()),
       "* " + printable(from.str()) + " (key " + fp + ") asks to connect: /accept or /reject");
}

void Session::answer_request(const std::string& arg, bool accept) {
  size_t index = 0;
  if (!arg.empty()) {
    char* end = nullptr;
    const long n = std::strtol(arg.c_str(), &end, 10);
    if (*end || n < 1 || size_t(n) > requests_.size()) return error("no request number '" + arg + "'");
    index = size_t(n - 1);
  }
  if (requests_.empty()) return error("no request to answer");
  const ConnectionHandle handle = requests_[index];
  requests_.erase(requests_.begin() + long(index));
  const std::optional<ConnectionInfo> info = host_.connection_info(handle);
  if (!info) return error("that request is gone (it timed out or was withdrawn)");
  if (!accept) {
    host_.reject(handle, "the user said no");
    return note("refused " + info->remote_peer.str());
  }
  if (!host_.accept(handle)) return error("that request is gone (it timed out or was withdrawn)");
  Peer& p = add_peer(handle, info->remote_peer, false);
  note("accepted " + p.label);
  flush_held();
}

void Session::on_connected(Peer& peer, const ConnectionInfo& info) {
  std::string why;
  if (!ep_.check_pin(info.remote_peer.empty() ? peer.peer : info.remote_peer, info.remote_key, why)) {
    host_.close(info.handle, CloseMode::kNow, uint32_t(EndReason::kAppGeneric), "key changed");
    peer.closed = peer.failed = true;
    return error(why);
  }
  if (!why.empty()) error(why);  // the pin could not be written
  peer.connected = true;
  if (!info.remote_peer_exact.empty() && peer.peer.scheme() == "xmpp")
    peer.label = std::string(info.remote_peer_exact.name());
  emit("\"event\":\"connected\",\"peer\":" +
           json_string(info.remote_peer_exact.empty() ? peer.peer.str() : info.remote_peer_exact.str()) +
           ",\"route\":\"" + route_word(info) + "\",\"candidate\":\"" + to_string(info.route) +
           "\",\"local\":" + json_string(info.local_address.to_string()) +
           ",\"remote\":" + json_string(info.remote_address.to_string()) +
           ",\"fingerprint\":" + json_string(info.remote_fingerprint),
       "* connected to " + peer.label + " [" + std::to_string(peer.number) + "]: " + route_word(info) + " (" +
           to_string(info.route) + ", " + info.local_address.to_string() + " <-> " +
           info.remote_address.to_string() + "), key " + info.remote_fingerprint);
}

void Session::on_closed(Peer& peer, const ConnectionInfo& info) {
  std::vector<ConversationEvent> events;
  const bool undelivered = !peer.conversation->done_sending();  // (on_closed below forgets what it sends)
  const bool clean = peer.conversation->peer_said_bye() && !undelivered && !peer.conversation->receiving();
  const std::string reason = end_text(info);
  peer.conversation->on_closed(reason, events);
  report(peer, events);
  peer.closed = true;
  if (!peer.connected) {
    peer.failed = true;
    const std::optional<PublicKey> pinned = ep_.known.find(pin_name(peer.peer));
    if (info.end_reason == uint32_t(EndReason::kRemoteKeyMismatch) && pinned)
      error("WARNING: " + peer.label + " does not hold the key pinned for it in " + ep_.known.path() + " (" +
            Identity::fingerprint_of(*pinned) +
            "). Someone may be impersonating it, or it got a new identity. "
            "Refused. If the change is expected, remove its line from that file.");
    if (peer.outgoing) {
      connect_failed_ = true;
      return error("could not connect to " + peer.label + ": " + reason);
    }
    return error("the connection from " + peer.label + " could not be made: " + reason);
  }
  if (!clean && undelivered) failed_ = true;
  emit("\"event\":\"closed\",\"peer\":" + json_string(peer.peer.str()) + ",\"reason\":" + json_string(reason),
       "* " + peer.label + " left (" + reason + ")");
}

void Session::report(Peer& peer, std::vector<ConversationEvent>& events) {
  const std::string from = json_string(peer.peer.str());
  for (const ConversationEvent& e : events) {
    switch (e.kind) {
      case ConversationEvent::Kind::kText:
        emit("\"event\":\"message\",\"from\":" + from + ",\"text\":" + json_string(e.text),
             "<" + peer.label + "> " + printable(e.text));
        break;
      case ConversationEvent::Kind::kFileStarted:
        emit("\"event\":\"file_started\",\"peer\":" + from + ",\"name\":" + json_string(e.name) +
                 ",\"incoming\":" + (e.incoming ? "true" : "false") + ",\"size\":" + std::to_string(e.size) +
                 ",\"resumed_from\":" + std::to_string(e.resumed_from),
             "* " + std::string(e.incoming ? "receiving " : "sending ") + printable(e.name) + " (" +
                 human_bytes(double(e.size)) + ")" +
                 (e.resumed_from ? ", resuming at " + human_bytes(double(e.resumed_from)) : std::string()));
        break;
      case ConversationEvent::Kind::kFileReceived:
        emit("\"event\":\"file\",\"from\":" + from + file_fields(e),
             "* received " + printable(e.name) + " -> " + printable(e.path) + " (" + transfer_summary(e) +
                 ", SHA-256 " + e.sha256 + " verified)");
        break;
      case ConversationEvent::Kind::kFileSent:
        emit("\"event\":\"file_sent\",\"to\":" + from + file_fields(e),
             "* sent " + printable(e.name) + " (" + transfer_summary(e) + "); the peer verified SHA-256 " +
                 e.sha256);
        break;
      case ConversationEvent::Kind::kFileFailed:
        failed_ = true;
        emit("\"event\":\"file_failed\",\"peer\":" + from + ",\"name\":" + json_string(e.name) +
                 ",\"incoming\":" + (e.incoming ? "true" : "false") + ",\"reason\":" + json_string(e.text),
             options_.program + ": " + printable(e.text), true);
        break;
      case ConversationEvent::Kind::kProtocolError:
        emit("\"event\":\"warning\",\"text\":" +
                 json_string(peer.peer.str() + " sent " + e.text + " (dropped)"),
             "* " + peer.label + " sent " + e.text + " (dropped)", true);
        break;
    }
  }
  events.clear();
}

void Session::on_host_event(HostEvent& event) {
  if (event.kind == HostEventKind::kIncomingRequest) return on_request(event.info);
  auto it = peers_.find(event.connection);
  if (it == peers_.end()) {
    if (event.kind == HostEventKind::kClosed) {
      // A request that was never accepted ended (withdrawn or timed out).
      for (size_t i = 0; i < requests_.size(); ++i)
        if (requests_[i] == event.connection) requests_.erase(requests_.begin() + long(i));
    }
    return;
  }
  Peer& peer = it->second;
  std::vector<ConversationEvent> events;
  switch (event.kind) {
    case HostEventKind::kConnected:
      return on_connected(peer, event.info);
    case HostEventKind::kClosed:
      return on_closed(peer, event.info);
    case HostEventKind::kMessage:
      peer.conversation->on_message(event.message, events);
      return report(peer, events);
    default:
      return;
  }
}

void Session::show_stats() {
  for (const auto& [handle, peer] : peers_) {
    if (peer.closed) continue;
    const std::optional<ConnectionInfo> info = host_.connection_info(handle);
    const std::optional<ConnectionStatus> st = host_.status(handle);
    if (!info || !st) continue;
    const double rtt_ms = st->rtt ? double(st->rtt->count()) / 1000 : -1;
    char line[512];
    std::snprintf(line, sizeof line,
                  "[%d]%s %s: %s (%s) %s <-> %s, rtt %.2f ms, loss %.1f%%, rate %s/s, sent %s, received %s",
                  peer.number, handle == current_ ? "*" : "", peer.label.c_str(), route_word(*info).c_str(),
                  to_string(info->route), info->local_address.to_string().c_str(),
                  info->remote_address.to_string().c_str(), rtt_ms, st->loss_rate * 100,
                  human_bytes(st->send_rate_bytes_per_second).c_str(),
                  human_bytes(double(st->bytes_sent)).c_str(),
                  human_bytes(double(st->bytes_received)).c_str());
    char json[768];
    std::snprintf(json, sizeof json,
                  "\"event\":\"stats\",\"peer\":%s,\"route\":\"%s\",\"candidate\":\"%s\",\"local\":%s,"
                  "\"remote\":%s,\"rtt_ms\":%.3f,\"loss\":%.4f,\"send_rate\":%.0f,\"bytes_sent\":%llu,"
                  "\"bytes_received\":%llu",
                  json_string(peer.peer.str()).c_str(), route_word(*info).c_str(), to_string(info->route),
                  json_string(info->local_address.to_string()).c_str(),
                  json_string(info->remote_address.to_string()).c_str(), rtt_ms, st->loss_rate,
                  st->send_rate_bytes_per_second, (unsigned long long)st->bytes_sent,
                  (unsigned long long)st->bytes_received);
    emit(json, line);
  }
}

void Session::command(const std::string& name, const std::string& arg) {
  if (name == "/connect") {
    if (arg.empty()) return error("/connect wants a peer (a JID, or a LAN name or id)");
    return start_connect(arg, true);
  }
  if (name == "/accept" || name == "/reject") return answer_request(arg, name == "/accept");
  if (name == "/file") {
    if (arg.empty()) return error("/file wants a path");
    Peer* p = current();
    if (!p) return error("not connected: /connect PEER first");
    if (Result<void> ok = p->conversation->send_file(arg); !ok) return error(ok.error().message);
    return note("offered " + arg + " to " + p->label);
  }
  if (name == "/to") {
    for (auto& [handle, peer] : peers_)
      if (!peer.closed && std::to_string(peer.number) == arg) {
        current_ = handle;
        return note("writing to " + peer.label);
      }
    return error("no open connection number '" + arg + "' (/stats lists them)");
  }
  if (name == "/peers") {
    const std::vector<std::string> all = ep_.peers_now();
    if (options_.json) {
      std::string list;
      for (const std::string& p : all)
        list += (list.empty() ? "" : ",") + json_string(p);
      return emit("\"event\":\"peers\",\"peers\":[" + list + "]", "");
    }
    if (all.empty()) return note("nobody to connect to now");
    for (const std::string& p : all)
      note(printable(p));
    return;
  }
  if (name == "/stats") return show_stats();
  if (name == "/help") {
    if (!options_.json) std::fputs(kSessionCommands, stdout);
    return;
  }
  error("unknown command " + name + " (/help lists them)");
}

bool Session::handle_line(const std::string& line) {
  if (line.empty()) return true;
  if (line[0] == '/' && line.compare(0, 2, "//") != 0) {
    const size_t space = line.find(' ');
    const std::string name = line.substr(0, space);
    std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
    while (!arg.empty() && arg.back() == ' ')
      arg.pop_back();
    if (name == "/quit") return false;
    // Files wait for a connection like text does (a scripted sender names them before it is connected).
    if (name == "/file" && !current() && (options_.json || !pending_.empty() || options_.wait_peer)) {
      held_.push_back(line);
      return true;
    }
    command(name, arg);
    return true;
  }
  const std::string text = line[0] == '/' ? line.substr(1) : line;
  Peer* p = current();
  if (!p) {
    if (options_.json || !pending_.empty() || options_.wait_peer)
      held_.push_back(line);
    else
      error("not connected: /connect PEER first (/peers lists who is there)");
    return true;
  }
  const SendResult sent = p->conversation->send_text(text);
  if (sent != SendResult::kOk) error("could not send to " + p->label + ": " + to_string(sent));
  return true;
}

bool Session::finished() const {
  if (!input_.ended() || options_.keep_going || !pending_.empty() || !held_.empty()) return false;
  if (options_.wait_peer && !ever_peer_) return false;
  for (const auto& [handle, peer] : peers_) {
    if (peer.closed) continue;
    const Conversation& c = *peer.conversation;
    if (!peer.connected || !c.done_sending() || c.receiving() || !c.peer_said_bye()) return false;
  }
  return true;
}

int Session::run() {
  g_signal = 0;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (options_.listen) {
    ListenOptions lo;
    lo.auto_accept = false;
    if (Result<ListenSocketHandle> l = host_.listen_p2p(lo); !l) {
      error("cannot take requests: " + l.error().message);
      return 1;
    }
  }
  if (ep_.lan)
    emit(
        "\"event\":\"online\",\"peer\":" + json_string(ep_.lan->local_peer().str()) +
            ",\"fingerprint\":" + json_string(ep_.identity.fingerprint()),
        "* on the LAN as " + ep_.lan->local_peer().str() + " (interfaces: " +
            [&] {
              std::string all;
              for (const std::string& i : ep_.lan->interfaces())
                all += (all.empty() ? "" : " ") + i;
              return all.empty() ? std::string("none yet") : all;
            }() +
            ")");
  for (const std::string& peer : options_.connect)
    start_connect(peer, false);
  const Clock::time_point deadline =
      options_.time_limit ? Clock::now() + *options_.time_limit : Clock::time_point::max();

  HostEvent event;
  std::vector<ConversationEvent> events;
  while (!quit_) {
    if (g_signal) {
      error(std::string("interrupted (") + (g_signal == SIGINT ? "SIGINT" : "SIGTERM") + ")");
      for (auto& [handle, peer] : peers_)
        if (!peer.closed) {
          peer.conversation->on_closed("interrupted", events);
          report(peer, events);
          host_.close(handle, CloseMode::kNow, uint32_t(EndReason::kAppGeneric), "interrupted");
          peer.closed = true;
        }
      break;
    }
    if (Clock::now() >= deadline) {
      error("gave up after the time limit (--timeout)");
      break;
    }
    poll_signaling();
    if (xmpp_state_ == XmppState::kOnline || !ep_.xmpp)
      try_pending_connects();
    else if (!pending_.empty() && xmpp_state_ == XmppState::kFailed)
      pending_.clear();
    // Lines waiting for a connection that will not come (ours failed, none is pending or up, the input
    // is over): reported as not sent, instead of waiting for good.
    if (!held_.empty() && connect_failed_ && pending_.empty() && !current() && input_.ended() &&
        !options_.keep_going && !options_.wait_peer) {
      for (const std::string& held : held_)
        error("not sent, no connection: " + held);
      held_.clear();
    }

    std::string line;
    while (!quit_ && input_.pop(line))
      if (!handle_line(line)) quit_ = true;

    bool sending = false;
    for (auto& [handle, peer] : peers_) {
      if (peer.closed) continue;
      peer.conversation->pump(events);
      report(peer, events);
      sending = sending || peer.conversation->sending_file();
      if (input_.ended() && held_.empty() && !peer.bye_sent) {
        peer.conversation->say_bye();
        peer.bye_sent = true;
      }
    }
    show_progress();
    if (finished()) break;

    // Wait for the network: briefly while a file streams (the window refills as it drains).
    const auto wait = std::chrono::milliseconds(sending ? 1 : 20);
    for (bool first = true; host_.service(event, first ? wait : std::chrono::milliseconds(0));
         first = false) {
      on_host_event(event);
    }
  }
  clear_progress();
  // Leave: what was sent is delivered first (bounded by the Host's linger timeout).
  for (auto& [handle, peer] : peers_)
    if (!peer.closed) {
      if (!peer.bye_sent) peer.conversation->say_bye();
      host_.close(handle, quit_ || finished() ? CloseMode::kAfterDelivery : CloseMode::kNow);
    }
  peers_.clear();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  return failed_ ? 1 : 0;
}

}  // namespace

int run_session(Endpoint& endpoint, const SessionOptions& options, LineQueue& input) {
  Session session(endpoint, options, input);
  return session.run();
}

}  // namespace peerlink::app
