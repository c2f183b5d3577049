// In-process signaling for tests: Hosts in one process reach each other by name ("mem:<name>") through a
// shared hub. Blobs are delivered synchronously into the receiving Host's signaling inbox; a name nobody
// registered is reported unreachable at once, as a real plugin that knows it would.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "peerlink/signaling.hpp"

namespace peerlink::test {

class SignalingHub : public std::enable_shared_from_this<SignalingHub> {
 public:
  class Plugin final : public SignalingPlugin {
   public:
    Plugin(std::shared_ptr<SignalingHub> hub, std::string name)
        : hub_(std::move(hub)), name_(std::move(name)) {}
    std::string scheme() const override { return "mem"; }
    void start(SignalingSink& sink) override { hub_->attach(name_, &sink); }
    void send(const PeerId& to, const void* blob, size_t size) override {
      hub_->route(name_, to, blob, size);
    }
    void stop() override { hub_->detach(name_); }

   private:
    std::shared_ptr<SignalingHub> hub_;
    std::string name_;
  };

  std::shared_ptr<SignalingPlugin> plugin(const std::string& name) {
    return std::make_shared<Plugin>(shared_from_this(), name);
  }
  static PeerId id(const std::string& name) { return *PeerId::parse("mem:" + name); }

  // Blobs to `name` vanish (the signaling loses them) while dropped is set.
  void set_dropping(const std::string& name, bool dropped) {
    std::lock_guard<std::mutex> lock(mutex_);
    dropping_[name] = dropped;
  }
  // From now on each blob is lost with probability `loss`, and a blob that gets through is delivered a
  // second time with probability `duplicate`: the copy goes after the next blob to the same peer (reordered;
  // never, if nothing follows).
  // Seeded: the same seed gives the same pattern.
  void set_impairment(double loss, double duplicate, uint32_t seed = 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    loss_ = loss;
    duplicate_ = duplicate;
    rng_.seed(seed);
  }
  size_t blobs_to(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    return counts_[name];
  }

 private:
  void attach(const std::string& name, SignalingSink* sink) {
    std::lock_guard<std::mutex> lock(mutex_);
    sinks_[name] = sink;
  }
  void detach(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    sinks_.erase(name);
  }
  void route(const std::string& from, const PeerId& to, const void* blob, size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string target(to.name());
    auto it = sinks_.find(target);
    if (it == sinks_.end()) {
      auto self = sinks_.find(from);
      if (self != sinks_.end()) self->second->peer_unreachable(to, "no such peer: " + target);
      return;
    }
    ++counts_[target];
    if (dropping_[target]) return;
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    if (loss_ > 0 && coin(rng_) < loss_) return;
    it->second->deliver(id(from), blob, size);
    auto late = held_.find(target);
    if (late != held_.end()) {  // the duplicate of an earlier blob, now behind this one
      it->second->deliver(id(late->second.first), late->second.second.data(), late->second.second.size());
      held_.erase(late);
    }
    if (duplicate_ > 0 && coin(rng_) < duplicate_) {
      const auto* b = static_cast<const uint8_t*>(blob);
      held_[target] = {from, std::vector<uint8_t>(b, b + size)};
    }
  }

  std::mutex mutex_;
  std::map<std::string, SignalingSink*> sinks_;
  std::map<std::string, bool> dropping_;
  std::map<std::string, size_t> counts_;
  double loss_ = 0, duplicate_ = 0;
  std::mt19937 rng_{1};
  std::map<std::string, std::pair<std::string, std::vector<uint8_t>>> held_;  // per target
};

}  // namespace peerlink::test
