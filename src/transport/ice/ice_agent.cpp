#include "transport/ice/ice_agent.hpp"

#include <agent.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stun/stunagent.h>
#include <stun/usages/ice.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "transport/io/descriptors.hpp"
#include "transport/io/socket_address.hpp"

namespace peerlink::ice {

// libstun's agent for answering the peer's checks on a path the Host reads itself (answer_check).
struct StunState {
  StunAgent agent;
  static constexpr uint16_t kKnown[] = {STUN_ATTRIBUTE_USERNAME,        STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                        STUN_ATTRIBUTE_FINGERPRINT,     STUN_ATTRIBUTE_PRIORITY,
                                        STUN_ATTRIBUTE_USE_CANDIDATE,   STUN_ATTRIBUTE_ICE_CONTROLLED,
                                        STUN_ATTRIBUTE_ICE_CONTROLLING, 0};
  StunState() {
    stun_agent_init(
        &agent, kKnown, STUN_COMPATIBILITY_RFC5389,
        StunAgentUsageFlags(STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT));
  }
};

struct Signals {
  static void candidate(NiceAgent* agent, NiceCandidate* c, gpointer self) {
    static_cast<IceAgent*>(self)->on_candidate(agent, c);
  }
  static void gathering_done(NiceAgent* agent, guint stream, gpointer self) {
    static_cast<IceAgent*>(self)->on_gathering_done(agent, stream);
  }
  static void state(NiceAgent* agent, guint stream, guint component, guint state, gpointer self) {
    if (component == 1) static_cast<IceAgent*>(self)->on_state(agent, stream, state);
  }
  static void pair(NiceAgent* agent, guint stream, guint component, NiceCandidate*, NiceCandidate*,
                   gpointer self) {
    if (component == 1) static_cast<IceAgent*>(self)->on_selected_pair(agent, stream);
  }
  static void receive(NiceAgent* agent, guint stream, guint component, guint len, gchar* buf, gpointer self) {
    if (component == 1) static_cast<IceAgent*>(self)->on_receive(agent, stream, buf, len);
  }
};

namespace {

// How long a destroyed IceAgent runs libnice's closing of its agents: their TURN deallocations get this
// long to be answered (none to wait for without TURN).
constexpr auto kCloseWait = std::chrono::milliseconds(500);

Address to_address(const NiceAddress& a) {
  sockaddr_storage ss{};
  nice_address_copy_to_sockaddr(&a, reinterpret_cast<sockaddr*>(&ss));
  return io::from_sockaddr(ss, sizeof ss);
}

bool to_nice(const Address& a, NiceAddress& out) {
  sockaddr_storage ss{};
  if (!io::to_sockaddr(a, a.is_ipv4() ? AF_INET : AF_INET6, &ss)) return false;
  nice_address_init(&out);
  nice_address_set_from_sockaddr(&out, reinterpret_cast<const sockaddr*>(&ss));
  return true;
}

CandidateType from_nice(NiceCandidateType t) {
  switch (t) {
    case NICE_CANDIDATE_TYPE_HOST:
      return CandidateType::kHost;
    case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE:
      return CandidateType::kServerReflexive;
    case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE:
      return CandidateType::kPeerReflexive;
    case NICE_CANDIDATE_TYPE_RELAYED:
      return CandidateType::kRelayed;
  }
  return CandidateType::kHost;
}

NiceCandidateType to_nice(CandidateType t) {
  switch (t) {
    case CandidateType::kHost:
      return NICE_CANDIDATE_TYPE_HOST;
    case CandidateType::kServerReflexive:
      return NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE;
    case CandidateType::kPeerReflexive:
      return NICE_CANDIDATE_TYPE_PEER_REFLEXIVE;
    case CandidateType::kRelayed:
      return NICE_CANDIDATE_TYPE_RELAYED;
  }
  return NICE_CANDIDATE_TYPE_HOST;
}

CandidateTransport from_nice(NiceCandidateTransport t) {
  switch (t) {
    case NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE:
      return CandidateTransport::kTcpActive;
    case NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE:
      return CandidateTransport::kTcpPassive;
    default:
      return CandidateTransport::kUdp;
  }
}

NiceCandidateTransport to_nice(CandidateTransport t) {
  switch (t) {
    case CandidateTransport::kTcpActive:
      return NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE;
    case CandidateTransport::kTcpPassive:
      return NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE;
    default:
      return NICE_CANDIDATE_TRANSPORT_UDP;
  }
}

bool private_address(const Address& a) {
  const auto& b = a.bytes();
  if (a.is_ipv4()) {
    return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
           (b[0] == 100 && (b[1] & 0xc0) == 64) || (b[0] == 169 && b[1] == 254) || b[0] == 127;
  }
  return (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || a.is_loopback();
}

bool resolve(std::string& host, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res) {
    if (error) *error = "cannot resolve ICE server " + host + ": " + gai_strerror(rc);
    return false;
  }
  char buf[INET6_ADDRSTRLEN] = {};
  if (res->ai_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof buf);
  else
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, buf, sizeof buf);
  freeaddrinfo(res);
  host = buf;
  return true;
}

}  // namespace

