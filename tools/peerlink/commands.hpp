// The subcommands of the `peerlink` tool that live in files of their own (main.cpp keeps the small ones).
// Each takes the arguments after its name and returns the exit status (cli_util.hpp: kOk, kFailed, kUsage).
#pragma once

#include <string>
#include <vector>

// `peerlink netcheck`: local addresses, STUN mapping, NAT mapping and filtering behaviour (RFC 4787 / 5780),
// TURN reachability and the XMPP server's STUN/TURN services (netcheck.cpp).
int run_netcheck(const std::vector<std::string>& args);
