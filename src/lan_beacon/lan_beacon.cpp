// LanBeacon (include/peerlink/lan.hpp): the mDNS engine (mdns_engine.hpp) on real sockets, the rendezvous
// datagrams (lan_rendezvous.hpp) and the interface watch (lan_interfaces.hpp), served by one thread.
//
// The thread owns the engine, the sockets and the tables of what was heard; the application and the Host
// see snapshots under mutex_ (the peers, the served interfaces, the counters) and queue work into it (blobs
// to send). The sink is called with no lock of ours held.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include <avahi-common/address.h>

#include "avahi_client.hpp"
#include "beacon_records.hpp"
#include "lan_interfaces.hpp"
#include "lan_rendezvous.hpp"
#include "mdns_engine.hpp"
#include "mdns_socket.hpp"
#include "peerlink/lan.hpp"
#include "source_budget.hpp"

namespace peerlink {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const char* to_string(LanEventKind kind) {
  switch (kind) {
    case LanEventKind::kFound:
      return "found";
    case LanEventKind::kUpdated:
      return "updated";
    case LanEventKind::kLost:
      return "lost";
  }
  return "?";
}

const char* to_string(LanResponder responder) {
  switch (responder) {
    case LanResponder::kAuto:
      return "auto";
    case LanResponder::kOwn:
      return "own";
    case LanResponder::kAvahi:
      return "avahi";
  }
  return "?";
}

std::optional<LanResponder> parse_lan_responder(std::string_view text) {
  for (LanResponder r : {LanResponder::kAuto, LanResponder::kOwn, LanResponder::kAvahi})
    if (text == to_string(r)) return r;
  return std::nullopt;
}

namespace {

constexpr auto kDiscoveryWait = 3s;                 // a blob to a peer not seen yet waits this long for it
constexpr size_t kMaxWaitingPeers = 64;             // peers with blobs waiting
constexpr size_t kMaxWaitingBlobs = 16;             // per peer
constexpr size_t kMaxOutbox = 4096;                 // blobs queued by send() for the thread
constexpr size_t kMaxEvents = 4096;                 // events waiting for the application
constexpr size_t kMaxCopies = 4;                    // addresses a blob is sent to at once
constexpr auto kRescanDelay = 50ms;                 // after a netlink notice (they come in bursts)
constexpr size_t kMaxAvahiSerials = 4096;           // keys whose newest serial through avahi is remembered
constexpr double kBlobRate = 50, kBlobBurst = 100;  // rendezvous datagrams a second from one source
// From a source that already sent an authentic one: a peer setting up many connections at once (1,000
// need some 3,000 blobs). Still bounded: each forged datagram costs at most one key agreement.
constexpr double kProvenBlobRate = 2000, kProvenBlobBurst = 4000;
constexpr size_t kMaxSources = 1024;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool link_local(const in6_addr& a) {
  return IN6_IS_ADDR_LINKLOCAL(&a);
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || !name[0]) return "peerlink";
  std::string s(name);
  if (s.size() > lan::kMaxDisplayName) s.resize(lan::kMaxDisplayName);
  while (!s.empty() && !lan::valid_display_text(s))
    s.pop_back();
  return s.empty() ? "peerlink" : s;
}

}  // namespace

Result<void> LanOptions::validate() const {
  auto bad = [](const std::string& what) -> Result<void> {
    return Error{ErrorCode::kInvalidConfig, "LanOptions: " + what};
  };
  if (!identity) return bad("identity is required: the Host's (HostConfig::identity)");
  if (!lan::service_name(service))
    return bad("service '" + service + "' is not 1-15 letters, digits and hyphens");
  if (display_name.size() > lan::kMaxDisplayName)
    return bad("display_name is longer than " + std::to_string(lan::kMaxDisplayName) + " bytes");
  if (!lan::valid_display_text(display_name))
    return bad("display_name is not UTF-8 text without control characters");
  for (const auto* list : {&interfaces, &exclude_interfaces})
    for (const std::string& name : *list)
      if (name.empty() || name.size() >= 16 || name.find('/') != std::string::npos)
        return bad("'" + name + "' is not an interface name");
  if (!ipv4 && !ipv6) return bad("neither ipv4 nor ipv6");
  if (!network_key.empty() && network_key.size() < 16)
    return bad("network_key is shorter than 16 bytes (empty: none)");
  if (aliases.size() > lan::kMaxAliases)
    return bad("more than " + std::to_string(lan::kMaxAliases) + " aliases");
  for (const PeerId& alias : aliases)
    if (alias.empty() || alias.scheme() == "lan" || alias.str().size() > 200)
      return bad("alias '" + alias.str() + "' is not a PeerId of another scheme (at most 200 bytes)");
  if (ttl_seconds < lan::kMinTtlSeconds || ttl_seconds > lan::kMaxTtlSeconds)
    return bad("ttl_seconds is not within " + std::to_string(lan::kMinTtlSeconds) + "-" +
               std::to_string(lan::kMaxTtlSeconds));
  if (mdns_port == 0) return bad("mdns_port is 0");
  return {};
}