bool IceAgent::resolve_servers(IceConfig& config, std::string* error) {
  for (StunServer& s : config.stun_servers)
    if (!resolve(s.host, error)) return false;
  for (TurnServer& s : config.turn_servers)
    if (!resolve(s.host, error)) return false;
  return true;
}

IceAgent::IceAgent(GMainContext* context, const IceConfig& config, IceCallbacks callbacks)
    : context_(context), config_(config), callbacks_(std::move(callbacks)), stun_(new StunState) {
  addresses_ = usable_addresses();
  controlling_ = make_agent(true);
  controlled_ = make_agent(false);
  if (!controlling_ || !controlled_) {
    if (controlling_) free_agent(controlling_);
    if (controlled_) free_agent(controlled_);
    throw std::runtime_error("libnice could not create an ICE agent");
  }
}

IceAgent::~IceAgent() {
  // The thread that ran the context (the Host's service thread) is gone. libnice completes an agent's
  // closing (its TURN deallocations, then its last reference to the agent, which holds the context) on
  // the thread-default context of the thread that asked for it: so the context is made this thread's
  // first, and run here for a bounded time. Without it every Host left its agents, its context and the
  // context's eventfd behind.
  const bool acquired = g_main_context_acquire(context_);
  if (acquired) g_main_context_push_thread_default(context_);
  for (auto& [id, s] : streams_)
    nice_agent_remove_stream(s.agent, s.nice_id);
  streams_.clear();
  while (!agents_.empty())
    free_agent(agents_.back().agent);
  if (!acquired) return;
  const auto give_up = std::chrono::steady_clock::now() + kCloseWait;
  while (*closing_ > 0 && std::chrono::steady_clock::now() < give_up) {
    if (!g_main_context_iteration(context_, FALSE)) g_usleep(1000);
  }
  g_main_context_pop_thread_default(context_);
  g_main_context_release(context_);
}

void IceAgent::free_agent(NiceAgent* a) {
  g_signal_handlers_disconnect_by_data(a, this);
  ++*closing_;
  nice_agent_close_async(
      a,
      [](GObject*, GAsyncResult*, gpointer data) {
        auto* closing = static_cast<std::shared_ptr<int>*>(data);
        --**closing;
        delete closing;
      },
      new std::shared_ptr<int>(closing_));
  g_object_unref(a);
  agents_.erase(
      std::remove_if(agents_.begin(), agents_.end(), [&](const AgentSlot& s) { return s.agent == a; }),
      agents_.end());
}

void IceAgent::release_if_idle(NiceAgent* a) {
  if (a == controlling_ || a == controlled_) return;
  for (const auto& [id, s] : streams_)
    if (s.agent == a) return;
  free_agent(a);
}

