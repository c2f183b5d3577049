// Resolves the STUN/TURN servers that signaling plugins offer (SignalingSink::offer_ice_servers) on a thread
// of its own: a name can take seconds to resolve, or to fail. Numeric addresses are delivered at once, then
// names one by one as each resolves, so a slow name holds nothing back; one that is invalid or does not
// resolve is left out, with the reason. The thread is detached when the resolver goes: a lookup in progress
// is not waited for, and nothing is delivered after the destructor returns.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "peerlink/ice.hpp"

namespace peerlink::host {

class IceServerResolver {
 public:
  // Called on the resolver's thread with a scheme's servers resolved so far (numeric addresses) and what
  // was left out.
  using Deliver =
      std::function<void(const std::string& scheme, const IceConfig& servers, const std::string& problems)>;
  explicit IceServerResolver(Deliver deliver);
  ~IceServerResolver();
  IceServerResolver(const IceServerResolver&) = delete;
  IceServerResolver& operator=(const IceServerResolver&) = delete;

  // Replaces the scheme's servers (an offer not resolved yet is dropped).
  void offer(const std::string& scheme, IceConfig servers);

 private:
  struct State;
  static void run(const std::shared_ptr<State>& state);
  std::shared_ptr<State> state_;  // shared with the thread, which may outlive this object
};

}  // namespace peerlink::host