namespace {

LanOptions checked(LanOptions options) {
  if (Result<void> ok = options.validate(); !ok) throw Exception(ok.error());
  return options;
}

}  // namespace

class LanBeacon::Impl {
 public:
  explicit Impl(LanOptions options);
  ~Impl() {
    stop();
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  void start(SignalingSink& sink);
  void stop();
  void send(const PeerId& to, const void* blob, size_t size);

  PeerId local_peer() const { return local_peer_; }
  std::vector<LanPeer> peers() const;
  std::optional<LanPeer> peer(const PeerId& id) const;
  std::vector<std::string> interfaces() const;
  LanResponder responder() const;
  std::vector<PeerId> find_alias(const PeerId& alias) const;
  LanCounters counters() const;
  size_t run_callbacks();
  bool next_event(LanEvent& event, std::chrono::milliseconds timeout);
  bool wait(std::chrono::milliseconds timeout);

 private:
  struct Outbound {
    PeerId to;
    std::vector<uint8_t> blob;
  };
  struct Waiting {  // blobs for a peer not seen yet
    Clock::time_point deadline;
    std::vector<std::vector<uint8_t>> blobs;
  };

  void run();
  void log(LogLevel level, const std::string& line) const;
  void wake();
  // Reads the interfaces and serves the chosen ones (joins, engine up/down); tells the Host when the set
  // changed after the first scan.
  void rescan(Clock::time_point now, bool first);
  void read_group(int fd, Clock::time_point now);
  void read_private(int fd, Clock::time_point now);
  void on_rendezvous(const lan::Datagram& d);
  void flush_engine(Clock::time_point now);
  // Avahi mode: publishes through avahi-daemon; false (why) when it cannot be reached.
  bool start_avahi(const lan::Announcement& self, std::string* why);
  void on_avahi(Clock::time_point now);
  // The peers heard: the engine's, or avahi's.
  const std::map<PublicKey, lan::DiscoveredPeer>& table() const {
    return avahi_ ? avahi_peers_ : engine_->peers();
  }
  void send_blob(const PeerId& to, const std::vector<uint8_t>& blob, Clock::time_point now);
  // Where a blob to `key` goes: its announced addresses (one per family per link) and where its last
  // rendezvous datagram came from.
  std::vector<lan::SocketAddress> destinations(const PublicKey& key) const;
  std::optional<PublicKey> key_of(const PeerId& id) const;  // among the peers heard (thread only)
  void remember_fingerprint(const PublicKey& key, const std::string& fingerprint);
  LanPeer to_peer(const PublicKey& key, const lan::DiscoveredPeer& d) const;
  void publish(std::vector<lan::PeerEvent> events);
  void deliver(LanEvent event);
  void update_counters();

  LanOptions options_;
  Identity identity_;
  PeerId local_peer_;
  lan::dns::Name service_;
  LogLevel log_level_;

  // The thread's own.
  std::unique_ptr<lan::MdnsEngine> engine_;
  lan::MdnsSocket group_;    // port 5353, shared
  lan::MdnsSocket private_;  // our port: queries out, unicast answers and rendezvous datagrams in
  std::unique_ptr<lan::NetlinkWatch> netlink_;
  std::unique_ptr<lan::RendezvousCrypto> crypto_;
  // Avahi mode.
  std::unique_ptr<lan::AvahiService> avahi_;
  std::map<PublicKey, lan::DiscoveredPeer> avahi_peers_;
  // Every instance name avahi resolved, by (interface, protocol, name): whose records it carries and where
  // it is. A key's address on a link is its latest name's; when a name goes, another of the key's there
  // takes over: a copy of a peer's records published under another name and then withdrawn would
  // otherwise take the peer's address with it.
  struct AvahiName {
    PublicKey key;
    Address address;
  };
  std::map<std::tuple<int, int, std::string>, AvahiName> avahi_names_;
  std::map<PublicKey, uint64_t> avahi_newest_;  // newest serial per key, of at most kMaxAvahiSerials keys
  // The sighting's one address of `address`'s family becomes `address`.
  static void set_avahi_address(lan::PeerSighting& s, const Address& address);
  lan::VerifiedCache verified_;
  std::map<int, lan::LinkInfo> served_;  // by index
  std::map<PeerId, Waiting> waiting_;
  std::map<PublicKey, lan::SocketAddress> rendezvous_source_;  // where each sender's last datagram came from
  // Fingerprint -> key of every peer heard (found, or a rendezvous datagram): a PeerId's key without hashing
  // every key heard for each blob sent.
  std::map<std::string, PublicKey> fingerprints_;
  lan::SourceBudget sources_{kBlobRate, kBlobBurst, kMaxSources};  // rendezvous datagrams per source
  // Addresses authentic rendezvous datagrams came from, and their larger budget.
  std::set<std::string> proven_sources_;
  lan::SourceBudget proven_budget_{kProvenBlobRate, kProvenBlobBurst, kMaxSources};
  Clock::time_point rescan_at_ = Clock::time_point::max();
  uint64_t counter_ = 0;  // of our rendezvous datagrams
  LanCounters own_;       // the rendezvous counters
  int wake_fd_ = -1;
  SignalingSink* sink_ = nullptr;

  std::thread thread_;
  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable event_cv_;
  bool stopping_ = false;
  bool started_ = false;
  LanResponder responder_ = LanResponder::kAuto;
  std::vector<Outbound> outbox_;
  std::map<PublicKey, LanPeer> peers_;
  std::vector<std::string> interface_names_;
  LanCounters counters_;
  std::deque<LanEvent> events_;
  bool in_callbacks_ = false;
};

LanBeacon::Impl::Impl(LanOptions options)
    : options_(checked(std::move(options))), identity_(*options_.identity) {
  local_peer_ = *PeerId::parse("lan:" + identity_.fingerprint());
  service_ = *lan::service_name(options_.service);
  if (options_.display_name.empty()) options_.display_name = host_name();
  log_level_ = options_.log_level;
  if (const char* env = std::getenv("PEERLINK_LOG"))
    if (std::optional<LogLevel> level = parse_log_level(env)) log_level_ = *level;
}

void LanBeacon::Impl::log(LogLevel level, const std::string& line) const {
  if (static_cast<int>(level) > static_cast<int>(log_level_)) return;
  const std::string text = "lan " + options_.service + ": " + line;
  if (options_.log_sink) {
    options_.log_sink(level, text);
  } else {
    std::fprintf(stderr, "peerlink %s: %s\n", to_string(level), text.c_str());
  }
}

void LanBeacon::Impl::wake() {
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

void LanBeacon::Impl::start(SignalingSink& sink) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_) throw Exception(Error{ErrorCode::kAlreadyExists, "LanBeacon: already started"});
  }
  if (sink.local_key() != identity_.public_key())
    throw Exception(Error{ErrorCode::kInvalidConfig, "LanOptions::identity (" + identity_.fingerprint() +
                                                         ") is not the Host's identity (" +
                                                         Identity::fingerprint_of(sink.local_key()) +
                                                         "): give the beacon HostConfig::identity"});
  std::string why;
  if (!private_.open_private(options_.ipv4, options_.ipv6, options_.mdns_port, &why))
    throw Exception(Error{ErrorCode::kSystem, "LanBeacon: rendezvous sockets: " + why});
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw Exception(Error{ErrorCode::kSystem, "LanBeacon: eventfd failed"});
  netlink_ = std::make_unique<lan::NetlinkWatch>();
  if (netlink_->fd() < 0) log(LogLevel::kWarning, "netlink refused: interface changes are not followed");
  crypto_ = std::make_unique<lan::RendezvousCrypto>(
      identity_, std::vector<uint8_t>(options_.network_key.begin(), options_.network_key.end()));

  lan::EngineConfig config;
  config.service = service_;
  config.self.key = identity_.public_key();
  config.self.display_name = options_.display_name;
  config.self.port = private_.local_port();
  config.self.ttl = options_.ttl_seconds;
  for (const PeerId& alias : options_.aliases)
    config.self.aliases.push_back(alias.str());
  config.private_key = identity_.private_key();
  config.network_key.assign(options_.network_key.begin(), options_.network_key.end());
  config.mdns_port = options_.mdns_port;
  config.first_serial = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count());
  counter_ = config.first_serial * 1000;
  LanResponder responder = options_.responder;
  if (responder != LanResponder::kOwn) {
    lan::Announcement self = config.self;
    self.serial = config.first_serial;
    if (start_avahi(self, &why)) {
      responder = LanResponder::kAvahi;
    } else if (responder == LanResponder::kAvahi) {
      throw Exception(Error{ErrorCode::kSystem, "LanBeacon: " + why});
    } else {
      log(LogLevel::kInfo, "not through avahi (" + why + "): the beacon's own responder");
      responder = LanResponder::kOwn;
    }
  }
  if (responder == LanResponder::kOwn) {
    if (!group_.open(options_.ipv4, options_.ipv6, options_.mdns_port, &why))
      throw Exception(Error{ErrorCode::kSystem, "LanBeacon: multicast DNS sockets: " + why});
    config.ipv4 = options_.ipv4 && group_.fd4() >= 0;
    config.ipv6 = options_.ipv6 && group_.fd6() >= 0;
  }
  engine_ = std::make_unique<lan::MdnsEngine>(std::move(config));  // idle in avahi mode: no interfaces
  sink_ = &sink;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    started_ = true;
    responder_ = responder;
  }
  thread_ = std::thread([this] { run(); });
}

