// A signaling hub for tests, header-only and on the public API alone: Hosts in one process reach each other
// by name ("mem:<name>") through a shared hub, so a test of an application (or of a plugin's Host side)
// needs no server. Blobs are delivered at once into the receiving Host's signaling inbox; a name nobody
// registered is reported unreachable at once, as a real plugin that knows it would. It can also lose,
// duplicate and reorder blobs, to check that an application copes with a bad signaling channel.
//
//   auto hub = std::make_shared<peerlink::testkit::SignalingHub>();
//   peerlink::HostConfig a, b;
//   a.signaling.push_back(hub->plugin("alice"));
//   b.signaling.push_back(hub->plugin("bob"));
//   peerlink::Host alice(a), bob(b);
//   (void)bob.listen_p2p();
//   auto conn = alice.connect(peerlink::testkit::SignalingHub::id("bob"));
//
// Thread-safety: every method may be called from any thread. The hub never holds its own lock while it
// calls a Host's sink (the rule for every plugin, signaling.hpp); a blob may then overtake another sent at
// the same moment from another thread, which the Host tolerates like any reordering.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "peerlink/signaling.hpp"

namespace peerlink::testkit {

class SignalingHub : public std::enable_shared_from_this<SignalingHub> {
 public:
  class Plugin final : public SignalingPlugin {
   public:
    Plugin(std::shared_ptr<SignalingHub> hub, std::string name)
        : hub_(std::move(hub)), name_(std::move(name)) {}
    std::string scheme() const override { return "mem"; }
    PeerId local_peer() const override { return id(name_); }
    void start(SignalingSink& sink) override { hub_->attach(name_, &sink); }
    void send(const PeerId& to, const void* blob, size_t size) override {
      hub_->route(name_, to, blob, size);
    }
    void stop() override { hub_->detach(name_); }

   private:
    std::shared_ptr<SignalingHub> hub_;
    std::string name_;
  };

  // A plugin that is `name` on this hub (one per Host).
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
  // never, if nothing follows). Seeded: the same seed gives the same pattern.
  void set_impairment(double loss, double duplicate, uint32_t seed = 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    loss_ = loss;
    duplicate_ = duplicate;
    rng_.seed(seed);
  }
  // Blobs sent to `name` so far (delivered or not).
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
    // After stop() the sink must not be called: wait for the calls already made to it to return.
    std::unique_lock<std::mutex> lock(mutex_);
    sinks_.erase(name);
    idle_.wait(lock, [&] { return busy_[name] == 0; });
  }

  struct Call {
    std::string sink_name;  // whose sink it calls (counted in busy_ while it runs)
    std::function<void()> run;
  };

  void route(const std::string& from, const PeerId& to, const void* blob, size_t size) {
    std::vector<Call> calls;  // made with mutex_ released
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const std::string target(to.name());
      auto it = sinks_.find(target);
      if (it == sinks_.end()) {
        auto self = sinks_.find(from);
        if (self != sinks_.end()) {
          SignalingSink* sink = self->second;
          calls.push_back(
              {from, [sink, to, target] { sink->peer_unreachable(to, "no such peer: " + target); }});
        }
      } else {
        ++counts_[target];
        std::uniform_real_distribution<double> coin(0.0, 1.0);
        if (!dropping_[target] && !(loss_ > 0 && coin(rng_) < loss_)) {
          SignalingSink* sink = it->second;
          const auto* b = static_cast<const uint8_t*>(blob);
          std::vector<uint8_t> bytes(b, b + size);
          calls.push_back(
              {target, [sink, from, bytes] { sink->deliver(id(from), bytes.data(), bytes.size()); }});
          auto late = held_.find(target);
          if (late != held_.end()) {  // the duplicate of an earlier blob, now behind this one
            auto copy = std::move(late->second);
            held_.erase(late);
            calls.push_back({target, [sink, copy] {
                               sink->deliver(id(copy.first), copy.second.data(), copy.second.size());
                             }});
          }
          if (duplicate_ > 0 && coin(rng_) < duplicate_) held_[target] = {from, std::move(bytes)};
        }
      }
      for (const Call& call : calls)
        ++busy_[call.sink_name];
    }
    for (const Call& call : calls) {
      call.run();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_[call.sink_name] == 0) idle_.notify_all();
    }
  }

  std::mutex mutex_;              // the tables below
  std::condition_variable idle_;  // a sink's last running call returned
  std::map<std::string, SignalingSink*> sinks_;
  std::map<std::string, int> busy_;  // calls running per sink
  std::map<std::string, bool> dropping_;
  std::map<std::string, size_t> counts_;
  double loss_ = 0, duplicate_ = 0;
  std::mt19937 rng_{1};
  std::map<std::string, std::pair<std::string, std::vector<uint8_t>>> held_;  // per target
};

}  // namespace peerlink::testkit
