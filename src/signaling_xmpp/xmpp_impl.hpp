// XmppSignaling's inside. One thread (run()) owns the libstrophe context and connection and everything
// marked "plugin thread" below; the application's and the Host's threads only touch what mutex_ guards.
//
//   xmpp_signaling.cpp  the public class, the queue, status and counters, the thread's loop and timers
//   xmpp_session.cpp    logging in: connection options, TLS, credentials, failures, backoff, keepalive
//   xmpp_routing.cpp    stanzas: signaling IQs out and in, presence, disco, roster, XEP-0215 services
#pragma once

#include <strophe.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "jid.hpp"
#include "low_descriptor.hpp"
#include "peerlink/log.hpp"
#include "peerlink/xmpp.hpp"
#include "presence_directory.hpp"
#include "stanza_codec.hpp"

namespace peerlink {

// Held by every plugin's thread while libstrophe logs in (xmpp_session.cpp says why).
std::mutex& login_lock();

// How long a blob waits while the plugin reconnects after losing the server before its peer is reported
// unreachable: the server is likely down, and the Host may go on through another plugin
// (HostConfig::signaling_fallback) well within its connect timeout.
inline constexpr auto kHoldWhileReconnecting = std::chrono::seconds(3);

class XmppSignaling::Impl {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Impl(XmppOptions options);
  ~Impl();

  // --- any thread ---
  XmppStatus status() const;
  XmppCounters counters() const;
  bool wait_online(std::chrono::milliseconds timeout) const;
  PeerId local_peer() const;
  std::vector<PeerId> contacts() const;
  void start(SignalingSink& sink);
  void send(const PeerId& to, const void* blob, size_t size);
  void stop();

  // --- libstrophe's callbacks (plugin thread) ---
  void on_connection_event(xmpp_conn_event_t event, int error, xmpp_stream_error_t* stream_error);
  void on_stanza(xmpp_stanza_t* stanza);
  void on_library_log(xmpp_log_level_t level, const char* area, const char* message);
  bool on_certificate_failure(const char* message);
  int on_socket(int* fd);

 private:
  struct Outgoing {
    PeerId to;
    std::vector<uint8_t> blob;
  };
  // A blob waiting for the login, for presence to settle, or for a resource's features.
  struct Held {
    PeerId to;  // as the Host gave it
    std::vector<uint8_t> blob;
    Clock::time_point deadline;
    Clock::time_point since;  // when send() gave it
  };
  // A signaling IQ sent and not yet answered.
  struct InFlight {
    PeerId to;      // as the Host gave it
    xmpp::Jid jid;  // where it went
    std::vector<uint8_t> blob;
    Clock::time_point sent;
  };
  enum class Phase : uint8_t { kWaiting, kConnecting, kOnline, kFailed };

  // xmpp_signaling.cpp
  void run();
  void loop_once();
  Clock::time_point next_deadline() const;
  void wait_for_io(Clock::time_point deadline);
  void take_queue();
  void set_status(XmppState state, XmppFailure failure, const std::string& reason);
  void notify_status();
  void log(LogLevel level, const std::string& line) const;
  template <typename F>
  void count(F&& f) {
    std::lock_guard<std::mutex> lock(mutex_);
    f(counters_);
  }

  // xmpp_session.cpp
  bool create_connection();
  void connect_now();
  void attempt_failed(XmppFailure failure, const std::string& reason, bool final);
  void on_online();
  void keepalive(Clock::time_point now);
  void shut_down_connection();
  void send_raw(const std::string& stanza);
  std::string next_id(const char* kind);

  // xmpp_routing.cpp
  void start_session(const xmpp::Jid& self, bool resumed);
  void route(Outgoing out, Clock::time_point now);
  // Sends to the resource a bare JID reaches; false if it must wait (then `why` is empty) or cannot be
  // reached (`why` says why).
  bool route_bare(const PeerId& to, const xmpp::Jid& bare, std::vector<uint8_t>& blob, Clock::time_point now,
                  std::string& why);
  void try_held(Clock::time_point now);
  void publish_contacts();
  void transmit(const PeerId& to, const xmpp::Jid& jid, std::vector<uint8_t> blob, Clock::time_point now);
  void unreachable(const PeerId& to, const std::string& detail);
  void on_iq(xmpp_stanza_t* iq, const char* type, const char* id, const char* from);
  void on_signal(xmpp_stanza_t* iq, const char* id, const char* from);
  void on_iq_answer(xmpp_stanza_t* iq, bool error, const std::string& id, const char* from);
  // A roster result or push: the contacts and their subscriptions into the directory.
  void apply_roster(xmpp_stanza_t* iq);
  void on_presence(xmpp_stanza_t* presence, const char* from);
  void ask_features(const xmpp::Jid& full, const std::string& caps_node, const std::string& caps_ver);
  void ask_services();
  void offer_services(const std::vector<xmpp::ExternalService>& services);
  bool allow_request(const std::string& from_bare, Clock::time_point now);
  void reply(const std::string& stanza);
  void reply_error(const char* to, const char* id, const char* type, const char* condition);
  bool addressed(const std::string& jid) const { return addressed_.count(jid) != 0; }
  void remember_addressed(const std::string& jid, Clock::time_point now);
  void expire(Clock::time_point now);

