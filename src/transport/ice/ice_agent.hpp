// ICE through libnice: one stream (one component) per peer-to-peer connection, on the Host's GMainContext.
//
// libnice keeps the ICE role (controlling or controlled) per agent, not per stream (a role conflict flips
// the whole agent), while a Host offers some connections and answers others. So an IceAgent holds two
// NiceAgents: the controlling one for the streams of connections this Host answers, the controlled one for
// those it offers; both sides of a connection are then always in opposite roles. Stream ids are ours.
//
// Service thread only: every method, and every callback, runs on the thread that iterates the context.
// Callbacks are called from inside libnice (during a method call, or when the context dispatches) and must
// not call back into the IceAgent except through the queue they feed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "peerlink/connection.hpp"
#include "peerlink/ice.hpp"
#include "transport/ice/candidate.hpp"

typedef struct _GMainContext GMainContext;
typedef struct _NiceAgent NiceAgent;

namespace peerlink::ice {

using StreamId = uint32_t;  // 0 is never valid
struct StunState;

enum class StreamState : uint8_t { kConnected, kFailed };

struct IceCallbacks {
  // Every local candidate so far (filtered by IceConfig::candidates), and whether gathering is done.
  std::function<void(StreamId, const std::vector<Candidate>&, bool done)> local_candidates;
  std::function<void(StreamId, StreamState)> state;
  // A connected stream's selected pair changed (a better pair was nominated).
  std::function<void(StreamId)> selected_pair;
  // A connected stream's pair became ready, or stopped being ready (see DirectPath): direct_path() changed.
  std::function<void(StreamId)> ready_changed;
  // A datagram arrived on the stream. data may be modified.
  std::function<void(StreamId, uint8_t* data, size_t size)> receive;
};

class IceAgent {
 public:
  // Throws std::runtime_error if libnice refuses to make an agent. Server names in config must already be
  // numeric addresses (see resolve_servers).
  IceAgent(GMainContext* context, const IceConfig& config, IceCallbacks callbacks);
  ~IceAgent();
  IceAgent(const IceAgent&) = delete;
  IceAgent& operator=(const IceAgent&) = delete;

  // SO_RCVBUF / SO_SNDBUF for the socket of each selected pair (libnice leaves the system default, which
  // drops datagrams at full speed). 0: leave them.
  void set_socket_buffer_bytes(int bytes) { socket_buffer_bytes_ = bytes; }

  // Reads the machine's interfaces again. When their addresses changed (an interface came or went), the
  // streams added or restarted from now on gather from the new ones (libnice fixes an agent's local
  // addresses when it is made, so new agents are made; the old ones serve their streams until those are
  // restarted or removed). When no usable address is left, nothing changes. True if it changed.
  bool refresh_interfaces();

  // New STUN/TURN servers (numeric addresses) for the streams added or restarted from now on.
  void set_servers(const std::vector<StunServer>& stun, const std::vector<TurnServer>& turn);

  // A new stream; controlling = this side answers the connection. Starts gathering. 0 on failure (error;
  // when the process ran out of file descriptors, *out_of_descriptors is set and error says so).
  StreamId add_stream(bool controlling, std::string& ufrag, std::string& pwd, std::string* error,
                      bool* out_of_descriptors = nullptr);
  // ICE restart: the stream starts over in the same role under the same id, with new credentials, new
  // sockets and a new gathering (so a changed NAT mapping or interface is found, the latter after
  // refresh_interfaces(); the old TURN allocation is released). Until it connects again, send() drops. False
  // (error) if libnice refuses; the stream is then gone.
  bool restart(StreamId stream, std::string& ufrag, std::string& pwd, std::string* error,
               bool* out_of_descriptors = nullptr);
  // The peer's credentials and candidates (cumulative: the ones already given are skipped).
  void set_remote(StreamId stream, const std::string& ufrag, const std::string& pwd,
                  const std::vector<Candidate>& candidates, bool end_of_candidates);
  // Bytes sent, or -1 (not connected, or the socket refused).
  int send(StreamId stream, const uint8_t* data, size_t size);
  void remove_stream(StreamId stream);
  bool connected(StreamId stream) const;
  // The selected pair as a plain UDP socket and destination, when it is one (not relayed, not TCP): the
  // Host may then send on it itself, batched (libnice sends one datagram per call). The fd belongs to
  // libnice and is valid until the stream is removed or restarted, or its selected pair changes.
  // ready: ICE is done with the pair (nominated, checks over), so the Host may take the datagrams from
  // remote off libnice's socket with a connected socket of its own (UdpSocket::open_connected), answering
  // the peer's checks on it with answer_check(). Before that, libnice still needs the responses to its
  // checks on this pair.
  struct DirectPath {
    int fd = -1;
    Address remote;
    bool ready = false;
  };
  std::optional<DirectPath> direct_path(StreamId stream) const;
  // The selected pair: its route type, and its local and remote candidates' addresses (a relayed local
  // candidate's is the address the TURN server relays for us). kNone before the stream connects.
  struct SelectedRoute {
    RouteType type = RouteType::kNone;
    Address local, remote;
  };
  SelectedRoute route(StreamId stream) const;
  // Whether a datagram read off a stream's path is a STUN message (RFC 5389 header and FINGERPRINT), which
  // the Host hands to answer_check() rather than to the connection.
  static bool is_stun(const uint8_t* data, size_t size);
  // A STUN message that came from `from` on the stream's direct path: a connectivity check of the peer with
  // this stream's credentials gets its success response in reply (reply_size set; room for 512 bytes),
  // anything else (responses, indications, checks that fail authentication) is dropped (reply_size 0).
  void answer_check(StreamId stream, const uint8_t* data, size_t size, const Address& from, uint8_t* reply,
                    size_t& reply_size);
  size_t stream_count() const { return streams_.size(); }
  // Why a stream may have found no path, for the end text of a failed connection: the STUN/TURN servers
  // that gave no candidate, and how many candidates each side had. "" for an unknown stream.
  std::string diagnosis(StreamId stream) const;

