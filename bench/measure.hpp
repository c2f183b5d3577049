// Small measuring tools shared by the two-process scenarios.
#pragma once

#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace peerlink::bench {

// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine, also across network
// namespaces, so a child's timestamps compare with ours.
inline int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// CPU time of this process, all its threads.
inline int64_t process_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// What a bulk sender of the benchmarks keeps queued in its Host (accepted, not yet acknowledged) before it
// waits: kernel TCP's socket buffer here, autotuned up to tcp_wmem's maximum (4 MiB on Debian 12). Goodput
// is then the path's, not the send buffer's, and the data is still in the caches when it is sent (on a
// 2-core VM over loopback, alternating: 873, 904, 905 MB/s filling the Host's 96 MiB, 1087, 1133, 938
// keeping 4 MiB).
inline constexpr size_t kKeepQueued = size_t{4} << 20;

// Every run's figure of a repeated measurement, times `scale`, comma-separated with `decimals` decimals,
// for a Figure field beside the median.
inline std::string runs_text(const std::vector<double>& values, int decimals, double scale = 1) {
  std::string text;
  for (double v : values) {
    char one[48];
    std::snprintf(one, sizeof one, "%s%.*f", text.empty() ? "" : ",", decimals, v * scale);
    text += one;
  }
  return text;
}

inline double seconds_between(int64_t from_ns, int64_t to_ns) {
  return double(to_ns - from_ns) / 1e9;
}

// The warm-up before a throughput window: a quarter of it, at most half a second.
inline double warmup_seconds(double seconds) {
  return std::min(0.5, seconds / 4);
}

// Milliseconds from `from` to `to` on the steady clock.
inline double ms_since(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// The p-quantile (0..1) of the samples, nearest-rank; 0 for no samples. Sorts them.
inline double percentile(std::vector<double>& samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  size_t rank = size_t(std::ceil(p * double(samples.size())));
  return samples[rank == 0 ? 0 : std::min(rank, samples.size()) - 1];
}

// This process's resident set (VmRSS) in bytes, after giving the heap's free pages back to the system, so
// memory freed by earlier scenarios in the same process neither counts nor hides new allocations; 0 if
// /proc says nothing.
inline size_t vm_rss_bytes() {
  malloc_trim(0);
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      size_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    status.ignore(4096, '\n');
  }
  return 0;
}

}  // namespace peerlink::bench
