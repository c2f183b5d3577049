// One JSON object per line per figure, so scripts can collect results with a line reader.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace peerlink::bench {

struct Figure {
  std::string scenario;
  double value = 0;
  std::string unit;
  std::vector<std::pair<std::string, std::string>> extra;  // already JSON-encoded values

  Figure& add(const std::string& key, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    extra.emplace_back(key, buf);
    return *this;
  }
  // Counts print in full (add() keeps 6 significant digits).
  Figure& add_count(const std::string& key, uint64_t v) {
    extra.emplace_back(key, std::to_string(v));
    return *this;
  }
  Figure& add(const std::string& key, const std::string& v) {
    extra.emplace_back(key, "\"" + v + "\"");
    return *this;
  }
  // The baseline measured in the same run over the same path, and value / baseline_value.
  Figure& compare(const std::string& baseline, double baseline_value) {
    add("baseline", baseline);
    add("baseline_value", baseline_value);
    return add("ratio", baseline_value != 0 ? value / baseline_value : 0);
  }
  void print() const {
    std::printf("{\"scenario\":\"%s\",\"value\":%.6g,\"unit\":\"%s\"", scenario.c_str(), value, unit.c_str());
    for (const auto& [k, v] : extra)
      std::printf(",\"%s\":%s", k.c_str(), v.c_str());
    std::printf("}\n");
    std::fflush(stdout);
  }
};

}  // namespace peerlink::bench