void LanBeacon::Impl::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  event_cv_.notify_all();
}

void LanBeacon::Impl::send(const PeerId& to, const void* blob, size_t size) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || outbox_.size() >= kMaxOutbox) return;  // best effort: the Host retransmits
    const auto* b = static_cast<const uint8_t*>(blob);
    outbox_.push_back(Outbound{to, std::vector<uint8_t>(b, b + size)});
  }
  wake();
}

void LanBeacon::Impl::run() {
  Clock::time_point now = Clock::now();
  rescan(now, true);
  flush_engine(now);  // the first queries and announcements leave now, not after the first wait
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) break;
    }
    now = Clock::now();
    Clock::time_point next = std::min(engine_->next_timer(), rescan_at_);
    for (const auto& [peer, w] : waiting_)
      next = std::min(next, w.deadline);
    int timeout_ms = -1;
    if (next != Clock::time_point::max())
      timeout_ms = next <= now
                       ? 0
                       : static_cast<int>(std::min<int64_t>(
                             std::chrono::ceil<std::chrono::milliseconds>(next - now).count(), 60000));
    pollfd fds[7];
    nfds_t n = 0;
    const int avahi_fd = avahi_ ? avahi_->wake_fd() : -1;
    for (int fd :
         {wake_fd_, group_.fd4(), group_.fd6(), private_.fd4(), private_.fd6(), netlink_->fd(), avahi_fd})
      if (fd >= 0) fds[n++] = pollfd{fd, POLLIN, 0};
    if (poll(fds, n, timeout_ms) < 0 && errno != EINTR) {
      log(LogLevel::kError, std::string("poll failed: ") + std::strerror(errno));
      break;
    }
    now = Clock::now();
    for (nfds_t i = 0; i < n; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLERR))) continue;
      const int fd = fds[i].fd;
      if (fd == wake_fd_) {
        uint64_t count = 0;
        (void)!read(wake_fd_, &count, sizeof count);
      } else if (fd == group_.fd4() || fd == group_.fd6()) {
        read_group(fd, now);
      } else if (fd == private_.fd4() || fd == private_.fd6()) {
        read_private(fd, now);
      } else if (fd == avahi_fd) {
        on_avahi(now);
      } else if (netlink_ && fd == netlink_->fd() && netlink_->drain()) {
        rescan_at_ = std::min(rescan_at_, now + kRescanDelay);
      }
    }
    if (now >= rescan_at_) rescan(now, false);
    std::vector<Outbound> outbox;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      outbox.swap(outbox_);
    }
    // What the engine learnt first: a blob to a peer found in this turn goes now.
    engine_->tick(now);
    flush_engine(now);
    for (const Outbound& o : outbox)
      send_blob(o.to, o.blob, now);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (std::optional<PublicKey> key = key_of(it->first)) {
        for (const auto& blob : it->second.blobs)
          send_blob(it->first, blob, now);
        it = waiting_.erase(it);
      } else if (now >= it->second.deadline) {
        ++own_.unreachable_reports;
        std::string names;
        for (const auto& [index, link] : served_)
          names += (names.empty() ? "" : " ") + link.name;
        sink_->peer_unreachable(it->first, "not seen on the LAN (service '" + options_.service +
                                               "', interfaces: " + (names.empty() ? "none" : names) + ")");
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
    update_counters();
  }
  engine_->goodbye();
  flush_engine(Clock::now());
  avahi_.reset();  // withdraws the service: avahi-daemon says goodbye
}

