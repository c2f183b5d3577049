#!/usr/bin/env bash
# End-to-end test of the custom signaling example, on 127.0.0.1 only:
#   1. the rendezvous server starts on port 0 and says which port it got;
#   2. bob listens, alice connects to him through the server; both exchange lines and exit 0;
#   3. connecting to a name nobody uses fails at once as "unreachable" (not after the connect timeout);
#   4. a listening peer notices when the server goes away and exits 1; the server exits 0 on SIGTERM.
# Every wait is bounded; whatever is still running when the script exits is killed.
#
#   run_example_test.sh path/to/custom-signaling-server path/to/custom-signaling-peer
set -u

SERVER=${1:?usage: $0 SERVER-BINARY PEER-BINARY}
PEER=${2:?usage: $0 SERVER-BINARY PEER-BINARY}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/custom-signaling-test.XXXXXX")
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -9 "$pid" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  for f in "$WORK"/*.out "$WORK"/*.err; do
    [ -s "$f" ] || continue
    echo "---- $(basename "$f")"
    cat "$f"
  done
  exit 1
}

# wait_for FILE PATTERN SECONDS: until a line of FILE matches PATTERN.
wait_for() {
  local end=$((SECONDS + $3))
  until grep -q -- "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.05
  done
}

# forget PID: it has been reaped, so cleanup must not signal that number again.
forget() {
  local keep=() pid
  for pid in "${PIDS[@]}"; do
    [ "$pid" = "$1" ] || keep+=("$pid")
  done
  PIDS=("${keep[@]}")
}

# wait_exit PID SECONDS: the process's exit status, or 124 (after killing it) if it is still running.
wait_exit() {
  local end=$((SECONDS + $2)) rc
  while kill -0 "$1" 2>/dev/null; do
    if [ $SECONDS -ge $end ]; then
      kill -9 "$1" 2>/dev/null
      wait "$1" 2>/dev/null
      forget "$1"
      return 124
    fi
    sleep 0.05
  done
  wait "$1"
  rc=$?
  forget "$1"
  return $rc
}

# --- 1. the server ---
"$SERVER" 0 >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for "$WORK/server.out" '^listening on 127\.0\.0\.1:[0-9]*$' 5 || fail "the server did not start"
PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/server.out")
[ -n "$PORT" ] && [ "$PORT" -gt 0 ] || fail "no port in the server's output"
echo "server on 127.0.0.1:$PORT"

# --- 2. bob listens, alice connects ---
"$PEER" --interface lo --server "127.0.0.1:$PORT" --name bob --messages 3 --timeout 30 >"$WORK/bob.out" 2>"$WORK/bob.err" &
BOB_PID=$!
PIDS+=("$BOB_PID")
wait_for "$WORK/bob.out" '^\[bob\] waiting for a peer$' 10 || fail "bob did not start listening"

"$PEER" --interface lo --server "127.0.0.1:$PORT" --name alice --connect bob --messages 3 --timeout 30 \
  >"$WORK/alice.out" 2>"$WORK/alice.err" &
ALICE_PID=$!
PIDS+=("$ALICE_PID")

wait_exit "$ALICE_PID" 40
ALICE_RC=$?
wait_exit "$BOB_PID" 15
BOB_RC=$?
[ "$ALICE_RC" -eq 0 ] || fail "alice exited with $ALICE_RC"
[ "$BOB_RC" -eq 0 ] || fail "bob exited with $BOB_RC"
for i in 1 2 3; do
  grep -q "^\[bob\] heard: message $i/3 from alice$" "$WORK/bob.out" || fail "bob did not hear alice's line $i"
  grep -q "^\[alice\] heard: message $i/3 from bob$" "$WORK/alice.out" || fail "alice did not hear bob's line $i"
done
grep -q '^\[alice\] connected to line:bob ' "$WORK/alice.out" || fail "alice does not name bob as line:bob"
grep -q '^\[bob\] connected to line:alice ' "$WORK/bob.out" || fail "bob does not name alice as line:alice"
echo "alice and bob talked both ways and exited 0:"
sed 's/^/    /' "$WORK/bob.out" "$WORK/alice.out"

# --- 3. nobody is called "nobody": unreachable, reported quickly ---
START=$SECONDS
"$PEER" --interface lo --server "127.0.0.1:$PORT" --name carol --connect nobody --timeout 20 \
  >"$WORK/carol.out" 2>"$WORK/carol.err" &
CAROL_PID=$!
PIDS+=("$CAROL_PID")
wait_exit "$CAROL_PID" 25
CAROL_RC=$?
[ "$CAROL_RC" -eq 1 ] || fail "carol exited with $CAROL_RC, expected 1"
grep -q 'connection failed: .*(code 5005, "line rendezvous server: nobody not connected to this server")' \
  "$WORK/carol.out" || fail "carol's connection did not end as signaling-unreachable"
[ $((SECONDS - START)) -lt 8 ] || fail "unreachable took $((SECONDS - START)) s: it waited for a timeout"
echo "an unknown peer is reported unreachable in $((SECONDS - START)) s"

# Connecting to oneself is refused at once by the Host (the plugin names this Host's own peer id).
"$PEER" --interface lo --server "127.0.0.1:$PORT" --name frank --connect frank --timeout 20 \
  >"$WORK/frank.out" 2>"$WORK/frank.err" &
FRANK_PID=$!
PIDS+=("$FRANK_PID")
wait_exit "$FRANK_PID" 10
FRANK_RC=$?
[ "$FRANK_RC" -eq 1 ] || fail "frank exited with $FRANK_RC connecting to himself, expected 1"
grep -q "cannot connect to line:frank: it is this Host's own peer id" "$WORK/frank.err" ||
  fail "frank's self-connection was not refused with a clear error"
echo "a connection to oneself is refused at once"

# --- 4. the server goes away under a listening peer ---
"$PEER" --interface lo --server "127.0.0.1:$PORT" --name dave --timeout 30 >"$WORK/dave.out" 2>"$WORK/dave.err" &
DAVE_PID=$!
PIDS+=("$DAVE_PID")
wait_for "$WORK/dave.out" '^\[dave\] waiting for a peer$' 10 || fail "dave did not start listening"
kill -TERM "$SERVER_PID"
wait_exit "$SERVER_PID" 5
SERVER_RC=$?
[ "$SERVER_RC" -eq 0 ] || fail "the server exited with $SERVER_RC on SIGTERM"
wait_exit "$DAVE_PID" 10
DAVE_RC=$?
[ "$DAVE_RC" -eq 1 ] || fail "dave exited with $DAVE_RC after the server went away, expected 1"
grep -q 'lost the connection to the rendezvous server' "$WORK/dave.err" || fail "dave did not report the loss"
echo "a peer reports the loss of the server and exits 1; the server exits 0 on SIGTERM"

# The server with nothing listening on that port any more: the plugin says so at once.
"$PEER" --interface lo --server "127.0.0.1:$PORT" --name erin --timeout 10 >"$WORK/erin.out" 2>"$WORK/erin.err" &
ERIN_PID=$!
PIDS+=("$ERIN_PID")
wait_exit "$ERIN_PID" 15
ERIN_RC=$?
[ "$ERIN_RC" -eq 1 ] || fail "erin exited with $ERIN_RC without a server, expected 1"
grep -q 'cannot connect to the rendezvous server' "$WORK/erin.err" || fail "erin did not say why"
echo "without a server the peer says so and exits 1"
echo "PASS"
