// The subcommands of the `peerlink` tool that live in files of their own (main.cpp keeps the small ones).
// Each takes the arguments after its name and returns the exit status (cli_util.hpp: kOk, kFailed, kUsage).
#pragma once

#include <string>
#include <vector>

// `peerlink netcheck`: local addresses, STUN mapping, NAT mapping and filtering behaviour (RFC 4787 / 5780),
// TURN reachability and the XMPP server's STUN/TURN services (netcheck.cpp).
int run_netcheck(const std::vector<std::string>& args);

// `peerlink send FILE... --to PEER` and `peerlink receive [--dir D]`: files over a peer-to-peer connection
// (transfer.cpp).
int run_send(const std::vector<std::string>& args);
int run_receive(const std::vector<std::string>& args);