void LanBeacon::Impl::rescan(Clock::time_point now, bool first) {
  rescan_at_ = Clock::time_point::max();
  std::map<int, lan::LinkInfo> chosen;
  for (lan::LinkInfo& link : lan::read_links())
    if (lan::serves(link, options_.interfaces, options_.exclude_interfaces)) chosen[link.index] = link;
  std::string changes;
  for (auto it = served_.begin(); it != served_.end();) {
    if (chosen.count(it->first)) {
      ++it;
      continue;
    }
    if (!avahi_) {
      engine_->interface_down(it->first);
      group_.leave(it->first);
    }
    changes += (changes.empty() ? "" : ", ") + it->second.name + " gone";
    it = served_.erase(it);
  }
  for (auto& [index, link] : chosen) {
    auto old = served_.find(index);
    const bool is_new = old == served_.end();
    if (is_new) {
      std::string why;
      if (!avahi_ && !group_.join(index, &why)) {
        log(LogLevel::kWarning, "interface " + link.name + " left out: " + why);
        continue;
      }
      changes += (changes.empty() ? "" : ", ") + link.name + " up";
    } else if (!lan::same_addresses(old->second.ipv4, link.ipv4) ||
               !lan::same_addresses(old->second.ipv6, link.ipv6)) {
      changes += (changes.empty() ? "" : ", ") + link.name + " addresses";
    }
    served_[index] = link;
    if (!avahi_) engine_->interface_up(index, link.ipv4, link.ipv6, now);  // no-op when nothing changed
  }
  std::vector<std::string> names;
  for (const auto& [index, link] : served_)
    names.push_back(link.name);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    interface_names_ = names;
  }
  if (changes.empty()) return;
  log(LogLevel::kInfo, (first ? "serving: " : "interfaces changed: ") + changes);
  if (first) return;
  ++own_.interface_changes;
  sink_->network_changed("LAN interfaces: " + changes);
}

void LanBeacon::Impl::read_group(int fd, Clock::time_point now) {
  lan::Datagram d;
  for (int i = 0; i < 64 && group_.receive(fd, d); ++i)
    engine_->receive(d, now);
}

