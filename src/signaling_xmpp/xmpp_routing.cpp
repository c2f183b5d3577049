// Stanzas: signaling IQs out (bare JIDs resolved through presence) and in, presence, disco#info, the
// roster, pings, and XEP-0215 STUN/TURN services.
#include <algorithm>
#include <cstring>

#include "xmpp_impl.hpp"

namespace peerlink {
namespace {

using xmpp::Jid;

// A blob waits this long for the first login before its peer is reported unreachable ...
constexpr auto kHoldWhileOffline = std::chrono::seconds(20);
// ... and kHoldWhileReconnecting (xmpp_impl.hpp) while reconnecting after a failure.
// ... and this long for presence to settle or a resource's features to be known.
constexpr auto kHoldForPresence = std::chrono::seconds(5);
constexpr auto kInFlightExpiry = std::chrono::seconds(60);
constexpr auto kQueryExpiry = std::chrono::seconds(10);
constexpr auto kServicesRetry = std::chrono::seconds(60);  // after a services query went unanswered
constexpr size_t kMaxHeld = 512;
constexpr size_t kMaxInFlight = 2048;
constexpr size_t kMaxAddressed = 4096;
constexpr size_t kMaxProbeResults = 1024;
// Signaling IQs one account may send us: a setup needs a handful; an ICE restart a few more.
constexpr double kRequestRate = 20, kRequestBurst = 60;
// Error replies, all senders together: a flood is answered only this fast, the rest dropped.
constexpr double kErrorRate = 100, kErrorBurst = 200;

bool is(const char* a, const char* b) {
  return a && std::strcmp(a, b) == 0;
}

bool take_token(double& tokens, std::chrono::steady_clock::time_point& last,
                std::chrono::steady_clock::time_point now, double rate, double burst) {
  if (last == std::chrono::steady_clock::time_point{}) tokens = burst;
  tokens = std::min(burst, tokens + std::chrono::duration<double>(now - last).count() * rate);
  last = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

std::string describe(const xmpp::StanzaError& e) {
  std::string s = e.condition;
  if (!e.text.empty()) s += " (" + e.text + ")";
  if (e.condition == "service-unavailable" || e.condition == "recipient-unavailable" ||
      e.condition == "item-not-found")
    s += ": not online, or no such account";
  return s;
}

}  // namespace

void XmppSignaling::Impl::start_session(const Jid& self, bool resumed) {
  const Clock::time_point now = Clock::now();
  if (!resumed) {
    directory_.reset(self);
    directory_.know_caps(xmpp::our_caps_ver(), true);
    in_flight_.clear();
    disco_in_flight_.clear();
    probes_.clear();
    probe_results_.clear();
    settled_ = false;
    roster_id_ = next_id("roster");
    send_raw(xmpp::roster_get_iq(roster_id_));
    send_raw(xmpp::initial_presence(-1));
    // Asked before the settling ping, so that the servers are offered to the Host before kOnline.
    services_.clear();
    credentials_ids_.clear();
    next_services_refresh_ = Clock::time_point::max();
    if (options_.external_services) ask_services();
    // The server answers this ping after the presence of every local contact has been sent to us.
    settle_id_ = next_id("settle");
    send_raw(xmpp::ping_iq(account_.domain, settle_id_));
  } else {
    settled_ = true;
  }
  try_held(now);
}

// --- blobs out ---

void XmppSignaling::Impl::route(Outgoing out, Clock::time_point now) {
  std::string why;
  std::optional<Jid> jid = Jid::parse(out.to.name(), &why);
  if (!jid) {
    unreachable(out.to, "'" + std::string(out.to.name()) + "' is not a JID: " + why);
    return;
  }
  if (phase_ == Phase::kFailed) {
    unreachable(out.to, "XMPP is not logged in: " + status().reason);
    return;
  }
  // Remembered before the blob waits, so that the answer is named as it was addressed (on_signal).
  remember_addressed(jid->full(), now);
  if (phase_ == Phase::kOnline) {
    if (jid->is_full()) {
      transmit(out.to, *jid, std::move(out.blob), now);
      return;
    }
    if (route_bare(out.to, *jid, out.blob, now, why)) return;
    if (!why.empty()) {
      unreachable(out.to, why);
      return;
    }
  }
  if (held_.size() >= kMaxHeld) {
    held_.pop_front();
    count([](XmppCounters& c) { ++c.dropped_while_offline; });
  }
  held_.push_back(Held{std::move(out.to), std::move(out.blob),
                       now + (phase_ == Phase::kOnline ? kHoldForPresence : kHoldWhileOffline), now});
}

bool XmppSignaling::Impl::route_bare(const PeerId& to, const Jid& bare, std::vector<uint8_t>& blob,
                                     Clock::time_point now, std::string& why) {
  why.clear();
  const std::string name = bare.bare();
  xmpp::PresenceDirectory::Choice choice = directory_.choose(name);
  if (choice.resource) {
    transmit(to, *choice.resource, std::move(blob), now);
    return true;
  }
  if (!settled_ || choice.pending) return false;
  if (directory_.sees_presence(name) || directory_.in_roster(name)) {
    why = directory_.explain(name);
    return false;
  }
  // Not a contact: ask the account itself, to tell "no such account" from "not sharing presence".
  auto known = probe_results_.find(name);
  if (known != probe_results_.end()) {
    why = known->second;
    return false;
  }
  for (const auto& [id, probe] : probes_)
    if (probe.bare == name) return false;
  if (probe_results_.size() >= kMaxProbeResults) probe_results_.clear();
  const std::string id = next_id("probe");
  probes_[id] = Probe{name, now};
  send_raw(xmpp::disco_info_get_iq(name, id, ""));
  return false;
}

void XmppSignaling::Impl::try_held(Clock::time_point now) {
  if (held_.empty()) return;
  std::deque<Held> waiting;
  waiting.swap(held_);
  for (Held& h : waiting) {
    if (phase_ != Phase::kOnline) {
      // Retrying after a failed attempt (the server lost, or a first login that failed): the server is down,
      // and a setup should know soon (a fallback may take it on, HostConfig::signaling_fallback).
      const bool reconnecting = status().state == XmppState::kReconnecting;
      if (now >= h.deadline || (reconnecting && now >= h.since + kHoldWhileReconnecting))
        unreachable(h.to, "XMPP is not logged in (" + status().reason + ")");
      else
        held_.push_back(std::move(h));
      continue;
    }
    std::optional<Jid> jid = Jid::parse(h.to.name());
    if (jid->is_full()) {
      transmit(h.to, *jid, std::move(h.blob), now);
      continue;
    }
    std::string why;
    if (route_bare(h.to, *jid, h.blob, now, why)) continue;
    if (!why.empty()) {
      unreachable(h.to, why);
    } else if (now >= h.deadline) {
      unreachable(h.to, "no resource of " + jid->bare() + " that runs peerlink signaling answered in time (" +
                            directory_.explain(jid->bare()) + ")");
    } else {
      held_.push_back(std::move(h));
    }
  }
}

void XmppSignaling::Impl::transmit(const PeerId& to, const Jid& jid, std::vector<uint8_t> blob,
                                   Clock::time_point now) {
  const std::string id = next_id("s");
  const std::string stanza = xmpp::signal_iq(jid.full(), id, blob.data(), blob.size());
  send_raw(stanza);
  count([&](XmppCounters& c) {
    ++c.blobs_sent;
    c.stanza_bytes_sent += stanza.size();
  });
  if (in_flight_.size() >= kMaxInFlight) {  // the oldest goes (ids do not sort by age: "s10" < "s9")
    in_flight_.erase(std::min_element(in_flight_.begin(), in_flight_.end(), [](const auto& a, const auto& b) {
      return a.second.sent < b.second.sent;
    }));
  }
  in_flight_[id] = InFlight{to, jid, std::move(blob), now};
}

void XmppSignaling::Impl::unreachable(const PeerId& to, const std::string& detail) {
  count([](XmppCounters& c) { ++c.unreachable_reports; });
  log(LogLevel::kInfo, to.str() + " is unreachable: " + detail);
  sink_->peer_unreachable(to, detail);
}

void XmppSignaling::Impl::remember_addressed(const std::string& jid, Clock::time_point now) {
  if (addressed_.size() >= kMaxAddressed && !addressed_.count(jid)) {
    auto oldest = addressed_.begin();
    for (auto it = addressed_.begin(); it != addressed_.end(); ++it)
      if (it->second < oldest->second) oldest = it;
    addressed_.erase(oldest);
  }
  addressed_[jid] = now;
}

// --- stanzas in ---

void XmppSignaling::Impl::on_stanza(xmpp_stanza_t* stanza) {
  last_received_ = Clock::now();
  const char* name = xmpp_stanza_get_name(stanza);
  if (is(name, "iq")) {
    on_iq(stanza, xmpp_stanza_get_type(stanza), xmpp_stanza_get_id(stanza), xmpp_stanza_get_from(stanza));
  } else if (is(name, "presence")) {
    on_presence(stanza, xmpp_stanza_get_from(stanza));
  }
  // Messages are none of ours: the plugin sends none and ignores all.
}

void XmppSignaling::Impl::reply(const std::string& stanza) {
  send_raw(stanza);
  count([&](XmppCounters& c) { c.stanza_bytes_sent += stanza.size(); });
}

void XmppSignaling::Impl::reply_error(const char* to, const char* id, const char* type,
                                      const char* condition) {
  // Beyond the budget the request is dropped unanswered: answering a flood would flood the server.
  if (take_token(error_bucket_.tokens, error_bucket_.last, Clock::now(), kErrorRate, kErrorBurst))
    reply(xmpp::error_iq(to ? to : "", id, type, condition));
}

void XmppSignaling::Impl::on_iq(xmpp_stanza_t* iq, const char* type, const char* id, const char* from) {
  if (!type || !id) return;  // nothing to answer, and nothing we asked
  if (is(type, "result") || is(type, "error")) {
    on_iq_answer(iq, is(type, "error"), id, from);
    return;
  }
  if (!is(type, "get") && !is(type, "set")) return;
  // Requests of any kind (signaling, pings, disco) count against their sender's rate.
  std::optional<Jid> sender = from ? Jid::parse(from) : std::nullopt;
  if (!allow_request(sender ? sender->bare() : std::string(), Clock::now())) {
    count([](XmppCounters& c) { ++c.requests_limited; });
    reply_error(from, id, "wait", "resource-constraint");
    return;
  }
  if (is(type, "set") && xmpp_stanza_get_child_by_name_and_ns(iq, "signal", xmpp::kSignalNs)) {
    on_signal(iq, id, from);
    return;
  }
  if (is(type, "get") && xmpp_stanza_get_child_by_name_and_ns(iq, "ping", xmpp::kPingNs)) {
    reply(xmpp::result_iq(from ? from : "", id));
    count([](XmppCounters& c) { ++c.pings_answered; });
    return;
  }
  if (is(type, "get")) {
    if (xmpp_stanza_t* q = xmpp_stanza_get_child_by_name_and_ns(iq, "query", xmpp::kDiscoInfoNs)) {
      const char* node = xmpp_stanza_get_attribute(q, "node");
      const std::string ours = std::string(xmpp::kCapsNode) + "#" + xmpp::our_caps_ver();
      if (!node || ours == node) {
        reply(xmpp::disco_info_result_iq(from ? from : "", id, node ? node : ""));
      } else {
        reply_error(from, id, "cancel", "item-not-found");
      }
      return;
    }
  }
  if (is(type, "set") && xmpp_stanza_get_child_by_name_and_ns(iq, "query", xmpp::kRosterNs)) {
    // A roster push: only from our own account (RFC 6121 §2.1.6); anyone else's is refused.
    std::optional<Jid> f = from ? Jid::parse(from) : std::nullopt;
    if (!from || (f && f->bare() == directory_.self().bare())) {
      apply_roster(iq);
      reply(xmpp::result_iq(from ? from : "", id));
      return;
    }
  }
  count([](XmppCounters& c) { ++c.unknown_iqs_refused; });
  reply_error(from, id, "cancel", "service-unavailable");
}

void XmppSignaling::Impl::on_signal(xmpp_stanza_t* iq, const char* id, const char* from) {
  std::optional<Jid> sender = from ? Jid::parse(from) : std::nullopt;
  Result<PeerId> exact = PeerId::parse("xmpp:" + (sender ? sender->full() : std::string()));
  if (!sender || !exact) {  // no sender, or one too long for a PeerId
    count([](XmppCounters& c) { ++c.invalid_stanzas; });
    reply_error(from, id, "modify", "jid-malformed");
    return;
  }
  std::vector<uint8_t> blob;
  const xmpp::SignalDecode d = xmpp::decode_signal(iq, kMaxSignalingBlob, blob);
  if (d != xmpp::SignalDecode::kOk) {
    count([](XmppCounters& c) { ++c.invalid_stanzas; });
    log(LogLevel::kDebug, std::string("refused a signaling IQ from ") + from + ": " + xmpp::to_string(d));
    reply_error(from, id, "modify", "bad-request");
    return;
  }
  reply(xmpp::result_iq(from, id));
  count([](XmppCounters& c) { ++c.blobs_received; });
  // Name the sender as the application addresses it: the full JID if it connected to that resource (or
  // it is another resource of our own account, which the bare JID would not name), else the bare JID.
  const Jid& self = directory_.self();
  const bool by_full = addressed(sender->full()) ||
                       (!addressed(sender->bare()) && sender->bare() == self.bare()) || !sender->is_full();
  const PeerId as = by_full ? *exact : *PeerId::parse("xmpp:" + sender->bare());
  if (sender->is_full()) directory_.signaled_from(*sender);
  sink_->deliver(as, blob.data(), blob.size(), *exact);
}

void XmppSignaling::Impl::apply_roster(xmpp_stanza_t* iq) {
  if (auto items = xmpp::parse_roster(iq)) {
    for (const xmpp::RosterItem& item : *items)
      if (std::optional<Jid> j = Jid::parse(item.jid))
        directory_.set_roster_item(j->bare(), item.subscription);
  }
}

void XmppSignaling::Impl::on_iq_answer(xmpp_stanza_t* iq, bool error, const std::string& id,
                                       const char* from) {
  const Clock::time_point now = Clock::now();
  // An answer counts only from whom we asked (RFC 6120 §8.1.2.1): anyone may send a result or an error with
  // an id of ours, and a peer we signal sees our ids. Our server answers for our own account without a
  // 'from', or from our JID or its domain.
  const std::optional<Jid> responder = from ? Jid::parse(from) : std::nullopt;
  if (from && !responder) return;
  auto by = [&](const Jid& asked) { return responder && *responder == asked; };
  auto refuse = [this] { count([](XmppCounters& c) { ++c.answers_refused; }); };
  const bool by_server =
      !responder ||
      (responder->local.empty() && responder->resource.empty() && responder->domain == account_.domain) ||
      responder->bare() == directory_.self().bare();
  if (!by_server &&
      (id == ping_id_ || id == settle_id_ || id == roster_id_ || id == services_id_ ||
       std::find(credentials_ids_.begin(), credentials_ids_.end(), id) != credentials_ids_.end()))
    return refuse();
  if (id == ping_id_) {
    ping_id_.clear();
    return;
  }
  if (id == settle_id_) {
    settle_id_.clear();
    settled_ = true;
    set_status(XmppState::kOnline, XmppFailure::kNone, "");
    try_held(now);
    return;
  }
  if (id == roster_id_) {
    roster_id_.clear();
    if (!error) apply_roster(iq);
    return;
  }
  if (auto it = in_flight_.find(id); it != in_flight_.end()) {
    if (!by(it->second.jid)) return refuse();  // its server answers for it with its JID too (RFC 6120 §8.3.1)
    InFlight f = std::move(it->second);
    in_flight_.erase(it);
    if (!error) return;
    const xmpp::StanzaError e = xmpp::parse_stanza_error(iq);
    // Only a cancel says the resource is gone or takes no signaling; "wait" (its rate limit) and "modify"
    // (this blob) say nothing about the next one.
    if (e.type != "wait" && e.type != "modify") directory_.failed(f.jid);
    std::optional<Jid> addressed_as = Jid::parse(f.to.name());
    if (addressed_as && !addressed_as->is_full()) {
      // The resource chosen for a bare JID is gone: another one may do.
      xmpp::PresenceDirectory::Choice c = directory_.choose(addressed_as->bare());
      if (c.resource && !(*c.resource == f.jid)) {
        transmit(f.to, *c.resource, std::move(f.blob), now);
        return;
      }
    }
    unreachable(f.to, f.jid.full() + ": " + describe(e));
    return;
  }
  if (auto it = disco_in_flight_.find(id); it != disco_in_flight_.end()) {
    if (!by(it->second.resource)) return refuse();
    DiscoAsked asked = std::move(it->second);
    disco_in_flight_.erase(it);
    std::optional<xmpp::DiscoInfo> info = error ? std::nullopt : xmpp::parse_disco_info(iq);
    if (!info) {
      directory_.features_failed(asked.resource);
    } else {
      const bool verified =
          !asked.caps_ver.empty() && !info->has_forms && xmpp::caps_ver(*info) == asked.caps_ver;
      directory_.set_features(asked.resource, info->has_feature(xmpp::kSignalNs),
                              verified ? asked.caps_ver : "");
    }
    try_held(now);
    return;
  }
  if (auto it = probes_.find(id); it != probes_.end()) {
    if (!responder || responder->full() != it->second.bare) return refuse();
    const std::string bare = it->second.bare;
    probes_.erase(it);
    probe_results_[bare] = error ? bare + ": no such account, or it is not a contact of " +
                                       directory_.self().bare() + " (" +
                                       xmpp::parse_stanza_error(iq).condition + ")"
                                 : directory_.explain(bare);
    try_held(now);
    return;
  }
  if (id == services_id_ ||
      std::find(credentials_ids_.begin(), credentials_ids_.end(), id) != credentials_ids_.end()) {
    const bool credentials = id != services_id_;
    if (credentials)
      credentials_ids_.erase(std::find(credentials_ids_.begin(), credentials_ids_.end(), id));
    else
      services_id_.clear();
    std::optional<std::vector<xmpp::ExternalService>> list = error ? std::nullopt : xmpp::parse_services(iq);
    if (!list) {
      if (!credentials) {
        log(LogLevel::kDebug, "the server offers no STUN/TURN services (XEP-0215)");
        return;
      }
    } else if (!credentials) {
      services_ = std::move(*list);
      for (const xmpp::ExternalService& s : services_) {
        if (s.restricted && s.username.empty() && (s.type == "turn" || s.type == "stun")) {
          const std::string cid = next_id("cred");
          credentials_ids_.push_back(cid);
          services_asked_ = Clock::now();
          send_raw(xmpp::credentials_get_iq(account_.domain, cid, s.type, s.host, s.port));
        }
      }
    } else {
      for (const xmpp::ExternalService& c : *list) {
        for (xmpp::ExternalService& s : services_) {
          if (s.type == c.type && s.host == c.host && (c.port == 0 || s.port == c.port)) {
            s.username = c.username;
            s.password = c.password;
            if (c.expires) s.expires = c.expires;
          }
        }
      }
    }
    if (credentials_ids_.empty()) offer_services(services_);
    return;
  }
}

void XmppSignaling::Impl::on_presence(xmpp_stanza_t* presence, const char* from) {
  if (!from) return;
  std::optional<Jid> jid = Jid::parse(from);
  if (!jid) return;
  const std::string bare = jid->bare();
  // Presence is tracked for contacts, our own account and accounts we addressed: a stranger's directed
  // presence would otherwise grow the directory and cost a disco#info each.
  if (!directory_.in_roster(bare) && bare != directory_.self().bare() && !addressed(bare)) return;
  const xmpp::PresenceInfo info = xmpp::parse_presence(presence);
  const Clock::time_point now = Clock::now();
  if (info.kind == xmpp::PresenceInfo::kAvailable && jid->is_full()) {
    const std::string ver = info.caps_hash == "sha-1" ? info.caps_ver : "";
    if (directory_.available(*jid, info.priority, ver, now)) ask_features(*jid, info.caps_node, ver);
  } else if (info.kind == xmpp::PresenceInfo::kUnavailable) {
    directory_.unavailable(*jid);
  }
  try_held(now);
}

void XmppSignaling::Impl::ask_features(const Jid& full, const std::string& caps_node,
                                       const std::string& caps_ver) {
  const std::string id = next_id("disco");
  disco_in_flight_[id] = DiscoAsked{full, caps_ver, Clock::now()};
  const std::string node = !caps_node.empty() && !caps_ver.empty() ? caps_node + "#" + caps_ver : "";
  send_raw(xmpp::disco_info_get_iq(full.full(), id, node));
}

// --- XEP-0215 ---

void XmppSignaling::Impl::ask_services() {
  services_id_ = next_id("services");
  services_asked_ = Clock::now();
  next_services_refresh_ = Clock::time_point::max();
  send_raw(xmpp::services_get_iq(account_.domain, services_id_));
}

void XmppSignaling::Impl::offer_services(const std::vector<xmpp::ExternalService>& services) {
  std::vector<StunServer> stun;
  std::vector<TurnServer> turn;
  std::optional<std::chrono::system_clock::time_point> earliest;
  for (const xmpp::ExternalService& s : services) {
    const uint16_t port = s.port ? s.port : 3478;
    if (s.type == "stun" && (s.transport.empty() || s.transport == "udp")) {
      stun.push_back(StunServer{s.host, port});
    } else if (s.type == "turn" && (s.transport.empty() || s.transport == "udp" || s.transport == "tcp")) {
      if (s.username.empty()) continue;  // no credentials came for it
      TurnServer t;
      t.host = s.host;
      t.port = port;
      t.transport = s.transport == "tcp" ? TurnTransport::kTcp : TurnTransport::kUdp;
      t.username = s.username;
      t.password = s.password;
      turn.push_back(std::move(t));
      if (s.expires && (!earliest || *s.expires < *earliest)) earliest = s.expires;
    }
    // "turns" (TURN over TLS) is left out: libnice does not do TLS to TURN servers (DESIGN §7).
  }
  sink_->offer_ice_servers(stun, turn);
  std::string line = "the server offers " + std::to_string(stun.size()) + " STUN and " +
                     std::to_string(turn.size()) + " TURN servers (XEP-0215)";
  if (earliest) {
    const auto left =
        std::chrono::duration_cast<std::chrono::seconds>(*earliest - std::chrono::system_clock::now());
    // Refresh at half the credentials' remaining life, not sooner than 5 s from now.
    const auto refresh = std::max<std::chrono::milliseconds>(std::chrono::seconds(5), left / 2);
    next_services_refresh_ = Clock::now() + refresh;
    line += "; credentials valid for " + std::to_string(left.count()) + " s, refreshed in " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(refresh).count()) + " s";
  }
  log(LogLevel::kInfo, line);
}

// --- limits and expiry ---

bool XmppSignaling::Impl::allow_request(const std::string& from_bare, Clock::time_point now) {
  if (request_buckets_.size() > 1024) {
    for (auto it = request_buckets_.begin(); it != request_buckets_.end();)
      it = now - it->second.last > std::chrono::seconds(10) ? request_buckets_.erase(it) : std::next(it);
  }
  Bucket& b = request_buckets_[from_bare];
  return take_token(b.tokens, b.last, now, kRequestRate, kRequestBurst);
}

void XmppSignaling::Impl::expire(Clock::time_point now) {
  if (phase_ != Phase::kOnline) try_held(now);
  for (auto it = in_flight_.begin(); it != in_flight_.end();)
    it = now - it->second.sent > kInFlightExpiry ? in_flight_.erase(it) : std::next(it);
  for (auto it = disco_in_flight_.begin(); it != disco_in_flight_.end();) {
    if (now - it->second.sent > kQueryExpiry) {
      directory_.features_failed(it->second.resource);
      it = disco_in_flight_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = probes_.begin(); it != probes_.end();)
    it = now - it->second.sent > kQueryExpiry ? probes_.erase(it) : std::next(it);
  // A services or credentials query the server never answered: what came is offered, and the list is asked
  // for again later, instead of no refresh for the rest of the session.
  if ((!services_id_.empty() || !credentials_ids_.empty()) && now - services_asked_ > kQueryExpiry) {
    log(LogLevel::kDebug, "the server did not answer a STUN/TURN services query (XEP-0215)");
    const bool credentials = !credentials_ids_.empty();
    services_id_.clear();
    credentials_ids_.clear();
    if (credentials) offer_services(services_);
    if (next_services_refresh_ == Clock::time_point::max()) next_services_refresh_ = now + kServicesRetry;
  }
}

}  // namespace peerlink
