#!/usr/bin/env bash
# bench/scale/run.sh [--quick] — weft server scale benchmark: many OpenVPN client sessions in one
# load-generator process (bench/scale/loadgen: weft's pure ovpn.Session engine, client role,
# tls-crypt, EC P-256 certificates) against one server, side by side:
#   weft-udp / weft-tcp        bin/weft server --config server.conf   (built from this tree)
#   openvpn-udp / openvpn-tcp  Debian openvpn 2.6, the same server.conf (UDP: + the lines of
#                              OPENVPN_EXTRA below), `mode server`, dev tun, max-clients 2000, duplicate-cn,
#                              server 10.64.0.0 255.255.0.0, keepalive 10 60
# Per variant and round: server RSS at start; connect N clients with at most CONC handshakes in
# flight (time to connect all, full handshakes/s, latency, server CPU per handshake, control
# packets per handshake); server RSS with N idle clients and server CPU over IDLE (keepalive
# pings only); a handshake-rate sweep at SWEEP concurrencies (SWEEP_N new clients per wave, the
# N clients still connected). The report (loadgen report) writes summary.md + results.json with
# medians over rounds and the issue's targets marked met / not met, and prints summary.md.
#
# Usage (root; needs ip, openvpn, go):  bench/scale/run.sh [--quick]
#   full   N=1000, CONC=32, IDLE=30s, ROUNDS=3, SWEEP=8,16,64,128,256  (≈ 12 min)
#   quick  N=200,  IDLE=8s,  ROUNDS=1, SWEEP=16,128 with SWEEP_N=100   (≈ 2 min)
# Knobs (env): N CONC IDLE SETTLE ROUNDS SWEEP SWEEP_N VARIANTS TRIES TLS_GROUPS PROFILE=0|1
#   WEFT_BIN (default: build ./cmd/weft into the results dir) OUT_ROOT MAX_RUNTIME LOCK_WAIT
#   OPENVPN_EXTRA (openvpn-only lines, ';'-separated; default for UDP "connect-freq-initial
#   1000000 1;rcvbuf 4194304;sndbuf 4194304": openvpn ≥ 2.6.7 answers at most 100 initial UDP
#   resets per 10 s by default, which would measure that policy, not the server; and weft's UDP
#   listener uses 4 MiB socket buffers, while openvpn's 208 KiB default overflows (UdpRcvbufErrors)
#   at ≥ 64 concurrent handshakes and then measures 2 s retransmission timeouts. None for TCP)
#
# Output: bench/results/scale-<UTC>/{summary.md,results.json,meta.json,runs/*.json,logs/,
#   profiles/ (weft CPU profiles of round 1 via WEFT_CPUPROFILE, with `pprof -top` text)}.
#
# Safety: one network namespace wsc-<pid> (loopback only, nothing routed out), removed on exit;
# servers are children of the load generator (Pdeathsig) and every load generator runs under
# `timeout`; a watchdog bounds the whole run (MAX_RUNTIME). Takes the same locks as bench/run.sh
# so the two benchmarks never overlap.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"
GO=${GO:-go}
QUICK=0
case ${1:-} in
  --quick|quick) QUICK=1 ;;
  ""|--full|full) ;;
  -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
if [ $QUICK = 1 ]; then
  N=${N:-200}; IDLE=${IDLE:-8s}; SETTLE=${SETTLE:-2s}; ROUNDS=${ROUNDS:-1}
  SWEEP=${SWEEP-16,128}; SWEEP_N=${SWEEP_N:-100}; MAX_RUNTIME=${MAX_RUNTIME:-600}
else
  N=${N:-1000}; IDLE=${IDLE:-30s}; SETTLE=${SETTLE:-5s}; ROUNDS=${ROUNDS:-3}
  SWEEP=${SWEEP-8,16,64,128,256}; SWEEP_N=${SWEEP_N:-150}; MAX_RUNTIME=${MAX_RUNTIME:-2400}
fi
CONC=${CONC:-32}
TRIES=${TRIES:-3}
GROUPS_=${TLS_GROUPS:-X25519}
PROFILE=${PROFILE:-1}
VARIANTS=${VARIANTS:-"weft-udp openvpn-udp weft-tcp openvpn-tcp"}
OPENVPN_EXTRA=${OPENVPN_EXTRA:-default}
LOCK_WAIT=${LOCK_WAIT:-1800}
OUT_ROOT=${OUT_ROOT:-$ROOT/bench/results}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$OUT_ROOT/scale-$STAMP
NS=wsc-$$

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (network namespace, TUN)" >&2; exit 1; }
for c in ip timeout flock "$GO"; do command -v "$c" >/dev/null || { echo "run.sh: missing $c" >&2; exit 1; }; done
case " $VARIANTS " in *openvpn*) command -v openvpn >/dev/null || { echo "run.sh: missing openvpn (apt-get install openvpn)" >&2; exit 1; } ;; esac
[ -e /dev/net/tun ] || { echo "run.sh: /dev/net/tun missing" >&2; exit 1; }

