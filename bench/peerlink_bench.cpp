// peerlink-bench: prints benchmark figures as JSON, one object per line.
//
//   peerlink-bench                      all scenarios
//   peerlink-bench core-throughput      one scenario (several may be named)
//   peerlink-bench --seconds 5 --connections 10000 core-memory
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "core_scenarios.hpp"

namespace {

void usage() {
  std::printf(
      "usage: peerlink-bench [--seconds S] [--connections N] [--message-size B] [scenario ...]\n"
      "scenarios:\n"
      "  core-throughput         encrypted reliable goodput of the sans-I/O core, AES-256-GCM where the CPU "
      "has\n"
      "                          AES instructions, 1200-byte packets, one process, no sockets (target >= 800 "
      "MB/s)\n"
      "  core-throughput-chacha  the same with ChaCha20-Poly1305\n"
      "  core-memory             heap bytes per idle connection with N connections in one endpoint\n"
      "                          (target <= 16 KiB)\n");
}

}  // namespace

int main(int argc, char** argv) {
  peerlink::bench::CoreOptions o;
  std::set<std::string> scenarios;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "peerlink-bench: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "--seconds") {
      o.seconds = std::atof(value("--seconds"));
    } else if (a == "--connections") {
      o.connections = size_t(std::atol(value("--connections")));
    } else if (a == "--message-size") {
      o.message_size = size_t(std::atol(value("--message-size")));
    } else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "peerlink-bench: unknown option %s\n", a.c_str());
      usage();
      return 2;
    } else {
      scenarios.insert(a);
    }
  }
  if (o.seconds <= 0 || o.connections == 0 || o.message_size == 0) {
    std::fprintf(stderr, "peerlink-bench: --seconds, --connections and --message-size must be positive\n");
    return 2;
  }
  static const std::set<std::string> known = {"core-throughput", "core-throughput-chacha", "core-memory"};
  for (const auto& s : scenarios) {
    if (!known.count(s)) {
      std::fprintf(stderr, "peerlink-bench: unknown scenario '%s'\n", s.c_str());
      usage();
      return 2;
    }
  }
  auto want = [&](const char* s) { return scenarios.empty() || scenarios.count(s); };
  if (want("core-throughput")) peerlink::bench::run_core_throughput(o, true);
  if (want("core-throughput-chacha")) peerlink::bench::run_core_throughput(o, false);
  if (want("core-memory")) peerlink::bench::run_core_memory(o);
  return 0;
}