bool IceAgent::refresh_interfaces() {
  std::vector<Address> now = usable_addresses();
  if (now.empty() || now == addresses_) return false;
  std::swap(addresses_, now);  // what make_agent gives the new agents
  const size_t given_before = local_addresses_;
  NiceAgent* controlling = make_agent(true);
  NiceAgent* controlled = controlling ? make_agent(false) : nullptr;
  if (!controlled) {  // libnice refused: the current agents stay
    if (controlling) free_agent(controlling);
    std::swap(addresses_, now);
    local_addresses_ = given_before;
    return false;
  }
  std::swap(controlling, controlling_);
  std::swap(controlled, controlled_);
  release_if_idle(controlling);  // the old ones, once their streams are gone
  release_if_idle(controlled);
  return true;
}

bool IceAgent::uses_stun() const {
  bool turn_udp = std::any_of(config_.turn_servers.begin(), config_.turn_servers.end(),
                              [](const TurnServer& t) { return t.transport == TurnTransport::kUdp; });
  return !config_.stun_servers.empty() && !turn_udp;
}

void IceAgent::apply_stun_server(NiceAgent* a) {
  if (uses_stun())
    g_object_set(a, "stun-server", config_.stun_servers.front().host.c_str(), "stun-server-port",
                 guint(config_.stun_servers.front().port), nullptr);
  else
    g_object_set(a, "stun-server", nullptr, nullptr);
}

void IceAgent::set_servers(const std::vector<StunServer>& stun, const std::vector<TurnServer>& turn) {
  config_.stun_servers = stun;
  config_.turn_servers = turn;
  for (NiceAgent* a : {controlling_, controlled_})
    apply_stun_server(a);
}

NiceAgent* IceAgent::make_agent(bool controlling) {
  // No consent freshness (RFC 7675): the Host takes a direct pair's datagrams off libnice's socket, so
  // libnice would never see the answers to its consent checks. The connection proves consent itself: its
  // packets are authenticated, and a path that stays silent while the Host sends is restarted after 1.5 s.
  guint options = NICE_AGENT_OPTION_ICE_TRICKLE;
  NiceAgent* a = nice_agent_new_full(context_, NICE_COMPATIBILITY_RFC5245, NiceAgentOption(options));
  if (!a) return nullptr;
  bool relay_only = config_.candidates == candidate_kinds::kRelay;
  g_object_set(a, "upnp", FALSE, "controlling-mode", controlling ? TRUE : FALSE, "ice-tcp", FALSE,
               "force-relay", relay_only ? TRUE : FALSE, "stun-pacing-timer",
               guint(config_.check_pacing.count()), nullptr);
  apply_stun_server(a);

  // Host candidates from the allowed interfaces only.
  local_addresses_ = 0;
  for (const Address& address : addresses_) {
    NiceAddress addr;
    if (to_nice(address, addr) && nice_agent_add_local_address(a, &addr)) ++local_addresses_;
  }
  agents_.push_back(AgentSlot{a, next_agent_number_++});
  g_signal_connect(a, "new-candidate-full", G_CALLBACK(Signals::candidate), this);
  g_signal_connect(a, "candidate-gathering-done", G_CALLBACK(Signals::gathering_done), this);
  g_signal_connect(a, "component-state-changed", G_CALLBACK(Signals::state), this);
  g_signal_connect(a, "new-selected-pair-full", G_CALLBACK(Signals::pair), this);
  return a;
}

std::vector<Address> IceAgent::usable_addresses() const {
  std::vector<Address> out;
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    std::string name = i->ifa_name;
    auto named = [&](const std::vector<std::string>& v) {
      return std::find(v.begin(), v.end(), name) != v.end();
    };
    if (named(config_.interfaces_deny)) continue;
    if (!config_.interfaces_allow.empty() ? !named(config_.interfaces_allow) : (i->ifa_flags & IFF_LOOPBACK))
      continue;
    if (family == AF_INET6) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)) continue;  // needs scope ids end to end; skipped
    }
    sockaddr_storage ss{};
    const socklen_t length = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    std::memcpy(&ss, i->ifa_addr, length);
    out.push_back(io::from_sockaddr(ss, length));
  }
  freeifaddrs(ifs);
  return out;
}

