#!/usr/bin/env bash
# Install test: installs a build of peerlink into a temporary prefix, then builds and runs a small consumer
# twice, once found with CMake's find_package(peerlink) and once with pkg-config peerlink-messages (which
# requires peerlink-transport); the same for consumers of peerlink-xmpp and peerlink-lan.
# Usage: run.sh <build-dir> [<c++ compiler>]   (set PEERLINK_INSTALL_TEST_SKIP=reason to skip: exit 77)
set -euo pipefail

if [[ -n "${PEERLINK_INSTALL_TEST_SKIP:-}" ]]; then
  echo "SKIPPED: $PEERLINK_INSTALL_TEST_SKIP"
  exit 77
fi
if [[ $# -lt 1 ]]; then
  echo "usage: $0 <build-dir> [<c++ compiler>]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
cxx=${2:-c++}
here=$(cd "$(dirname "$0")" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/peerlink-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

check_fingerprint() {  # $1: what printed it, $2: its output
  if [[ ! "$2" =~ ^pl1-[A-Za-z0-9]{4}(-[A-Za-z0-9]{4})+$ ]]; then
    echo "FAIL: $1 printed '$2', not a fingerprint (pl1-xxxx-...)" >&2
    exit 1
  fi
  echo "ok: $1 printed $2"
}

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix"

echo "== find_package(peerlink): configure, build and run the consumer"
cmake -S "$here/consumer" -B "$tmp/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$tmp/consumer-build"
check_fingerprint "find_package consumer" "$("$tmp/consumer-build/consumer")"
check_prints() {  # $1: what printed it, $2: what it should print, $3: its output
  if [[ "$3" != "$2" ]]; then
    echo "FAIL: $1 printed '$3', not '$2'" >&2
    exit 1
  fi
  echo "ok: $1 printed $3"
}
check_prints "find_package xmpp consumer" "xmpp ok" "$("$tmp/consumer-build/xmpp_consumer")"
check_prints "find_package lan consumer" "lan ok" "$("$tmp/consumer-build/lan_consumer")"

echo "== pkg-config peerlink-messages: build and run the consumer"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig:$prefix/lib64/pkgconfig"
libdir=$(dirname "$(find "$prefix" -name 'libpeerlink_transport.*' -print -quit)")
static=()
if [[ ! -e "$libdir/libpeerlink_transport.so" ]]; then
  static=(--static)  # static libraries need their Requires.private (libcrypto) on the link line too
fi
echo "pkg-config ${static[*]} --cflags --libs peerlink-messages: $(pkg-config "${static[@]}" --cflags --libs peerlink-messages)"
# shellcheck disable=SC2046 # word splitting of pkg-config's flags is intended
"$cxx" -std=c++17 -Wall -Wextra -Werror -o "$tmp/consumer-pkgconfig" "$here/consumer/main.cpp" \
  $(pkg-config "${static[@]}" --cflags --libs peerlink-messages)
check_fingerprint "pkg-config consumer" "$(LD_LIBRARY_PATH="$libdir" "$tmp/consumer-pkgconfig")"

echo "pkg-config ${static[*]} --cflags --libs peerlink-xmpp: $(pkg-config "${static[@]}" --cflags --libs peerlink-xmpp)"
# shellcheck disable=SC2046
"$cxx" -std=c++17 -Wall -Wextra -Werror -o "$tmp/xmpp-consumer-pkgconfig" "$here/consumer/xmpp_main.cpp" \
  $(pkg-config "${static[@]}" --cflags --libs peerlink-xmpp)
check_prints "pkg-config xmpp consumer" "xmpp ok" "$(LD_LIBRARY_PATH="$libdir" "$tmp/xmpp-consumer-pkgconfig")"

echo "pkg-config ${static[*]} --cflags --libs peerlink-lan: $(pkg-config "${static[@]}" --cflags --libs peerlink-lan)"
# shellcheck disable=SC2046
"$cxx" -std=c++17 -Wall -Wextra -Werror -o "$tmp/lan-consumer-pkgconfig" "$here/consumer/lan_main.cpp" \
  $(pkg-config "${static[@]}" --cflags --libs peerlink-lan)
check_prints "pkg-config lan consumer" "lan ok" "$(LD_LIBRARY_PATH="$libdir" "$tmp/lan-consumer-pkgconfig")"

echo "install test passed"
