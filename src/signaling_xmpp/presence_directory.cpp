#include "presence_directory.hpp"

#include <algorithm>

namespace peerlink::xmpp {

void PresenceDirectory::reset(const Jid& self) {
  ++generation_;
  self_ = self;
  accounts_.clear();
  strangers_.clear();
}

void PresenceDirectory::set_roster_item(const std::string& bare, const std::string& subscription) {
  if (subscription == "remove") {
    auto it = accounts_.find(bare);
    if (it != accounts_.end()) it->second.subscription.clear();
    return;
  }
  accounts_[bare].subscription = subscription;
}

bool PresenceDirectory::in_roster(const std::string& bare) const {
  auto it = accounts_.find(bare);
  return it != accounts_.end() && !it->second.subscription.empty();
}

bool PresenceDirectory::sees_presence(const std::string& bare) const {
  if (bare == self_.bare()) return true;  // the server always shows our own account's resources
  auto it = accounts_.find(bare);
  return it != accounts_.end() && (it->second.subscription == "to" || it->second.subscription == "both");
}

bool PresenceDirectory::available(const Jid& full, int priority, const std::string& caps_ver,
                                  Clock::time_point now) {
  ++generation_;
  if (!full.is_full() || full == self_) return false;
  Account& a = accounts_[full.bare()];
  auto [it, added] = a.resources.try_emplace(full.resource);
  Resource& r = it->second;
  r.priority = priority;
  if (added) r.since = now;
  // It announced itself again: an error reply's verdict (failed()) is over.
  r.refused = false;
  if (r.caps_ver != caps_ver || added) {
    r.caps_ver = caps_ver;
    r.features = Resource::kUnknown;
  }
  if (features_of(r) != Resource::kUnknown) return false;
  r.features = Resource::kAsked;
  return true;
}

void PresenceDirectory::unavailable(const Jid& jid) {
  ++generation_;
  auto it = accounts_.find(jid.bare());
  if (it == accounts_.end()) return;
  Account& a = it->second;
  if (jid.is_full()) {
    a.resources.erase(jid.resource);
    if (a.sticky == jid.resource) a.sticky.clear();
  } else {
    a.resources.clear();
    a.sticky.clear();
  }
}

void PresenceDirectory::set_features(const Jid& full, bool has_signaling, const std::string& verified_ver) {
  ++generation_;
  if (!verified_ver.empty()) caps_[verified_ver] = has_signaling;
  auto it = accounts_.find(full.bare());
  if (it == accounts_.end()) return;
  auto r = it->second.resources.find(full.resource);
  if (r != it->second.resources.end()) r->second.features = has_signaling ? Resource::kYes : Resource::kNo;
}

void PresenceDirectory::features_failed(const Jid& full) {
  set_features(full, false, {});
}

void PresenceDirectory::know_caps(const std::string& ver, bool has_signaling) {
  ++generation_;
  caps_[ver] = has_signaling;
}

void PresenceDirectory::signaled_from(const Jid& full) {
  if (!full.is_full()) return;
  auto [it, added] = accounts_.try_emplace(full.bare());
  it->second.sticky = full.resource;
  auto stranger = strangers_.find(full.bare());
  if (!added && stranger == strangers_.end()) return;  // known another way
  if (stranger != strangers_.end()) {
    stranger->second = ++signal_count_;
    return;
  }
  strangers_[full.bare()] = ++signal_count_;
  if (strangers_.size() <= kMaxStrangers) return;
  auto oldest = std::min_element(strangers_.begin(), strangers_.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
  auto old = accounts_.find(oldest->first);
  // Still a stranger (no roster item, no presence since): forgotten. Else it is known another way now.
  if (old != accounts_.end() && old->second.subscription.empty() && old->second.resources.empty())
    accounts_.erase(old);
  strangers_.erase(oldest);
}

void PresenceDirectory::failed(const Jid& full) {
  ++generation_;
  auto it = accounts_.find(full.bare());
  if (it == accounts_.end()) return;
  Account& a = it->second;
  if (a.sticky == full.resource) a.sticky.clear();
  auto r = a.resources.find(full.resource);
  if (r != a.resources.end()) r->second.refused = true;
}

PresenceDirectory::Resource::Features PresenceDirectory::features_of(const Resource& r) const {
  if (r.refused) return Resource::kNo;
  if (r.features == Resource::kYes || r.features == Resource::kNo) return r.features;
  if (!r.caps_ver.empty()) {
    auto c = caps_.find(r.caps_ver);
    if (c != caps_.end()) return c->second ? Resource::kYes : Resource::kNo;
  }
  return r.features;
}

PresenceDirectory::Choice PresenceDirectory::choose(const std::string& bare) const {
  Choice choice;
  auto it = accounts_.find(bare);
  if (it == accounts_.end()) return choice;
  const Account& a = it->second;
  auto candidate = [&](const std::string& resource) {
    Jid j = *Jid::parse(bare);
    j.resource = resource;
    return j;
  };
  if (!a.sticky.empty()) {
    auto r = a.resources.find(a.sticky);
    // A sticky resource we have no presence for (a stranger, or presence not shared) is still the one
    // that talked to us; one whose presence says it lacks the feature is not.
    if (r == a.resources.end() || features_of(r->second) != Resource::kNo) {
      choice.resource = candidate(a.sticky);
      return choice;
    }
  }
  const Resource* best = nullptr;
  const std::string* best_name = nullptr;
  for (const auto& [name, r] : a.resources) {
    const Resource::Features f = features_of(r);
    if (f == Resource::kUnknown || f == Resource::kAsked) {
      choice.pending = true;
      continue;
    }
    if (f != Resource::kYes) continue;
    if (bare == self_.bare() && name == self_.resource) continue;
    if (!best || r.priority > best->priority || (r.priority == best->priority && r.since > best->since)) {
      best = &r;
      best_name = &name;
    }
  }
  if (best) {
    choice.resource = candidate(*best_name);
    choice.pending = false;
  }
  return choice;
}

std::string PresenceDirectory::explain(const std::string& bare) const {
  const std::vector<std::string> online = resources(bare);
  if (!online.empty()) {
    std::string list;
    for (const std::string& r : online)
      list += (list.empty() ? "" : ", ") + r;
    return bare + " is online, but none of its resources runs peerlink signaling (" + list + ")";
  }
  if (sees_presence(bare)) return bare + " is offline";
  if (in_roster(bare))
    return bare + " is a contact, but does not share its presence with " + self_.bare() + " (subscription '" +
           accounts_.at(bare).subscription + "'): connect to a full JID instead";
  return bare + " is not a contact of " + self_.bare() +
         ": a bare JID is reached through presence, so add each other as contacts, or connect to a full JID";
}

std::vector<std::string> PresenceDirectory::resources(const std::string& bare) const {
  std::vector<std::string> out;
  auto it = accounts_.find(bare);
  if (it == accounts_.end()) return out;
  for (const auto& [name, r] : it->second.resources)
    if (!(bare == self_.bare() && name == self_.resource)) out.push_back(name);
  return out;
}

std::vector<Jid> PresenceDirectory::signaling_resources() const {
  std::vector<Jid> out;
  for (const auto& [bare, a] : accounts_) {
    for (const auto& [name, r] : a.resources) {
      if (features_of(r) != Resource::kYes) continue;
      std::optional<Jid> j = Jid::parse(bare + "/" + name);
      if (j && !(*j == self_)) out.push_back(std::move(*j));
    }
  }
  return out;
}

}  // namespace peerlink::xmpp