IceAgent::Stream* IceAgent::find(StreamId id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

const IceAgent::Stream* IceAgent::find(StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

StreamId IceAgent::id_of(NiceAgent* agent, unsigned nice_id) const {
  auto it = by_nice_id_.find(nice_key(agent, nice_id));
  return it == by_nice_id_.end() ? 0 : it->second;
}

bool IceAgent::offered(const Candidate& c) const {
  uint32_t kinds = config_.candidates;
  switch (c.type) {
    case CandidateType::kRelayed:
      return kinds & candidate_kinds::kRelay;
    case CandidateType::kHost:
      return kinds & (private_address(c.address) ? candidate_kinds::kPrivate : candidate_kinds::kPublic);
    default:
      return kinds & candidate_kinds::kPublic;
  }
}

StreamId IceAgent::add_stream(bool controlling, std::string& ufrag, std::string& pwd, std::string* error,
                              bool* out_of_descriptors) {
  StreamId id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  if (!open_stream(id, controlling ? controlling_ : controlled_, ufrag, pwd, error, out_of_descriptors))
    return 0;
  return id;
}

bool IceAgent::restart(StreamId id, std::string& ufrag, std::string& pwd, std::string* error,
                       bool* out_of_descriptors) {
  Stream* s = find(id);
  if (!s) {
    if (error) *error = "no such stream";
    return false;
  }
  NiceAgent* old = s->agent;
  const bool controlling = s->controlling;
  nice_agent_remove_stream(old, s->nice_id);
  by_nice_id_.erase(nice_key(old, s->nice_id));
  streams_.erase(id);
  release_if_idle(old);
  // On the current agent of its role: after refresh_interfaces(), the new interfaces'.
  return open_stream(id, controlling ? controlling_ : controlled_, ufrag, pwd, error, out_of_descriptors);
}

bool IceAgent::open_stream(StreamId id, NiceAgent* a, std::string& ufrag, std::string& pwd,
                           std::string* error, bool* out_of_descriptors) {
  // libnice would fall back to every interface if it was given none: refuse instead.
  if (local_addresses_ == 0) {
    if (error)
      *error =
          "no usable network interface: none that is up has an address and passes ice.interfaces_allow "
          "and ice.interfaces_deny";
    return false;
  }
  // A socket per local address and TURN server, and GLib's wake-up descriptor for the stream's component:
  // GLib would abort the process if it could not have the latter.
  const int needed = int(local_addresses_ + config_.turn_servers.size()) + 1 + io::kDescriptorReserve;
  if (!io::descriptors_available(needed)) {
    if (out_of_descriptors) *out_of_descriptors = true;
    if (error)
      *error = io::descriptors_exhausted_message() +
               ": no sockets for the ICE stream (each peer-to-peer connection needs one per local address); "
               "close connections or raise the limit";
    return false;
  }
  guint nice_id = nice_agent_add_stream(a, 1);
  if (nice_id == 0) {
    if (error) *error = "libnice could not add a stream";
    return false;
  }
  Stream& s = streams_[id];
  s.agent = a;
  s.controlling = a == controlling_;
  s.nice_id = nice_id;
  by_nice_id_[nice_key(a, nice_id)] = id;
  for (const TurnServer& t : config_.turn_servers) {
    nice_agent_set_relay_info(
        a, nice_id, 1, t.host.c_str(), t.port, t.username.c_str(), t.password.c_str(),
        t.transport == TurnTransport::kTcp ? NICE_RELAY_TYPE_TURN_TCP : NICE_RELAY_TYPE_TURN_UDP);
  }
  nice_agent_attach_recv(a, nice_id, 1, context_, Signals::receive, this);
  gchar *u = nullptr, *p = nullptr;
  nice_agent_get_local_credentials(a, nice_id, &u, &p);
  ufrag = u ? u : "";
  pwd = p ? p : "";
  s.local_ufrag = ufrag;
  s.local_pwd = pwd;
  g_free(u);
  g_free(p);
  if (!nice_agent_gather_candidates(a, nice_id)) {
    if (error) *error = "libnice could not gather candidates (no usable interface?)";
    remove_stream(id);
    return false;
  }
  return true;
}

void IceAgent::set_remote(StreamId id, const std::string& ufrag, const std::string& pwd,
                          const std::vector<Candidate>& candidates, bool end_of_candidates) {
  Stream* s = find(id);
  if (!s) return;
  if (s->remote_ufrag != ufrag) {
    nice_agent_set_remote_credentials(s->agent, s->nice_id, ufrag.c_str(), pwd.c_str());
    s->remote_ufrag = ufrag;
  }
  GSList* list = nullptr;
  for (const Candidate& c : candidates) {
    if (std::find(s->remote_given.begin(), s->remote_given.end(), c) != s->remote_given.end()) continue;
    NiceAddress addr;
    if (!to_nice(c.address, addr)) continue;
    s->remote_given.push_back(c);
    NiceCandidate* nc = nice_candidate_new(to_nice(c.type));
    nc->stream_id = s->nice_id;
    nc->component_id = 1;
    nc->transport = to_nice(c.transport);
    nc->priority = c.priority;
    nc->addr = addr;
    std::snprintf(nc->foundation, sizeof nc->foundation, "%s", c.foundation.c_str());
    list = g_slist_append(list, nc);
  }
  if (list) {
    nice_agent_set_remote_candidates(s->agent, s->nice_id, 1, list);
    g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
  }
  if (end_of_candidates && !s->remote_done) {
    s->remote_done = true;
    nice_agent_peer_candidate_gathering_done(s->agent, s->nice_id);
  }
}

int IceAgent::send(StreamId id, const uint8_t* data, size_t size) {
  Stream* s = find(id);
  if (!s || !s->connected) return -1;
  return nice_agent_send(s->agent, s->nice_id, 1, guint(size), reinterpret_cast<const gchar*>(data));
}

void IceAgent::remove_stream(StreamId id) {
  Stream* s = find(id);
  if (!s) return;
  NiceAgent* agent = s->agent;
  nice_agent_remove_stream(agent, s->nice_id);
  by_nice_id_.erase(nice_key(agent, s->nice_id));
  streams_.erase(id);
  release_if_idle(agent);
}

bool IceAgent::connected(StreamId id) const {
  const Stream* s = find(id);
  return s && s->connected;
}

IceAgent::SelectedRoute IceAgent::route(StreamId id) const {
  SelectedRoute r;
  const Stream* s = find(id);
  if (!s || !s->connected) return r;
  NiceCandidate *local = nullptr, *peer = nullptr;
  if (!nice_agent_get_selected_pair(s->agent, s->nice_id, 1, &local, &peer) || !local || !peer) return r;
  r.local = to_address(local->addr);
  r.remote = to_address(peer->addr);
  if (local->type == NICE_CANDIDATE_TYPE_RELAYED || peer->type == NICE_CANDIDATE_TYPE_RELAYED)
    r.type = RouteType::kRelay;
  else if (local->type == NICE_CANDIDATE_TYPE_PEER_REFLEXIVE ||
           peer->type == NICE_CANDIDATE_TYPE_PEER_REFLEXIVE)
    r.type = RouteType::kPeerReflexive;
  else if (local->type == NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE ||
           peer->type == NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE)
    r.type = RouteType::kServerReflexive;
  else
    r.type = RouteType::kHost;
  return r;
}

std::string IceAgent::diagnosis(StreamId id) const {
  const Stream* s = find(id);
  if (!s) return "";
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : "; ") + part; };
  if (!config_.turn_servers.empty() && !s->got_relay) {
    std::string servers;
    for (const TurnServer& t : config_.turn_servers)
      servers += (servers.empty() ? "" : ", ") + t.host + ":" + std::to_string(t.port) +
                 (t.transport == TurnTransport::kUdp ? "/udp" : "/tcp");
    add("no relayed candidate from TURN " + servers + " (unreachable, or the credentials were refused)");
  }
  if (uses_stun() && !s->got_reflexive) {
    const StunServer& st = config_.stun_servers.front();
    add("no server-reflexive candidate from STUN " + st.host + ":" + std::to_string(st.port) +
        " (unreachable, or no NAT in between)");
  }
  add(std::to_string(s->local.size()) + " local candidate(s)" + (s->gathering_done ? "" : " so far") + ", " +
      std::to_string(s->remote_given.size()) + " from the peer");
  return out;
}

