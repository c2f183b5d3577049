#include <pthread.h>
#include <signal.h>
#include <strophe.h>

#include "xmpp/xmpp_test_util.hpp"

namespace peerlink::test {

RawClient::RawClient(const ProsodyServer& server, const std::string& user, const std::string& resource,
                     int priority, bool presence, bool answer_iqs)
    : jid_(server.jid(user) + "/" + resource),
      password_(ProsodyServer::password(user)),
      host_(server.options().ip),
      ca_file_(server.ca_file()),
      port_(server.port()),
      priority_(priority),
      presence_(presence),
      answer_iqs_(answer_iqs) {
  thread_ = std::thread([this] { run(); });
}

RawClient::~RawClient() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  thread_.join();
}

void RawClient::run() {
  sigset_t pipe;  // a write to a closed connection fails with EPIPE instead of ending the test
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  xmpp_initialize();
  xmpp_ctx_t* ctx = xmpp_ctx_new(nullptr, nullptr);
  xmpp_conn_t* conn = xmpp_conn_new(ctx);
  conn_ = conn;
  xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_MANDATORY_TLS);
  xmpp_conn_set_jid(conn, jid_.c_str());
  xmpp_conn_set_pass(conn, password_.c_str());
  xmpp_conn_set_cafile(conn, ca_file_.c_str());
  xmpp_handler_add(
      conn,
      [](xmpp_conn_t*, xmpp_stanza_t* stanza, void* self) -> int {
        auto* me = static_cast<RawClient*>(self);
        char* text = nullptr;
        size_t len = 0;
        if (xmpp_stanza_to_text(stanza, &text, &len) == 0) {
          std::lock_guard<std::mutex> lock(me->mutex_);
          me->received_.emplace_back(text, len);
          xmpp_free(xmpp_stanza_get_context(stanza), text);
        }
        const char* name = xmpp_stanza_get_name(stanza);
        const char* type = xmpp_stanza_get_type(stanza);
        const char* id = xmpp_stanza_get_id(stanza);
        const char* from = xmpp_stanza_get_from(stanza);
        if (me->answer_iqs_ && name && std::string(name) == "iq" && type && id && from &&
            (std::string(type) == "get" || std::string(type) == "set")) {
          std::string reply;
          if (xmpp_stanza_get_child_by_name_and_ns(stanza, "query",
                                                   "http://jabber.org/protocol/disco#info")) {
            reply = std::string("<iq type='result' id='") + id + "' to='" + from +
                    "'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' "
                    "type='pc' "
                    "name='chat'/><feature var='http://jabber.org/protocol/disco#info'/></query></iq>";
          } else {
            reply =
                std::string("<iq type='error' id='") + id + "' to='" + from +
                "'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                "</error></iq>";
          }
          xmpp_send_raw(me->conn_, reply.data(), reply.size());
        }
        return 1;
      },
      nullptr, nullptr, nullptr, this);
  xmpp_connect_client(
      conn, host_.c_str(), port_,
      [](xmpp_conn_t* c, xmpp_conn_event_t event, int, xmpp_stream_error_t*, void* self) {
        auto* me = static_cast<RawClient*>(self);
        std::lock_guard<std::mutex> lock(me->mutex_);
        if (event == XMPP_CONN_CONNECT) {
          me->online_ = true;
          me->bound_ = xmpp_conn_get_bound_jid(c);
          if (me->presence_)
            me->outbox_.insert(me->outbox_.begin(), "<presence><priority>" + std::to_string(me->priority_) +
                                                        "</priority></presence>");
        } else {
          me->failed_ = !me->online_;
          me->online_ = false;
        }
      },
      this);
  for (;;) {
    std::vector<std::string> out;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) break;
      if (online_) out.swap(outbox_);
    }
    for (const std::string& x : out)
      xmpp_send_raw(conn, x.data(), x.size());
    xmpp_run_once(ctx, 5);
  }
  if (xmpp_conn_is_connected(conn)) {
    xmpp_disconnect(conn);
    for (int i = 0; i < 50 && !xmpp_conn_is_disconnected(conn); ++i)
      xmpp_run_once(ctx, 10);
  }
  xmpp_conn_release(conn);
  xmpp_ctx_free(ctx);
}

bool RawClient::wait_online(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (online_) return true;
      if (failed_) return false;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void RawClient::send(const std::string& xml) {
  std::lock_guard<std::mutex> lock(mutex_);
  outbox_.push_back(xml);
}

std::vector<std::string> RawClient::received() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return received_;
}

size_t RawClient::count_received(const std::string& needle) const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const std::string& s : received_)
    n += s.find(needle) != std::string::npos ? 1 : 0;
  return n;
}

bool RawClient::wait_for(const std::string& needle, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (count_received(needle) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::string RawClient::full_jid() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bound_;
}

}  // namespace peerlink::test
