// XMPP signaling through a real Prosody on the loopback (the tests' fixture, tests/xmpp/prosody.hpp): only
// in builds with the tests, and skipped when Prosody is not installed.
#pragma once

#include <cstddef>

namespace peerlink::bench {

struct XmppBenchOptions {
  size_t samples = 40;  // connections (and logins) measured
};

// Three figures:
//   xmpp-connect       connect() to the first reliable message delivered, p50/p99 over fresh connections
//                      between two Hosts that stay logged in; baseline: the same with in-process signaling
//                      in the same run (targets: p50 <= 100 ms and <= baseline + 20 ms)
//   xmpp-login         a fresh plugin's TLS + SCRAM + bind + roster and presence, to XmppState::kOnline
//                      (target p50 <= 200 ms)
//   xmpp-stanza-bytes  bytes of signaling stanzas (IQs and their results) one side sends per connection
//                      setup, the larger side's mean (target < 10 kB: Prosody's default rate limit)
// Returns false (after saying why on stderr) if Prosody is not installed.
bool run_xmpp_connect(const XmppBenchOptions& o);

}  // namespace peerlink::bench