void IceAgent::on_candidate(NiceAgent* agent, void* candidate) {
  auto* nc = static_cast<NiceCandidate*>(candidate);
  StreamId id = id_of(agent, nc->stream_id);
  Stream* s = find(id);
  if (!s || nc->component_id != 1) return;
  Candidate c;
  c.type = from_nice(nc->type);
  c.transport = from_nice(nc->transport);
  c.priority = nc->priority;
  c.foundation = nc->foundation;
  c.address = to_address(nc->addr);
  s->got_reflexive |= c.type == CandidateType::kServerReflexive;
  s->got_relay |= c.type == CandidateType::kRelayed;
  if (!offered(c)) return;
  s->local.push_back(c);
  if (callbacks_.local_candidates) callbacks_.local_candidates(id, s->local, s->gathering_done);
}

void IceAgent::on_gathering_done(NiceAgent* agent, unsigned nice_id) {
  StreamId id = id_of(agent, nice_id);
  Stream* s = find(id);
  if (!s) return;
  s->gathering_done = true;
  if (callbacks_.local_candidates) callbacks_.local_candidates(id, s->local, true);
}

void IceAgent::on_state(NiceAgent* agent, unsigned nice_id, unsigned state) {
  StreamId id = id_of(agent, nice_id);
  Stream* s = find(id);
  if (!s) return;
  const bool ready = state == NICE_COMPONENT_STATE_READY;
  if ((state == NICE_COMPONENT_STATE_CONNECTED || ready) && !s->connected) {
    s->connected = true;
    s->failed = false;  // libnice may find a pair after failing (later candidates): a later failure counts
    s->ready = ready;
    tune_selected_socket(agent, nice_id);
    if (callbacks_.state) callbacks_.state(id, StreamState::kConnected);
  } else if (s->connected && ready != s->ready && (state == NICE_COMPONENT_STATE_CONNECTED || ready)) {
    s->ready = ready;  // the direct path may change hands (see DirectPath)
    if (callbacks_.ready_changed) callbacks_.ready_changed(id);
  } else if (state == NICE_COMPONENT_STATE_FAILED && !s->failed) {
    s->failed = true;
    s->connected = false;
    if (callbacks_.state) callbacks_.state(id, StreamState::kFailed);
  }
}

