// LineSignaling: a peerlink::SignalingPlugin that carries signaling blobs through the rendezvous server of
// rendezvous_server.cpp (one text line per message over TCP; see line_protocol.hpp and README.md).
//
//   LineSignaling::Options o;
//   o.server_host = "127.0.0.1";
//   o.server_port = 7000;
//   o.name = "alice";                                   // this Host is "line:alice"
//   auto plugin = std::make_shared<LineSignaling>(o);
//   peerlink::HostConfig config;
//   config.signaling.push_back(plugin);
//   peerlink::Host host(config);                        // calls plugin->start(): it connects in the
//                                                       // background
//   if (!plugin->wait_ready(std::chrono::seconds(5))) { /* plugin->error() says why */ }
//   auto conn = host.connect(*peerlink::PeerId::parse("line:bob"));
//
// Threading: one thread of its own (started by start(), joined by stop()) connects to the server, writes
// queued lines and reads the server's lines; it is the only thread that calls the SignalingSink. send() only
// formats the line, queues it under a mutex and wakes that thread through a pipe, so it never blocks the
// Host's service thread.
#pragma once

#include <peerlink/signaling.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

class LineSignaling final : public peerlink::SignalingPlugin {
 public:
  struct Options {
    std::string server_host = "127.0.0.1";  // a numeric IPv4 or IPv6 address (no name lookup)
    uint16_t server_port = 0;
    std::string name;  // ours on the server: 1-64 characters of A-Z a-z 0-9 . _ -
    std::chrono::milliseconds connect_timeout{5000};
    // Called once, on the plugin's thread, when the server cannot be reached or the connection to it is
    // lost (after the plugin has logged why to stderr). Keep it short; it must not call stop().
    std::function<void(const std::string& why)> on_down;
  };

  enum class State {
    kIdle,        // start() not called yet
    kConnecting,  // connecting to the server
    kReady,       // connected and signed in (HELLO sent): blobs flow
    kDown,        // could not connect, or the connection was lost: every send() is reported unreachable
    kStopped,     // stop() returned
  };

  // Throws std::invalid_argument if the name is not valid for the server, std::system_error if no pipe.
  explicit LineSignaling(Options options);
  ~LineSignaling() override;  // stops (as stop()) if the Host has not
  LineSignaling(const LineSignaling&) = delete;
  LineSignaling& operator=(const LineSignaling&) = delete;

  // --- peerlink::SignalingPlugin ---
  std::string scheme() const override { return "line"; }
  // "line:<name>": connecting to it is refused by the Host at once (ErrorCode::kSelf).
  peerlink::PeerId local_peer() const override;
  void start(peerlink::SignalingSink& sink) override;
  void send(const peerlink::PeerId& to, const void* blob, size_t size) override;
  void stop() override;

  // --- for the application ---
  State state() const;
  // Blocks until the plugin is signed in (true) or down/stopped or the timeout passed (false).
  bool wait_ready(std::chrono::milliseconds timeout) const;
  // Why the plugin is down; empty otherwise.
  std::string error() const;
  // Blobs dropped because too many were waiting for the server connection.
  uint64_t dropped() const;

 private:
  // One unit of work for the plugin's thread.
  struct Outgoing {
    peerlink::PeerId to;
    std::string line;  // "SEND <to> <base64>\n"; empty: report `to` unreachable with `detail`
    std::string detail;
  };

  void run();
  bool connect_to_server(int& fd);
  void serve(int fd);
  void handle_line(const std::string& line);
  void stay_down();
  void set_state(State state, const std::string& why = {});
  void drain_wakeups();
  void log(const std::string& text) const;

  const Options options_;
  peerlink::SignalingSink* sink_ = nullptr;  // set by start(), used only by thread_
  std::thread thread_;
  int wake_read_ = -1, wake_write_ = -1;  // a pipe: send() and stop() poke the thread through it

  mutable std::mutex mutex_;
  mutable std::condition_variable state_changed_;
  std::deque<Outgoing> queue_;  // guarded by mutex_
  bool stopping_ = false;       // guarded by mutex_
  State state_ = State::kIdle;  // guarded by mutex_
  std::string error_;           // guarded by mutex_
  uint64_t dropped_ = 0;        // guarded by mutex_
  std::string server_error_;    // the last "ERROR" line of the server (thread_ only)
};