void LanBeacon::Impl::read_private(int fd, Clock::time_point now) {
  lan::Datagram d;
  for (int i = 0; i < 64 && private_.receive(fd, d); ++i) {
    if (lan::looks_like_rendezvous(d.bytes.data(), d.bytes.size())) {
      // A budget per source address (whatever its port) before any key agreement: a flood costs bounded
      // CPU.
      const std::string source = d.source.host();
      if (!sources_.take(source, now) &&
          !(proven_sources_.count(source) && proven_budget_.take(source, now))) {
        ++own_.blobs_rejected;
        continue;
      }
      on_rendezvous(d);
    } else {
      engine_->receive(d, now);  // a unicast answer to one of our queries
    }
  }
}

void LanBeacon::Impl::on_rendezvous(const lan::Datagram& d) {
  lan::RendezvousCrypto::Refusal refusal = lan::RendezvousCrypto::Refusal::kNone;
  std::optional<lan::SealedBlob> sealed = crypto_->open(d.bytes.data(), d.bytes.size(), &refusal);
  if (!sealed) {
    if (refusal == lan::RendezvousCrypto::Refusal::kReplayed) {
      ++own_.blobs_replayed;
    } else {
      ++own_.blobs_rejected;
      log(LogLevel::kDebug, "rendezvous datagram from " + d.source.str() + " refused");
    }
    return;
  }
  if (rendezvous_source_.size() >= kMaxSources && !rendezvous_source_.count(sealed->sender))
    rendezvous_source_.clear();
  rendezvous_source_[sealed->sender] = d.source;
  if (proven_sources_.size() >= kMaxSources) proven_sources_.clear();
  proven_sources_.insert(d.source.host());
  ++own_.blobs_received;
  const std::string fingerprint = Identity::fingerprint_of(sealed->sender);
  remember_fingerprint(sealed->sender, fingerprint);
  const PeerId from = *PeerId::parse("lan:" + fingerprint);
  sink_->deliver(from, sealed->blob.data(), sealed->blob.size());
}

std::optional<PublicKey> LanBeacon::Impl::key_of(const PeerId& id) const {
  auto it = fingerprints_.find(lower(id.name()));
  if (it == fingerprints_.end()) return std::nullopt;
  const PublicKey& key = it->second;
  if (!table().count(key) && !rendezvous_source_.count(key)) return std::nullopt;  // heard of, but gone
  return key;
}

void LanBeacon::Impl::remember_fingerprint(const PublicKey& key, const std::string& fingerprint) {
  if (fingerprints_.size() >= 2 * (kMaxSources + lan::kMaxPeers)) {  // bounded: forget who is gone
    for (auto it = fingerprints_.begin(); it != fingerprints_.end();)
      it = table().count(it->second) || rendezvous_source_.count(it->second) ? std::next(it)
                                                                             : fingerprints_.erase(it);
  }
  fingerprints_.emplace(fingerprint, key);
}

std::vector<lan::SocketAddress> LanBeacon::Impl::destinations(const PublicKey& key) const {
  std::vector<lan::SocketAddress> out;
  auto add = [&](const lan::SocketAddress& a) {
    if (out.size() >= kMaxCopies) return;
    for (const auto& o : out)
      if (o.length == a.length && std::memcmp(&o.storage, &a.storage, a.length) == 0) return;
    out.push_back(a);
  };
  auto source = rendezvous_source_.find(key);
  if (source != rendezvous_source_.end()) add(source->second);
  auto peer = table().find(key);
  if (peer != table().end()) {
    const uint16_t port = peer->second.announcement.port;
    for (const lan::PeerSighting& s : peer->second.interfaces) {
      if (private_.fd4() >= 0 && !s.ipv4.empty()) add(lan::SocketAddress::ipv4(s.ipv4.front(), port));
      if (private_.fd6() >= 0 && !s.ipv6.empty()) {
        // The link-local address on the link it was heard on: reachable whatever the routes say.
        auto ll = std::find_if(s.ipv6.begin(), s.ipv6.end(), link_local);
        if (ll != s.ipv6.end())
          add(lan::SocketAddress::ipv6(*ll, port, static_cast<uint32_t>(s.interface_index)));
        else
          add(lan::SocketAddress::ipv6(s.ipv6.front(), port, 0));
      }
    }
  }
  return out;
}

