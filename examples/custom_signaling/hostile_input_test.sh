#!/usr/bin/env bash
# The rendezvous server against well-behaved and hostile clients, over bash's /dev/tcp on 127.0.0.1:
# forwarding, UNREACHABLE, and "ERROR <text>" then close for every kind of bad input; the server must keep
# serving the good clients throughout and exit 0 on SIGTERM. Every read has a timeout.
#
#   hostile_input_test.sh path/to/custom-signaling-server
set -u
trap '' PIPE  # writing to a connection the server closed must fail, not kill the script

SERVER=${1:?usage: $0 SERVER-BINARY}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/custom-signaling-hostile.XXXXXX")
SERVER_PID=

cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "---- server stderr"
  cat "$WORK/server.err"
  exit 1
}

"$SERVER" 0 >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
for _ in $(seq 100); do
  grep -q '^listening on' "$WORK/server.out" && break
  sleep 0.05
done
PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/server.out")
[ -n "$PORT" ] || fail "the server did not start"

# open VAR: a new connection to the server, its file descriptor in VAR.
open() {
  local fd
  exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || fail "cannot connect to the server"
  printf -v "$1" '%s' "$fd"
}
send() { printf '%s\n' "$2" >&"$1" 2>/dev/null; }

# expect FD REGEX WHAT: the next line on FD matches REGEX (within 3 s).
expect() {
  local line
  IFS= read -t 3 -r line <&"$1" || fail "$3: no line (read status $?)"
  [[ $line =~ $2 ]] || fail "$3: got '$line'"
}

# expect_error FD WHAT: an ERROR line, then the server closes the connection (end of stream, no timeout).
expect_error() {
  local line rc
  IFS= read -t 3 -r line <&"$1" || fail "$2: no ERROR line (read status $?)"
  [[ $line =~ ^ERROR\ . ]] || fail "$2: expected ERROR, got '$line'"
  IFS= read -t 3 -r line <&"$1"
  rc=$?
  [ $rc -eq 1 ] && [ -z "$line" ] || fail "$2: the server did not close after ERROR (status $rc, '$line')"
  eval "exec $1>&-"
  echo "ok: $2 -> ERROR and close"
}

# expect_silence FD WHAT: nothing arrives within 0.3 s.
expect_silence() {
  local line
  if IFS= read -t 0.3 -r line <&"$1"; then fail "$2: unexpected '$line'"; fi
}

# --- well-behaved clients ---
open A
open B
send "$A" "HELLO alice"
send "$B" "HELLO bob"
expect_silence "$A" "HELLO has no answer"
send "$A" "SEND bob QUJD"
expect "$B" '^FROM alice QUJD$' "forwarding alice -> bob"
send "$B" $'SEND alice AAEC/w==\r'
expect "$A" '^FROM bob AAEC/w==$' "forwarding bob -> alice (CRLF line)"
send "$A" "SEND alice YQ=="
expect "$A" '^FROM alice YQ==$' "sending to oneself"
send "$A" "SEND nobody QUJD"
expect "$A" '^UNREACHABLE nobody .+' "unknown recipient"
echo "ok: forwarding, UNREACHABLE"

# --- protocol violations: ERROR, then close ---
open C
send "$C" "HELLO alice"
expect_error "$C" "duplicate name"
open C
send "$C" "BOGUS stuff"
expect_error "$C" "unknown command"
open C
send "$C" ""
expect_error "$C" "empty line"
open C
send "$C" "SEND bob QUJD"
expect_error "$C" "SEND before HELLO"
open C
send "$C" "HELLO bad/name"
expect_error "$C" "invalid name"
open C
send "$C" "HELLO $(printf 'x%.0s' $(seq 65))"
expect_error "$C" "name over 64 characters"
open C
send "$C" "HELLO"
expect_error "$C" "HELLO without a name"
open C
printf 'HELLO a\0b\n' >&"$C"
expect_error "$C" "NUL byte in a name"
open C
send "$C" "HELLO carol"
send "$C" "HELLO carol2"
expect_error "$C" "second HELLO"
open C
send "$C" "HELLO carol"
send "$C" "SEND bob !!!!"
expect_error "$C" "invalid base64"
open C
send "$C" "HELLO carol"
send "$C" "SEND bob QUJ"
expect_error "$C" "truncated base64"
open C
send "$C" "HELLO carol"
send "$C" "SEND bob QUJD extra"
expect_error "$C" "extra field"
open C
send "$C" "HELLO carol"
send "$C" "SEND bad/name QUJD"
expect_error "$C" "SEND to an invalid name"
open C
head -c 5000 /dev/zero | tr '\0' A >&"$C" 2>/dev/null
expect_error "$C" "5000 bytes without a newline"
open C
send "$C" "HELLO carol"
send "$C" "SEND bob $(head -c 5000 /dev/zero | tr '\0' A)"
expect_error "$C" "a 5000-byte SEND line"

# --- garbage and abrupt clients: the server must survive them ---
open C
head -c 65536 /dev/urandom >&"$C" 2>/dev/null
IFS= read -t 3 -r _ <&"$C"  # an ERROR, or nothing if the connection was reset: either is fine
eval "exec $C>&-"
for _ in $(seq 50); do
  open C
  printf 'SEND bo' >&"$C" 2>/dev/null  # a partial line, then gone
  eval "exec $C>&-"
done
open C
send "$C" "HELLO quitter"
eval "exec $C>&-"
echo "ok: random bytes, 50 abrupt clients"

# --- the good clients were never disturbed; a freed name can be taken again ---
send "$B" "SEND alice QkJC"
expect "$A" '^FROM bob QkJC$' "forwarding after the hostile clients"
sleep 0.2
open C
send "$C" "HELLO quitter"
send "$C" "SEND alice Q0ND"
expect "$A" '^FROM quitter Q0ND$' "a name freed by a departed client"
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died"
eval "exec $A>&- $B>&- $C>&-"

kill -TERM "$SERVER_PID"
for _ in $(seq 100); do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
kill -0 "$SERVER_PID" 2>/dev/null && fail "the server ignored SIGTERM"
wait "$SERVER_PID"
RC=$?
SERVER_PID=
[ $RC -eq 0 ] || fail "the server exited with $RC"
echo "PASS"