  const XmppOptions options_;
  xmpp::Jid account_;     // options_.jid, parsed
  std::string password_;  // from options_ (memory, file or environment)
  LogLevel log_level_;
  xmpp::LowDescriptor low_fd_;

  mutable std::mutex mutex_;
  mutable std::condition_variable status_changed_;
  std::deque<Outgoing> queue_;    // from send(); guarded by mutex_
  bool started_ = false;          // guarded by mutex_
  bool stopping_ = false;         // guarded by mutex_
  XmppStatus status_;             // guarded by mutex_
  XmppCounters counters_;         // guarded by mutex_
  PeerId local_peer_;             // guarded by mutex_
  std::vector<PeerId> contacts_;  // guarded by mutex_; published from directory_ by publish_contacts()
  int wake_fd_ = -1;              // eventfd: send() and stop() wake the thread
  std::mutex join_mutex_;         // one stop() joins the thread

  // A backstop beside the plugin thread. libstrophe's TLS handshake retries without end, inside
  // xmpp_run_once(), while a server that said <proceed/> says nothing more: neither login_timeout nor stop()
  // would get a turn, and login_lock() would stay held. Until the login, the watchdog shuts the attempt's
  // socket down once the attempt outlives login_timeout by kWatchdogGrace, or stop() has waited that long
  // for the plugin thread; the handshake then fails and the thread goes on. It holds a descriptor of its own
  // for the socket (a dup), never a number libstrophe may have closed and the process reused.
  static constexpr auto kWatchdogGrace = std::chrono::seconds(1);
  std::mutex watch_mutex_;
  std::condition_variable watch_wake_;
  int watch_fd_ = -1;                                            // guarded by watch_mutex_
  Clock::time_point watch_deadline_ = Clock::time_point::max();  // the attempt's; guarded by watch_mutex_
  Clock::time_point stop_deadline_ = Clock::time_point::max();   // stop()'s; guarded by watch_mutex_
  bool watch_stop_ = false;                                      // guarded by watch_mutex_
  std::atomic<bool> watchdog_ended_login_{false};  // the attempt's deadline passed: a login timeout
  std::thread watchdog_;
  void watchdog();
  void watch(int fd, Clock::time_point deadline);  // a dup of fd, shut down at deadline (or stop()'s)
  void unwatch();                                  // logged in, or the attempt is over: the dup is closed

  // --- plugin thread ---
  SignalingSink* sink_ = nullptr;
  std::thread thread_;
  xmpp_log_t library_log_{};
  xmpp_ctx_t* ctx_ = nullptr;
  xmpp_conn_t* conn_ = nullptr;
  int socket_ = -1;                // libstrophe's socket (as the socket callback last saw it)
  uint64_t library_receives_ = 0;  // stanzas libstrophe has logged as received
  Phase phase_ = Phase::kWaiting;
  std::mt19937_64 random_;
  uint32_t attempts_ = 0;  // failed attempts since the last login
  Clock::time_point next_attempt_{};
  // What the current attempt learnt before it ended (from libstrophe's log and callbacks).
  bool auth_failed_ = false;
  bool resumed_ = false;
  std::string tls_failure_;
  std::string socket_failure_;
  Clock::time_point attempt_started_{};
  bool login_timed_out_ = false;
  bool ever_online_ = false;    // a login succeeded before (the next one is a reconnect)
  bool shutting_down_ = false;  // stop(): a disconnect is not a failure
  uint64_t id_counter_ = 0;
  std::string id_prefix_;
  Clock::time_point last_received_{};
  Clock::time_point online_since_{};              // the current session's login
  std::vector<XmppStatus> status_notifications_;  // for on_status, made by the loop
  std::string ping_id_;                           // keepalive ping in flight
  Clock::time_point ping_sent_{};

  xmpp::PresenceDirectory directory_;
  uint64_t contacts_published_ = ~uint64_t{0};  // directory_.generation() * 2 + online, when published
  bool settled_ = false;                        // the roster and the contacts' presence have arrived
  std::string settle_id_;                       // the ping whose answer says so
  std::string roster_id_;
  std::deque<Held> held_;
  std::map<std::string, InFlight> in_flight_;  // by IQ id
  struct DiscoAsked {
    xmpp::Jid resource;
    std::string caps_ver;  // being verified (empty: none)
    Clock::time_point sent;
  };
  std::map<std::string, DiscoAsked> disco_in_flight_;  // by IQ id
  struct Probe {
    std::string bare;
    Clock::time_point sent;
  };
  std::map<std::string, Probe> probes_;                 // by IQ id: accounts we asked about
  std::map<std::string, std::string> probe_results_;    // bare JID -> why it cannot be reached
  std::map<std::string, Clock::time_point> addressed_;  // JIDs the Host sent to (bare or full)
  struct Bucket {
    double tokens = 0;
    Clock::time_point last{};
  };
  std::map<std::string, Bucket> request_buckets_;  // signaling IQs per sending account
  Bucket error_bucket_;                            // error replies, all senders together
  std::string services_id_;
  std::vector<std::string> credentials_ids_;
  Clock::time_point services_asked_{};  // when the services or credentials queries in flight were sent
  std::vector<xmpp::ExternalService> services_;  // the last list, completed with credentials
  Clock::time_point next_services_refresh_ = Clock::time_point::max();
};

}  // namespace peerlink