void LanBeacon::Impl::send_blob(const PeerId& to, const std::vector<uint8_t>& blob, Clock::time_point now) {
  const std::string name = lower(to.name());
  if (to.scheme() != "lan" || name.compare(0, 4, "pl1-") != 0) {
    ++own_.unreachable_reports;
    sink_->peer_unreachable(to, "not a LAN peer id (lan:<fingerprint>, as LanBeacon::peers() names them)");
    return;
  }
  std::optional<PublicKey> key = key_of(to);
  if (!key) {
    auto it = waiting_.find(to);
    if (it == waiting_.end()) {
      if (waiting_.size() >= kMaxWaitingPeers) {
        ++own_.unreachable_reports;
        sink_->peer_unreachable(to, "not seen on the LAN (and too many other peers awaited)");
        return;
      }
      it = waiting_.emplace(to, Waiting{now + kDiscoveryWait, {}}).first;
    }
    if (it->second.blobs.size() < kMaxWaitingBlobs) {
      it->second.blobs.push_back(blob);
      ++own_.blobs_waiting;
    }
    return;
  }
  const uint64_t wall_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                     std::chrono::system_clock::now().time_since_epoch())
                                                     .count());
  counter_ = std::max(counter_ + 1, wall_us);
  std::optional<std::vector<uint8_t>> sealed = crypto_->seal(*key, blob.data(), blob.size(), counter_);
  if (!sealed) {
    ++own_.unreachable_reports;
    sink_->peer_unreachable(to, "its key cannot be used for key agreement");
    return;
  }
  bool sent = false;
  for (const lan::SocketAddress& a : destinations(*key)) {
    std::string why;
    if (private_.send_to(a, *sealed, &why))
      sent = true;
    else
      log(LogLevel::kDebug, "rendezvous datagram not sent: " + why);
  }
  if (sent) ++own_.blobs_sent;
}

void LanBeacon::Impl::flush_engine(Clock::time_point now) {
  for (const lan::Outgoing& o : engine_->take_outgoing()) {
    std::string why;
    bool ok;
    if (!o.multicast)
      ok = group_.send_to(o.to, o.bytes, &why);
    else if (o.query)
      ok = private_.send_multicast(o.family, o.interface_index, o.bytes, &why);
    else
      ok = group_.send_multicast(o.family, o.interface_index, o.bytes, &why);
    if (!ok) log(LogLevel::kDebug, why);
  }
  (void)now;
  publish(engine_->take_events());
}

LanPeer LanBeacon::Impl::to_peer(const PublicKey& key, const lan::DiscoveredPeer& d) const {
  LanPeer p;
  p.key = key;
  p.id = *PeerId::parse("lan:" + Identity::fingerprint_of(key));
  p.display_name = d.announcement.display_name;
  p.port = d.announcement.port;
  for (const std::string& alias : d.announcement.aliases)
    if (Result<PeerId> id = PeerId::parse(alias)) p.aliases.push_back(*id);
  for (const lan::PeerSighting& s : d.interfaces) {
    LanPeer::Link link;
    link.interface_index = s.interface_index;
    auto served = served_.find(s.interface_index);
    link.interface = served != served_.end() ? served->second.name : std::to_string(s.interface_index);
    for (const in_addr& a : s.ipv4) {
      std::array<uint8_t, 4> bytes;
      std::memcpy(bytes.data(), &a, 4);
      link.addresses.push_back(Address::ipv4(bytes, 0));
    }
    for (const in6_addr& a : s.ipv6) {
      std::array<uint8_t, 16> bytes;
      std::memcpy(bytes.data(), &a, 16);
      link.addresses.push_back(
          Address::ipv6(bytes, 0, link_local(a) ? static_cast<uint32_t>(s.interface_index) : 0));
    }
    link.last_seen = s.last_seen;
    p.last_seen = std::max(p.last_seen, s.last_seen);
    p.links.push_back(std::move(link));
  }
  return p;
}

void LanBeacon::Impl::publish(std::vector<lan::PeerEvent> events) {
  std::vector<LanEvent> out;
  out.reserve(events.size());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (lan::PeerEvent& e : events) {
      LanEvent event;
      event.kind = e.kind == lan::PeerEvent::kFound     ? LanEventKind::kFound
                   : e.kind == lan::PeerEvent::kUpdated ? LanEventKind::kUpdated
                                                        : LanEventKind::kLost;
      event.peer = to_peer(e.key, e.peer);
      if (event.kind == LanEventKind::kFound) remember_fingerprint(e.key, std::string(event.peer.id.name()));
      if (event.kind == LanEventKind::kLost)
        peers_.erase(e.key);
      else
        peers_[e.key] = event.peer;
      out.push_back(std::move(event));
    }
    // last_seen moves without events: refreshed from the engine's table.
    for (auto& [key, peer] : peers_) {
      auto d = table().find(key);
      if (d != table().end())
        for (LanPeer::Link& link : peer.links)
          for (const lan::PeerSighting& s : d->second.interfaces)
            if (s.interface_index == link.interface_index) {
              link.last_seen = s.last_seen;
              peer.last_seen = std::max(peer.last_seen, s.last_seen);
            }
    }
  }
  for (LanEvent& e : out) {
    log(LogLevel::kInfo,
        std::string(to_string(e.kind)) + " " + e.peer.display_name + " (" + e.peer.id.str() + ")");
    deliver(std::move(e));
  }
}

void LanBeacon::Impl::deliver(LanEvent event) {
  if (options_.on_event && options_.callback_thread == CallbackThread::kService) {
    options_.on_event(event);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (events_.size() >= kMaxEvents) events_.pop_front();
    events_.push_back(std::move(event));
  }
  event_cv_.notify_all();
}