// The selected pair's local socket (none for a relayed pair: libnice's TURN socket is not exposed): the
// Host's buffer size, and no fragmentation (the connection probes the path MTU itself, as on its own
// sockets; libnice's STUN messages are small).
void IceAgent::tune_selected_socket(NiceAgent* agent, unsigned nice_id) {
  GSocket* gs = nice_agent_get_selected_socket(agent, nice_id, 1);
  if (!gs) return;
  const int fd = g_socket_get_fd(gs);
  if (socket_buffer_bytes_ > 0) {
    const int bytes = socket_buffer_bytes_;
    for (auto [force, plain] : {std::pair{SO_RCVBUFFORCE, SO_RCVBUF}, std::pair{SO_SNDBUFFORCE, SO_SNDBUF}})
      if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof bytes) != 0)
        setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof bytes);
  }
  const int probe4 = IP_PMTUDISC_PROBE, probe6 = IPV6_PMTUDISC_PROBE;
  setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe4, sizeof probe4);
  setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &probe6, sizeof probe6);
  g_object_unref(gs);
}

void IceAgent::on_selected_pair(NiceAgent* agent, unsigned nice_id) {
  StreamId id = id_of(agent, nice_id);
  Stream* s = find(id);
  if (!s || !s->connected) return;  // the first pair is reported with the state change
  tune_selected_socket(agent, nice_id);
  if (callbacks_.selected_pair) callbacks_.selected_pair(id);
}

