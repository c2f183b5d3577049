// The peerlink::Host server roles of the two-process scenarios (see server_roles.hpp). Each listens on
// --bind, reports "ready port=<port> key=<hex>", serves from an application thread that blocks in
// Host::wait(), and closes the handles of connections its peers end.
//
//   host-sink     counts received messages and bytes (mark/stop, sink_window.hpp) and checks that their
//                 sequence numbers arrive complete and in order; "expect count=N timeout=S" waits for the
//                 N-th message and answers "total messages= errors=".
//   host-echo     sends every message back, reliable and without Nagle delay.
//   host-echo-service-receives, host-echo-spin  the same with HostConfig::receive_on_wait off, with
//                 HostConfig::wait_spin.
//   host-echo-callback  the same from the service thread (Host::set_message_callback).
//   host-connect  reports each message's delivery time: "delivered t_ns=<CLOCK_MONOTONIC> seq=<n>".
//   host-connect-validating  the same, asking every peer for an address-validation cookie
//                 (AddressValidation::kAlways).
// The host-echo roles and host-connect also run a raw UdpEcho (baselines.hpp) and add
// "raw_port=<port>" to "ready", so the raw baseline round trips go between the same two processes.
//   host-memory   "rss" answers "rss bytes=<VmRSS> connected=<connections in kConnected>".
#pragma once

#include "server_roles.hpp"

namespace peerlink::bench {

int run_host_sink(const RoleArgs& args, ControlChannel& channel);
int run_host_echo(const RoleArgs& args, ControlChannel& channel);
// The same with HostConfig::receive_on_wait off: the service thread receives, then wakes wait().
int run_host_echo_service_receives(const RoleArgs& args, ControlChannel& channel);
// The same with HostConfig::wait_spin (kWaitSpin): its wait() polls the socket before it sleeps.
int run_host_echo_spin(const RoleArgs& args, ControlChannel& channel);
int run_host_echo_callback(const RoleArgs& args, ControlChannel& channel);
int run_host_connect(const RoleArgs& args, ControlChannel& channel);
int run_host_connect_validating(const RoleArgs& args, ControlChannel& channel);  // AddressValidation::kAlways
int run_host_memory(const RoleArgs& args, ControlChannel& channel);

}  // namespace peerlink::bench