void LanBeacon::Impl::update_counters() {
  const lan::EngineCounters& e = engine_->counters();
  LanCounters c = own_;
  c.mdns_datagrams = e.datagrams;
  c.malformed = e.malformed;
  c.off_link = e.off_link;
  c.bad_signature = e.bad_signature + own_.bad_signature;  // own_: what avahi resolved
  c.wrong_network_key = e.wrong_network_key + own_.wrong_network_key;
  c.bad_records = e.bad_records + own_.bad_records;
  c.replayed = e.replayed + own_.replayed;
  c.rate_limited = e.source_rate_limited;
  c.peers_refused = e.peers_refused;
  c.queries_answered = e.queries_answered_unicast + e.queries_answered_multicast;
  c.multicast_sent = e.multicast_sent;
  std::lock_guard<std::mutex> lock(mutex_);
  counters_ = c;
}

std::vector<LanPeer> LanBeacon::Impl::peers() const {
  std::vector<LanPeer> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, peer] : peers_)
      out.push_back(peer);
  }
  std::sort(out.begin(), out.end(), [](const LanPeer& a, const LanPeer& b) {
    return a.display_name != b.display_name ? a.display_name < b.display_name : a.id < b.id;
  });
  return out;
}

std::optional<LanPeer> LanBeacon::Impl::peer(const PeerId& id) const {
  const std::string name = lower(id.name());
  std::lock_guard<std::mutex> lock(mutex_);
  if (id.scheme() != "lan") return std::nullopt;
  for (const auto& [key, peer] : peers_)
    if (peer.id.name() == name) return peer;
  return std::nullopt;
}

std::vector<PeerId> LanBeacon::Impl::find_alias(const PeerId& alias) const {
  std::vector<PeerId> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, peer] : peers_)
    if (std::find(peer.aliases.begin(), peer.aliases.end(), alias) != peer.aliases.end())
      out.push_back(peer.id);
  return out;
}

LanResponder LanBeacon::Impl::responder() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return responder_;
}

bool LanBeacon::Impl::start_avahi(const lan::Announcement& self, std::string* why) {
  const std::optional<std::vector<std::string>> txt =
      lan::portable_txt(service_, self, identity_.private_key(),
                        std::vector<uint8_t>(options_.network_key.begin(), options_.network_key.end()));
  if (!txt) {
    *why = "the announcement cannot be written";
    return false;
  }
  auto avahi = std::make_unique<lan::AvahiService>();
  const std::string type = "_" + options_.service + "._udp";
  if (!avahi->start(type, lan::instance_name(self), self.port, *txt, why)) return false;
  avahi_ = std::move(avahi);
  log(LogLevel::kInfo, "publishing and browsing " + type + " through avahi-daemon");
  return true;
}

void LanBeacon::Impl::on_avahi(Clock::time_point now) {
  std::vector<lan::PeerEvent> events;
  const std::vector<uint8_t> network_key(options_.network_key.begin(), options_.network_key.end());
  for (lan::AvahiNews& n : avahi_->take()) {
    if (n.kind == lan::AvahiNews::kFailed) {
      log(LogLevel::kWarning, n.detail);
      continue;
    }
    const auto name = std::make_tuple(n.interface_index, n.protocol, n.instance);
    if (n.kind == lan::AvahiNews::kRemoved) {
      auto known = avahi_names_.find(name);
      if (known == avahi_names_.end()) continue;
      const PublicKey key = known->second.key;
      avahi_names_.erase(known);
      auto p = avahi_peers_.find(key);
      if (p == avahi_peers_.end()) continue;
      const AvahiName* other = nullptr;  // another name of the key's on this link and protocol
      for (const auto& [where, named] : avahi_names_)
        if (std::get<0>(where) == n.interface_index && std::get<1>(where) == n.protocol && named.key == key)
          other = &named;
      auto& links = p->second.interfaces;
      for (auto s = links.begin(); s != links.end(); ++s) {
        if (s->interface_index != n.interface_index) continue;
        if (other) {
          set_avahi_address(*s, other->address);
        } else {
          (n.protocol == AVAHI_PROTO_INET6 ? s->ipv6.clear() : s->ipv4.clear());
          if (s->ipv4.empty() && s->ipv6.empty()) links.erase(s);
        }
        break;
      }
      if (links.empty()) {
        events.push_back(lan::PeerEvent{lan::PeerEvent::kLost, key, p->second});
        avahi_peers_.erase(p);
      } else {
        events.push_back(lan::PeerEvent{lan::PeerEvent::kUpdated, key, p->second});
      }
      continue;
    }
    if (!served_.count(n.interface_index)) continue;  // an interface the options leave out
    lan::Heard h = lan::read_portable(service_, n.port, n.txt, network_key, &verified_);
    switch (h.verdict) {
      case lan::Verdict::kMalformed:
        ++own_.bad_records;
        continue;
      case lan::Verdict::kBadSignature:
        ++own_.bad_signature;
        continue;
      case lan::Verdict::kWrongNetworkKey:
        ++own_.wrong_network_key;
        continue;
      case lan::Verdict::kOk:
        break;
    }
    const lan::Announcement& a = h.announcement;
    if (a.key == identity_.public_key()) continue;  // ourselves
    if (avahi_newest_.size() >= kMaxAvahiSerials && !avahi_newest_.count(a.key)) {
      for (auto it = avahi_newest_.begin(); it != avahi_newest_.end();)  // forget keys that are gone
        it = avahi_peers_.count(it->first) ? std::next(it) : avahi_newest_.erase(it);
    }
    uint64_t& newest = avahi_newest_[a.key];
    if (a.serial < newest) {
      ++own_.replayed;
      continue;
    }
    newest = a.serial;
    if (avahi_peers_.size() >= lan::kMaxPeers && !avahi_peers_.count(a.key)) {
      ++own_.peers_refused;
      continue;
    }
    const bool is_new = !avahi_peers_.count(a.key);
    lan::DiscoveredPeer& peer = avahi_peers_[a.key];
    peer.announcement = a;
    auto s = std::find_if(peer.interfaces.begin(), peer.interfaces.end(),
                          [&](const lan::PeerSighting& x) { return x.interface_index == n.interface_index; });
    if (s == peer.interfaces.end()) {
      peer.interfaces.push_back(lan::PeerSighting{});
      s = std::prev(peer.interfaces.end());
      s->interface_index = n.interface_index;
    }
    set_avahi_address(*s, n.address);
    s->last_seen = now;
    s->expires = Clock::time_point::max();  // avahi says when it goes
    avahi_names_[name] = AvahiName{a.key, n.address};
    events.push_back(lan::PeerEvent{is_new ? lan::PeerEvent::kFound : lan::PeerEvent::kUpdated, a.key, peer});
  }
  publish(std::move(events));
}

