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
// The same, each message written by the sender into a new vector that send() takes over, against writing
// it into one buffer that send() copies (alternating runs, medians).
void run_core_throughput_owned(const CoreOptions& o);
struct CoreMemoryResult {
  size_t connections = 0;           // at the accepting endpoint
  size_t connected_initiators = 0;  // at the connecting endpoint
  double heap_per_connection = 0;   // bytes
  double rss_per_connection = 0;    // bytes
};
// Heap bytes per idle connection with `connections` connections in one endpoint.
CoreMemoryResult measure_core_memory(size_t connections);
// Prints measure_core_memory(o.connections) as the core-memory figure.
void run_core_memory(const CoreOptions& o);
// CPU time of one whole connection setup (IK handshake with address validation, first message delivered),
// both endpoints on one thread: the part of `connect` that is not the network.
void run_core_handshake(const CoreOptions& o);

}  // namespace peerlink::bench
