#include "transport/host/ice_server_resolver.hpp"

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "peerlink/address.hpp"
#include "transport/ice/ice_agent.hpp"

namespace peerlink::host {

struct IceServerResolver::State {
  std::mutex mutex;  // everything below; held while delivering, so the destructor waits for a delivery
  std::condition_variable wake;
  std::map<std::string, IceConfig> pending;  // the newest offer per scheme
  bool stopped = false;
  bool running = false;
  Deliver deliver;
};

IceServerResolver::IceServerResolver(Deliver deliver) : state_(std::make_shared<State>()) {
  state_->deliver = std::move(deliver);
}

IceServerResolver::~IceServerResolver() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->stopped = true;
  state_->wake.notify_all();
}

void IceServerResolver::offer(const std::string& scheme, IceConfig servers) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->stopped) return;
  state_->pending[scheme] = std::move(servers);
  if (!state_->running) {  // started by the first offer, detached: see the header
    state_->running = true;
    std::thread([state = state_] { run(state); }).detach();
  }
  state_->wake.notify_all();
}

namespace {

// One server's config resolved to numeric addresses, or nullopt with why in problems.
std::optional<IceConfig> resolve_one(IceConfig one, std::string& problems) {
  Result<void> valid = one.validate();
  std::string why;
  if (!valid) why = valid.error().message;
  if (valid && ice::IceAgent::resolve_servers(one, &why)) return one;
  problems += (problems.empty() ? "" : "; ") + why;
  return std::nullopt;
}

bool numeric(const std::string& host) {
  return Address::parse(host).ok();
}

}  // namespace

void IceServerResolver::run(const std::shared_ptr<State>& state) {
  std::unique_lock<std::mutex> lock(state->mutex);
  for (;;) {
    state->wake.wait(lock, [&] { return state->stopped || !state->pending.empty(); });
    if (state->stopped) return;
    auto it = state->pending.begin();
    const std::string scheme = it->first;
    const IceConfig offered = std::move(it->second);
    state->pending.erase(it);
    IceConfig resolved;
    std::string problems;
    // Delivers what is resolved so far; false when it is time to stop (or a newer offer replaces this).
    auto deliver = [&]() -> bool {
      lock.lock();
      if (state->stopped || state->pending.count(scheme)) return false;
      state->deliver(scheme, resolved, problems);
      problems.clear();  // each problem is reported once
      lock.unlock();
      return true;
    };
    lock.unlock();
    bool go_on = true;
    for (bool names : {false, true}) {
      for (const StunServer& stun : offered.stun_servers) {
        if (!go_on || numeric(stun.host) == names) continue;
        IceConfig one;
        one.stun_servers = {stun};
        if (auto ok = resolve_one(one, problems)) resolved.stun_servers.push_back(ok->stun_servers.front());
        if (names) go_on = deliver();
      }
      for (const TurnServer& turn : offered.turn_servers) {
        if (!go_on || numeric(turn.host) == names) continue;
        IceConfig one;
        one.turn_servers = {turn};
        if (auto ok = resolve_one(one, problems)) resolved.turn_servers.push_back(ok->turn_servers.front());
        if (names) go_on = deliver();
      }
      if (!names && go_on) go_on = deliver();
    }
    if (go_on) lock.lock();  // else deliver() returned holding it
  }
}

}  // namespace peerlink::host