std::optional<IceAgent::DirectPath> IceAgent::direct_path(StreamId id) const {
  const Stream* s = find(id);
  if (!s || !s->connected) return std::nullopt;
  NiceCandidate *local = nullptr, *peer = nullptr;
  if (!nice_agent_get_selected_pair(s->agent, s->nice_id, 1, &local, &peer) || !local || !peer ||
      local->transport != NICE_CANDIDATE_TRANSPORT_UDP || local->type == NICE_CANDIDATE_TYPE_RELAYED ||
      peer->type == NICE_CANDIDATE_TYPE_RELAYED)
    return std::nullopt;
  GSocket* gs = nice_agent_get_selected_socket(s->agent, s->nice_id, 1);
  if (!gs) return std::nullopt;
  DirectPath d{g_socket_get_fd(gs), to_address(peer->addr), s->ready};
  g_object_unref(gs);
  return d;
}

void IceAgent::on_receive(NiceAgent* agent, unsigned nice_id, char* data, unsigned size) {
  StreamId id = id_of(agent, nice_id);
  if (id && callbacks_.receive) callbacks_.receive(id, reinterpret_cast<uint8_t*>(data), size);
}

bool IceAgent::is_stun(const uint8_t* data, size_t size) {
  // The header (two zero bits, the magic cookie, a length that fits), and FINGERPRINT last, as every check
  // of RFC 8445 carries: a connection's ciphertext matches that by chance with odds far below 2^-64.
  if (size < 28 || (data[0] & 0xC0) != 0 || data[4] != 0x21 || data[5] != 0x12 || data[6] != 0xA4 ||
      data[7] != 0x42)
    return false;
  const size_t length = size_t(data[2]) << 8 | data[3];
  return length + 20 == size && data[size - 8] == 0x80 && data[size - 7] == 0x28 && data[size - 6] == 0 &&
         data[size - 5] == 4;
}

namespace {
struct Credentials {
  const std::string* ufrag;
  const std::string* pwd;
};
// USERNAME of a check sent to us: "<our ufrag>:<theirs>"; the key is our password.
bool check_username(StunAgent*, StunMessage*, uint8_t* username, uint16_t length, uint8_t** password,
                    size_t* password_length, void* user_data) {
  const auto* c = static_cast<const Credentials*>(user_data);
  const std::string& ufrag = *c->ufrag;
  if (length <= ufrag.size() || username[ufrag.size()] != ':' ||
      std::memcmp(username, ufrag.data(), ufrag.size()) != 0)
    return false;
  *password = reinterpret_cast<uint8_t*>(const_cast<char*>(c->pwd->data()));
  *password_length = c->pwd->size();
  return true;
}
}  // namespace

void IceAgent::answer_check(StreamId id, const uint8_t* data, size_t size, const Address& from,
                            uint8_t* reply, size_t& reply_size) {
  reply_size = 0;
  const Stream* s = find(id);
  if (!s || s->local_ufrag.empty()) return;
  Credentials credentials{&s->local_ufrag, &s->local_pwd};
  StunMessage request;
  if (stun_agent_validate(&stun_->agent, &request, data, size, check_username, &credentials) !=
          STUN_VALIDATION_SUCCESS ||
      stun_message_get_class(&request) != STUN_REQUEST || stun_message_get_method(&request) != STUN_BINDING)
    return;
  sockaddr_storage source{};
  const socklen_t source_length = io::to_sockaddr(from, from.is_ipv4() ? AF_INET : AF_INET6, &source);
  if (source_length == 0) return;
  StunMessage response;
  size_t length = 512;
  bool controlling = s->controlling;
  // The roles were settled by the nomination. A late check that claims our role is answered as libstun
  // decides from these tie-breakers, and the role change it may report is ignored: the roles stay.
  const uint64_t tie = controlling ? UINT64_MAX : 0;
  const StunUsageIceReturn rc = stun_usage_ice_conncheck_create_reply(
      &stun_->agent, &request, &response, reply, &length, &source, source_length, &controlling, tie,
      STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
  if (rc == STUN_USAGE_ICE_RETURN_SUCCESS) reply_size = length;
}

}  // namespace peerlink::ice
