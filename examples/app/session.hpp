// The event loop of peerlink-chat and of `peerlink send` / `receive`: an Endpoint (a Host on XMPP or LAN
// signaling), the conversations of its connections, lines of input ("/file PATH", "/connect PEER", text, ...)
// and what happened, for people or as one JSON object per line.
//
// A session ends (run() returns) when its input has ended and every conversation is over: everything we
// sent was confirmed, the peer said it is done too (bye), and no file is still arriving. The exit status is
// 0 then, 1 when something failed on the way (a connection that could not be made, a file that did not
// arrive whole, the XMPP login refused, the time limit).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conversation.hpp"
#include "endpoint.hpp"

namespace peerlink::app {

// Lines of input handed from a reader thread to the session.
class LineQueue {
 public:
  void push(std::string line);
  void close();  // no more lines will come
  bool pop(std::string& line);
  bool ended() const;  // closed and empty

 private:
  mutable std::mutex mutex_;
  std::deque<std::string> lines_;
  bool closed_ = false;
};

// Reads standard input line by line on a thread of its own into a LineQueue (closed at end of input).
class StdinReader {
 public:
  explicit StdinReader(LineQueue& queue);
  ~StdinReader();  // stops reading (it polls, so it never blocks the exit)

 private:
  LineQueue& queue_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct SessionOptions {
  std::string program = "peerlink";  // prefixes messages to people
  bool json = false;                 // one JSON event per line on stdout instead of text for people
  std::vector<std::string> connect;  // peers to connect to at the start (a JID, a LAN name or id)
  std::chrono::milliseconds connect_wait{30000};  // for the peer's presence / announcement before connecting
  bool listen = true;                             // take requests from peers
  bool auto_accept = false;                       // accept requests without asking
  std::vector<std::string> accept_from;           // when not empty: refuse requests from other peers
  bool wait_peer = false;   // the end of input does not end the session before a peer has come (and gone)
  bool keep_going = false;  // the session never ends by itself (a receiver serving peer after peer)
  std::optional<std::chrono::milliseconds> time_limit;  // fail after this long
  bool progress = true;                                 // a progress bar on stderr when it is a terminal
  ConversationOptions conversation;
};

// Runs the session until it ends or SIGINT / SIGTERM; returns the exit status (0 or 1).
int run_session(Endpoint& endpoint, const SessionOptions& options, LineQueue& input);

// The commands a line of input may hold, for --help.
extern const char kSessionCommands[];

}  // namespace peerlink::app