void LanBeacon::Impl::set_avahi_address(lan::PeerSighting& s, const Address& address) {
  if (address.is_ipv4()) {
    in_addr x{};
    std::memcpy(&x, address.bytes().data(), 4);
    s.ipv4 = {x};
  } else {
    in6_addr x{};
    std::memcpy(&x, address.bytes().data(), 16);
    s.ipv6 = {x};
  }
}

std::vector<std::string> LanBeacon::Impl::interfaces() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return interface_names_;
}

LanCounters LanBeacon::Impl::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

size_t LanBeacon::Impl::run_callbacks() {
  if (!options_.on_event || options_.callback_thread != CallbackThread::kApplication) return 0;
  std::deque<LanEvent> events;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (in_callbacks_) return 0;
    in_callbacks_ = true;
    events.swap(events_);
  }
  for (const LanEvent& e : events)
    options_.on_event(e);
  std::lock_guard<std::mutex> lock(mutex_);
  in_callbacks_ = false;
  return events.size();
}

bool LanBeacon::Impl::next_event(LanEvent& event, std::chrono::milliseconds timeout) {
  if (options_.on_event) return false;
  std::unique_lock<std::mutex> lock(mutex_);
  if (!event_cv_.wait_for(lock, timeout, [&] { return !events_.empty() || stopping_; }) || events_.empty())
    return false;
  event = std::move(events_.front());
  events_.pop_front();
  return true;
}

bool LanBeacon::Impl::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return event_cv_.wait_for(lock, timeout, [&] { return !events_.empty() || stopping_; }) && !events_.empty();
}

// --- the public class ---

LanBeacon::LanBeacon(LanOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
LanBeacon::~LanBeacon() = default;
std::vector<LanPeer> LanBeacon::peers() const {
  return impl_->peers();
}
std::optional<LanPeer> LanBeacon::peer(const PeerId& id) const {
  return impl_->peer(id);
}
std::vector<std::string> LanBeacon::interfaces() const {
  return impl_->interfaces();
}
LanCounters LanBeacon::counters() const {
  return impl_->counters();
}
size_t LanBeacon::run_callbacks() {
  return impl_->run_callbacks();
}
bool LanBeacon::next_event(LanEvent& event, std::chrono::milliseconds timeout) {
  return impl_->next_event(event, timeout);
}
bool LanBeacon::wait(std::chrono::milliseconds timeout) {
  return impl_->wait(timeout);
}
PeerId LanBeacon::local_peer() const {
  return impl_->local_peer();
}
bool LanBeacon::key_matches(const PeerId& peer, const PublicKey& key) const {
  if (peer.scheme() != "lan") return true;
  return lower(peer.name()) == Identity::fingerprint_of(key);
}
LanResponder LanBeacon::responder() const {
  return impl_->responder();
}
std::vector<PeerId> LanBeacon::find_alias(const PeerId& alias) const {
  return impl_->find_alias(alias);
}
void LanBeacon::start(SignalingSink& sink) {
  impl_->start(sink);
}
void LanBeacon::send(const PeerId& to, const void* blob, size_t size) {
  impl_->send(to, blob, size);
}
void LanBeacon::stop() {
  impl_->stop();
}

}  // namespace peerlink