# One benchmark at a time on this box (same locks as bench/run.sh).
exec 9>>/run/lock/weft-bench.lock || exit 1
echo "waiting up to ${LOCK_WAIT}s for /run/lock/weft-bench.lock ($(cat /run/lock/weft-bench.lock.owner 2>/dev/null))" >&2
flock -w "$LOCK_WAIT" 9 || { echo "run.sh: another benchmark holds /run/lock/weft-bench.lock" >&2; exit 2; }
exec 8>>/run/lock/peer-bench.lock || exit 1
flock -w "$LOCK_WAIT" 8 || { echo "run.sh: peer-bench holds its lock" >&2; exit 2; }
echo "bench/scale/run.sh pid $$ $STAMP" >/run/lock/weft-bench.lock.owner

mkdir -p "$OUT"/{runs,logs,profiles} || exit 1
TMPD=$(mktemp -d /tmp/wsc-run.XXXXXX) || exit 1   # binaries, PKI and per-run work files
mkdir -p "$TMPD"/{bin,work}
LG_PID=""
cleanup() {
  [ -n "$LG_PID" ] && kill "$LG_PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  if [ -n "${WD_PID:-}" ]; then kill $(pgrep -P "$WD_PID") "$WD_PID" 2>/dev/null; fi
  : >/run/lock/weft-bench.lock.owner 2>/dev/null
  rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM
# The watchdog must not inherit the lock descriptors (a leftover sleep would hold the lock).
( exec 8>&- 9>&-; sleep "$MAX_RUNTIME"; echo "run.sh: MAX_RUNTIME ${MAX_RUNTIME}s reached, stopping" >&2; kill -TERM $$ ) &
WD_PID=$!

cd "$ROOT" || exit 1
echo "== build" >&2
if [ -n "${WEFT_BIN:-}" ]; then
  cp "$WEFT_BIN" "$TMPD/bin/weft" || exit 1
else
  "$GO" build -o "$TMPD/bin/weft" ./cmd/weft || { echo "run.sh: building weft failed" >&2; exit 1; }
fi
"$GO" build -o "$TMPD/bin/loadgen" ./bench/scale/loadgen || exit 1
LG=$TMPD/bin/loadgen
mkdir -p "$TMPD/work/pki" && "$LG" pki -dir "$TMPD/work/pki" >/dev/null || exit 1

ip netns add "$NS" || exit 1
ip -n "$NS" link set lo up || exit 1

cat >"$OUT/meta.json" <<EOF
{"stamp":"$STAMP","mode":"$([ $QUICK = 1 ] && echo quick || echo full)","n":$N,"conc":$CONC,"idle":"$IDLE","rounds":$ROUNDS,
 "sweep":"$SWEEP","sweep_n":$SWEEP_N,"groups":"$GROUPS_","variants":"$VARIANTS","openvpn_extra":"$OPENVPN_EXTRA",
 "git":"$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo -dirty)",
 "go":"$("$GO" env GOVERSION)","kernel":"$(uname -r)","nproc":$(nproc),
 "openvpn":"$(openvpn --version 2>/dev/null | head -1)","cpu":"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"}
EOF

QFLAG=""; [ $QUICK = 1 ] && QFLAG=-quick
PER_RUN=$(( 600 ))
for r in $(seq 1 "$ROUNDS"); do
  for v in $VARIANTS; do
    server=${v%-*}; proto=${v#*-}
    args=(run -server "$server" -proto "$proto" -dir "$TMPD/work" -out "$OUT/runs/r$r-$v.json"
          -n "$N" -conc "$CONC" -tries "$TRIES" -idle "$IDLE" -settle "$SETTLE" -groups "$GROUPS_"
          -sweep "$SWEEP" -sweep-n "$SWEEP_N" -max-runtime "$(( PER_RUN - 30 ))s")
    if [ "$server" = weft ]; then
      args+=(-bin "$TMPD/bin/weft")
      [ "$PROFILE" = 1 ] && [ "$r" = 1 ] && args+=(-profile "$OUT/profiles/weft-$proto.pprof")
    else
      args+=(-openvpn-extra "$OPENVPN_EXTRA")
    fi
    echo "== round $r/$ROUNDS: $v (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    timeout -k 5 "$PER_RUN" ip netns exec "$NS" "$LG" "${args[@]}" 8>&- 9>&- &
    LG_PID=$!
    wait "$LG_PID"; rc=$?
    LG_PID=""
    [ $rc = 0 ] || echo "run.sh: $v round $r exited $rc (recorded in runs/r$r-$v.json)" >&2
    cp "$TMPD/work/$v/server.log" "$OUT/logs/r$r-$v-server.log" 2>/dev/null
    cp "$TMPD/work/$v/server.conf" "$OUT/logs/$v-server.conf" 2>/dev/null
    cp "$TMPD/work/$v/client.conf" "$OUT/logs/$v-client.conf" 2>/dev/null
  done
done

for p in "$OUT"/profiles/*.pprof; do
  [ -e "$p" ] || continue
  "$GO" tool pprof -top -nodecount=40 "$TMPD/bin/weft" "$p" >"${p%.pprof}.top.txt" 2>/dev/null
done
echo "== report: $OUT" >&2
"$LG" report -dir "$OUT" $QFLAG
