// Which resource of an account a bare JID reaches: what the plugin knows of other accounts' resources
// from presence, disco#info and entity caps, and which resource last signaled us. Pure logic, no I/O.
//
// The rule (docs/XMPP.md): a blob to "bob@example.org" goes to
//   1. the resource of bob that last sent us a signaling blob, while it has not gone offline (so a
//      conversation stays with one resource);
//   2. else, among bob's available resources that advertise the signaling feature (disco#info, or
//      entity caps whose ver we verified), the one with the highest presence priority, then the one that
//      came online most recently;
//   3. else nothing: bob is offline, runs no peerlink resource, or does not share presence with us.
// Our own full JID is never chosen.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "jid.hpp"

namespace peerlink::xmpp {

class PresenceDirectory {
 public:
  using Clock = std::chrono::steady_clock;

  // A new session: forget everything (resources, roster, stickiness); `self` is our bound full JID.
  void reset(const Jid& self);
  const Jid& self() const { return self_; }

  // The roster: subscription "to" or "both" means we see the contact's presence.
  void set_roster_item(const std::string& bare, const std::string& subscription);
  bool in_roster(const std::string& bare) const;
  bool sees_presence(const std::string& bare) const;

  // Presence. Returns true when the resource's features are unknown and should be asked for (a caps ver
  // not yet verified, or no caps at all).
  bool available(const Jid& full, int priority, const std::string& caps_ver, Clock::time_point now);
  // A full JID goes offline; a bare JID takes all its resources offline.
  void unavailable(const Jid& jid);
  // disco#info answered for a resource (has our feature or not); `verified_ver` non-empty when the
  // answer's hash matched the caps ver it advertised: every resource with that ver is then known.
  void set_features(const Jid& full, bool has_signaling, const std::string& verified_ver);
  // Nothing came back for a resource's disco#info: treat it as not having the feature.
  void features_failed(const Jid& full);
  // Caps ver known to mean "has the feature" (or not) without asking, e.g. our own.
  void know_caps(const std::string& ver, bool has_signaling);

  // A signaling blob came from this resource; stick to it for its bare JID. Accounts known only this way
  // (strangers: not in the roster, no presence) are kept for the kMaxStrangers that signaled last.
  void signaled_from(const Jid& full);
  static constexpr size_t kMaxStrangers = 1024;
  // Sending to this resource failed: forget it as a choice until it announces itself again.
  void failed(const Jid& full);

  struct Choice {
    std::optional<Jid> resource;  // the resource to send to
    bool pending = false;         // not decided yet: a resource's features are still being asked for
  };
  Choice choose(const std::string& bare) const;
  // For people, when choose() found nothing: "offline", "online, but no resource runs peerlink
  // (phone, laptop)", ...
  std::string explain(const std::string& bare) const;
  // Available resources of a bare JID, by name.
  std::vector<std::string> resources(const std::string& bare) const;
  // Every available resource (of contacts and of our own account, not ourselves) known to run peerlink
  // signaling.
  std::vector<Jid> signaling_resources() const;
  // Changes whenever what signaling_resources() returns may have changed.
  uint64_t generation() const { return generation_; }

 private:
  struct Resource {
    int priority = 0;
    Clock::time_point since{};
    std::string caps_ver;
    enum Features : uint8_t { kUnknown, kAsked, kYes, kNo } features = kUnknown;
    bool refused = false;  // failed(): an error reply ruled it out until it announces itself again
  };
  struct Account {
    std::string subscription;                   // "" when not in the roster
    std::map<std::string, Resource> resources;  // by resource name
    std::string sticky;                         // the resource that last signaled us
  };
  Resource::Features features_of(const Resource& r) const;

  Jid self_;
  std::map<std::string, Account> accounts_;  // by bare JID
  // Accounts signaled_from() added, by when they last signaled (the least recent go first).
  std::map<std::string, uint64_t> strangers_;
  uint64_t signal_count_ = 0;
  std::map<std::string, bool> caps_;  // verified caps ver -> has the signaling feature
  uint64_t generation_ = 0;
};

}  // namespace peerlink::xmpp