  // Replaces server names by numeric addresses (getaddrinfo; blocking). False and error if one fails.
  static bool resolve_servers(IceConfig& config, std::string* error);

 private:
  struct Stream {
    NiceAgent* agent = nullptr;
    bool controlling = false;
    unsigned nice_id = 0;
    // Written by libnice's callbacks on the service thread (inside the GLib dispatch, with the Host's lock
    // released), read by send(), which application threads reach through a kNoNagle send: atomic.
    std::atomic<bool> connected{false};
    bool failed = false;
    bool ready = false;  // libnice reported READY (see DirectPath)
    bool gathering_done = false;
    std::string local_ufrag, local_pwd;
    bool got_reflexive = false;  // gathered (offered or not)
    bool got_relay = false;
    std::vector<Candidate> local;
    std::vector<Candidate> remote_given;
    std::string remote_ufrag;
    bool remote_done = false;
  };
  struct AgentState;

  NiceAgent* make_agent(bool controlling);
  // The addresses host candidates come from: the allowed interfaces' (IPv6 link-local ones left out).
  std::vector<Address> usable_addresses() const;
  // An agent that is no longer the current one of its role and has no stream left is freed.
  void release_if_idle(NiceAgent* agent);
  void free_agent(NiceAgent* agent);
  bool open_stream(StreamId id, NiceAgent* agent, std::string& ufrag, std::string& pwd, std::string* error,
                   bool* out_of_descriptors);
  bool uses_stun() const;
  void apply_stun_server(NiceAgent* agent);
  Stream* find(StreamId id);
  const Stream* find(StreamId id) const;
  StreamId id_of(NiceAgent* agent, unsigned nice_id) const;  // 0 if not ours
  uint64_t nice_key(NiceAgent* agent, unsigned nice_id) const {
    // The agent's number (two agents, a few more for a moment after an interface change: a short scan).
    for (const AgentSlot& slot : agents_)
      if (slot.agent == agent) return slot.number << 32 | nice_id;
    return UINT64_MAX;  // not an agent of ours: matches nothing
  }
  bool offered(const Candidate& c) const;

  // libnice signal handlers (static trampolines in the .cpp).
  friend struct Signals;
  void on_candidate(NiceAgent* agent, void* candidate);
  void on_gathering_done(NiceAgent* agent, unsigned nice_id);
  void on_state(NiceAgent* agent, unsigned nice_id, unsigned state);
  void on_selected_pair(NiceAgent* agent, unsigned nice_id);
  void tune_selected_socket(NiceAgent* agent, unsigned nice_id);
  void on_receive(NiceAgent* agent, unsigned nice_id, char* data, unsigned size);

  GMainContext* context_;
  // Agents being closed (nice_agent_close_async) whose closing has not completed: libnice completes it on
  // context_, and keeps the context (and its wake-up descriptor) until then. Shared with the callbacks.
  std::shared_ptr<int> closing_ = std::make_shared<int>(0);
  IceConfig config_;
  IceCallbacks callbacks_;
  NiceAgent* controlling_ = nullptr;  // the current agent of each role: new and restarted streams go there
  NiceAgent* controlled_ = nullptr;
  struct AgentSlot {
    NiceAgent* agent;
    uint64_t number;  // unique for the IceAgent's life
  };
  std::vector<AgentSlot> agents_;  // every live agent: the current two and those with streams left
  uint64_t next_agent_number_ = 1;
  std::vector<Address> addresses_;  // what the current agents were given
  std::unordered_map<StreamId, Stream> streams_;
  std::unordered_map<uint64_t, StreamId> by_nice_id_;  // nice_key -> our id (per datagram: no scan)
  StreamId next_id_ = 1;
  int socket_buffer_bytes_ = 0;
  std::unique_ptr<StunState> stun_;  // for answer_check()
  size_t local_addresses_ = 0;       // given to libnice by the newest agent
};

}  // namespace peerlink::ice
