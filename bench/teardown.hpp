// What the benchmark must undo however it ends: the child processes it started and the network namespaces
// it created. Normal paths release them through RAII (ServerProcess, NamespacePair); a fatal signal
// (SIGINT, SIGTERM, SIGHUP, or a crash) runs the same cleanup from the handler, which only makes
// async-signal-safe system calls (kill, waitpid, umount2, unlink), then ends the process.
#pragma once

#include <sys/types.h>

namespace peerlink::bench::teardown {

// Installs the handlers once; later calls do nothing.
void install_signal_handlers();

// Children to SIGKILL and reap if the process is interrupted. At most 16 at a time.
void track_child(pid_t pid);
void untrack_child(pid_t pid);

// Network namespaces (their /run/netns/<name> path) to delete if the process is interrupted. At most 4.
void track_namespace(const char* path);
void untrack_namespace(const char* path);

// Deletes a named network namespace the way `ip netns delete` does: detach its bind mount and remove the
// file. The namespace itself disappears with its last user (and its veth ends with it). Async-signal-safe.
// True if it existed and is gone.
bool delete_namespace(const char* path);

}  // namespace peerlink::bench::teardown
