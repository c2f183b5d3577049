// In-process signaling for tests: Hosts in one process reach each other by name ("mem:<name>") through a
// shared hub. Blobs are delivered synchronously into the receiving Host's signaling inbox; a name nobody
// registered is reported unreachable at once, as a real plugin that knows it would.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

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
    it->second->deliver(id(from), blob, size);
  }

  std::mutex mutex_;
  std::map<std::string, SignalingSink*> sinks_;
  std::map<std::string, bool> dropping_;
  std::map<std::string, size_t> counts_;
};

}  // namespace peerlink::test
