// Benchmarks of the sans-I/O core in one process, without sockets.
#pragma once

#include <cstddef>

namespace peerlink::bench {

struct CoreOptions {
  double seconds = 3.0;
  size_t connections = 10000;
  size_t message_size = 64 * 1024;
};

// Encrypted reliable goodput between two endpoints handing datagrams to each other (1200-byte packets).
void run_core_throughput(const CoreOptions& o, bool aes_gcm);
// Heap bytes per idle connection with many connections in one endpoint.
void run_core_memory(const CoreOptions& o);

}  // namespace peerlink::bench
