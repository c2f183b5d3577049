// A temporary directory for a test, removed with everything in it when the test ends.
#pragma once

#include <stdlib.h>

#include <string>

#include "netlab/netns.hpp"

namespace peerlink::test {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/peerlink-cli-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { netlab::run_command({"rm", "-rf", path}); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace peerlink::test
