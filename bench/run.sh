#!/usr/bin/env bash
# bench/run.sh — weft's side-by-side data-plane benchmark (`make bench`, `make bench-quick`).
#
# One run measures, in interleaved rounds (v1 v2 … vN, v1 v2 … vN, …), between two network
# namespaces joined by a veth pair (MTU 1500) on this box:
#   veth                 plain veth, no tunnel: the limit
#   weft-{udp,tcp}-{aes,chacha}   bin/weft server  <-> bin/weft client
#   ovpn-{udp,tcp}-{aes,chacha}   openvpn (Debian 2.6) server <-> openvpn client, the SAME config files
#   weftc-{udp,tcp}-{aes,chacha}  openvpn server <-> bin/weft client (optional; validates the client leg)
#   wg-go-new            wireguard-go built from the Go module proxy into tools/ (scripts/bench-setup.sh)
#   wg-go-deb            Debian's wireguard-go
#   nebula-deb           Debian's nebula 1.6.1
#   nebula-new           nebula v1.10.3 built from the proxy into tools/ (optional)
# Figures per variant and round: ping RTT (IPv4 and IPv6), iperf3 TCP 1 stream and 4 streams,
# the highest UDP packet rate with < 1% loss (rate sweep, datagrams = tunnel MTU − 28 so nothing
# fragments), CPU seconds per GB of the VPN processes (utime+stime of all their threads).
# The report (bench/cmd/benchreport) writes summary.md + results.json: medians, ratios to the
# veth limit (same round) and to each peer, and each issue target marked met / not met.
# weft runs once per weft variant (round 1) with WEFT_CPUPROFILE set; the profiles are saved as
# weft-<mode>.pprof (server side) and weft-<mode>-client.pprof, each with a `pprof -top` text.
#
# Usage (root):  bench/run.sh [full|quick|report [DIR]|readme [DIR]]
#   full   3 rounds, all 13 default variants (≈40 min on 2 vCPUs)
#   quick  1 round: veth weft-udp-aes ovpn-udp-aes wg-go-new, short durations (< 3 min)
#   report regenerate summary.md/results.json of DIR (default bench/results/latest)
#   readme rewrite the README.md block between <!-- bench:start --> and <!-- bench:end -->
# Knobs (env): ROUNDS DUR PINGS PING_INTERVAL TUN_MTU UDP_LEN UDP_STEP_DUR UDP_MAX_STEPS
#   UDP_LOSS_MAX(%) VARIANTS EXTRA_VARIANTS OUT_ROOT WEFT_BIN WEFT_BUILD=1 PROFILE=0|1
#   MEASURE="ping tcp1 tcp4 udp" (a subset for experiments; the report marks what is missing)
#   READY_TIMEOUT MAX_RUNTIME LOCK_WAIT SETUP=0 (skip scripts/bench-setup.sh)
#   QUIET_WAIT=<s> QUIET_MAX_BUSY=15: before each variant wait ≤ QUIET_WAIT s while other processes
#   keep more than QUIET_MAX_BUSY % of the CPUs busy (other tenants' load is always recorded)
#
# Safety: namespaces are wb-<pid>-a / wb-<pid>-b (only stale wb-<pid>-* of dead PIDs are ever
# removed); traffic only between them (no default route). Every process runs under `timeout`,
# is tracked by PID (+ start time) and stopped by PID; a watchdog bounds the whole run; the
# EXIT/INT/TERM trap removes everything. One run at a time (flock), and never concurrently with
# ../shared/bench/peer-bench.sh (its lock is taken too).

set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"
GO=${GO:-go}
CMD=${1:-full}

case $CMD in
  full)
    ROUNDS=${ROUNDS:-3}; DUR=${DUR:-8}; PINGS=${PINGS:-100}
    UDP_STEP_DUR=${UDP_STEP_DUR:-3}; UDP_MAX_STEPS=${UDP_MAX_STEPS:-6}
    DEFAULT_VARIANTS="veth weft-udp-aes weft-udp-chacha weft-tcp-aes weft-tcp-chacha ovpn-udp-aes ovpn-udp-chacha ovpn-tcp-aes ovpn-tcp-chacha wg-go-new wg-go-deb nebula-deb nebula-new" ;;
  quick)
    ROUNDS=${ROUNDS:-1}; DUR=${DUR:-4}; PINGS=${PINGS:-40}
    UDP_STEP_DUR=${UDP_STEP_DUR:-2}; UDP_MAX_STEPS=${UDP_MAX_STEPS:-4}
    DEFAULT_VARIANTS="veth weft-udp-aes ovpn-udp-aes wg-go-new" ;;
  report|readme)
    dir=${2:-$ROOT/bench/results/latest}
    cd "$ROOT" || exit 1
    if [ "$CMD" = report ]; then exec "$GO" run ./bench/cmd/benchreport -dir "$dir"
    else exec "$GO" run ./bench/cmd/benchreport -dir "$dir" -readme "$ROOT/README.md"; fi ;;
  -h|--help|help) sed -n '2,40p' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "usage: $0 [full|quick|report [DIR]|readme [DIR]]" >&2; exit 2 ;;
esac
MODE=$CMD
VARIANTS=${VARIANTS:-$DEFAULT_VARIANTS}
[ -n "${EXTRA_VARIANTS:-}" ] && VARIANTS="$VARIANTS $EXTRA_VARIANTS"
PING_INTERVAL=${PING_INTERVAL:-0.01}
MEASURE=${MEASURE:-ping tcp1 tcp4 udp}   # which figures to take (a subset for quick experiments)
TUN_MTU=${TUN_MTU:-1420}
UDP_LEN=${UDP_LEN:-$((TUN_MTU - 28))}     # IPv4 + UDP headers: one datagram = one full tunnel packet
UDP_LOSS_MAX=${UDP_LOSS_MAX:-1}           # percent; a sweep step passes when loss < this
# iperf3 -w for the UDP runs (both ends' socket buffers): with the 208 KiB default the receiving
# iperf3 socket overflows on bursts even on plain veth; 4 MiB (≤ net.core.rmem_max/wmem_max) keeps
# the endpoints out of the measurement, so losses are the tunnel's.
UDP_WINDOW=${UDP_WINDOW:-$(awk 'NR==1{a=$1} NR==2{b=$1} END{m=4194304; if(a<m)m=a; if(b<m)m=b; print m}' /proc/sys/net/core/rmem_max /proc/sys/net/core/wmem_max)}
UDP_HI_FACTOR=${UDP_HI_FACTOR:-3}         # sweep ceiling: min(offered, FACTOR × received) of the unlimited probe
READY_TIMEOUT=${READY_TIMEOUT:-30}
PROFILE=${PROFILE:-1}
QUIET_WAIT=${QUIET_WAIT:-0}               # s to wait (per variant) for other load to drop below QUIET_MAX_BUSY %
QUIET_MAX_BUSY=${QUIET_MAX_BUSY:-15}
OUT_ROOT=${OUT_ROOT:-$ROOT/bench/results}
WEFT_BIN=${WEFT_BIN:-$ROOT/bin/weft}
WG_NEW=${WG_NEW:-$ROOT/tools/wireguard}
NEB_NEW_DIR=${NEB_NEW_DIR:-$ROOT/tools/nebula-v1.10.3}
NVAR=$(wc -w <<<"$VARIANTS")
# per variant: pings + 2 TCP runs + UDP probe and sweep + setup/teardown
PER_VARIANT_EST=$(( 2 * PINGS / 50 + 4 + 2 * (DUR + 2) + (UDP_MAX_STEPS + 1) * (UDP_STEP_DUR + 2) + 8 ))
MAX_RUNTIME=${MAX_RUNTIME:-$((ROUNDS * NVAR * (PER_VARIANT_EST + 25 + QUIET_WAIT) + 240))}
PROC_TTL=$((2 * (DUR + 30) + (UDP_MAX_STEPS + 1) * (UDP_STEP_DUR + 30) + 2 * READY_TIMEOUT + 60))

NS_A=wb-$$-a; NS_B=wb-$$-b            # a: VPN server / iperf3 client (sender); b: VPN client / iperf3 server
VETH_A=wbveth-a; VETH_B=wbveth-b
WG_A=wbwg$$a; WG_B=wbwg$$b            # UAPI sockets live in the shared /var/run/wireguard: unique names
U_A4=10.99.0.1; U_B4=10.99.0.2; U_A6=fd99::1; U_B6=fd99::2
T_NET=10.9.0; T_A4=10.9.0.1; T_B4=10.9.0.2; T_A6=fd00:9::1; T_B6=fd00:9::2
OVPN_PORT=1194
IPERF_PORT=5201
LOCK=${LOCK:-/run/lock/weft-bench.lock}
PEER_LOCK=/run/lock/peer-bench.lock   # the shared peer harness: never run alongside it
LOCK_WAIT=${LOCK_WAIT:-0}

MAIN_PID=$$
START_TS=$SECONDS
declare -a ALL_PIDS=() VPN_PIDS=()
declare -A PSTART=()
IPERF_SRV_PID=""; WATCHDOG_PID=""; LAST_PID=""
CUR_ROUND=0; CUR_VARIANT=""; PEER4=""; PEER6=""
WORK=""; OUTDIR=""; CLEANED=0; TOPS_DONE=0

log()  { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "${CUR_VARIANT:-main}" "$*" | tee -a "$OUTDIR/run.log" >&2; }
die()  { log "FATAL: $*"; exit 1; }
rec()  { printf '%s\t%s\t%s\t%s\n' "$CUR_ROUND" "$CUR_VARIANT" "$1" "$2" >>"$OUTDIR/results.tsv"; }
oneline() { local x=${1//$'\t'/ }; x=${x//$'\n'/ }; x=${x//$'\r'/}; x=${x%% }; printf '%s' "${x%% }"; }
note() { printf '%s\t%s\t%s\t%s\n' "$CUR_ROUND" "$CUR_VARIANT" "$1" "$(oneline "$2")" >>"$OUTDIR/notes.tsv"; }
meta() { printf '%s\t%s\n' "$1" "$(oneline "$2")" >>"$OUTDIR/meta.tsv"; }
fail() { note setup_fail "$1"; log "FAILED: $1"; return 1; }

# ------------------------------------------------------------------ processes
proc_start() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; set -- $s; echo "${20}"; }
pid_alive() { # ours (same start time as recorded), alive and not a zombie
  local s st
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  if [ -n "${PSTART[$1]:-}" ]; then
    # shellcheck disable=SC2086
    st=$(set -- $s; echo "${20}")
    [ "$st" = "${PSTART[$1]}" ] || return 1
  fi
  [ "${s%% *}" != Z ]
}
cpu_ticks() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }; s=${s##*) }; set -- $s; echo $(( ${12} + ${13} )); }
vpn_ticks() { local p t=0; for p in "${VPN_PIDS[@]}"; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }
vpn_all_alive() { local p; for p in "${VPN_PIDS[@]}"; do pid_alive "$p" || return 1; done; return 0; }
bg_busy() { # % of all CPUs busy during 1 s while nothing of ours runs (other tenants' load)
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9; exit}' /proc/stat); sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9; exit}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," "); t=y[2]-x[2]; if (t<=0) {print "NA"; exit} printf "%.1f", 100*(y[1]-x[1])/t}'
}
sys_cpu() { awk '/^cpu /{busy=$2+$3+$4+$7+$8; steal=$9; print busy, steal; exit}' /proc/stat; }
ns_frags() { # IPv4 FragCreates+ReasmReqds + IPv6 Ip6FragCreates+Ip6ReasmReqds of one namespace
  ip netns exec "$1" awk '
    FILENAME ~ /snmp6$/ { if ($1=="Ip6FragCreates" || $1=="Ip6ReasmReqds") n+=$2; next }
    /^Ip:/ { if(!h){for(i=2;i<=NF;i++) H[i]=$i; h=1} else {for(i=2;i<=NF;i++) if(H[i]=="FragCreates"||H[i]=="ReasmReqds") n+=$i} }
    END { print n+0 }' /proc/net/snmp /proc/net/snmp6
}
frags() { echo $(( $(ns_frags $NS_A) + $(ns_frags $NS_B) )); }
ns_udp_rcvbuf() { # Udp RcvbufErrors (IPv4) + Udp6RcvbufErrors of one namespace: socket-buffer drops
  ip netns exec "$1" awk '
    FILENAME ~ /snmp6$/ { if ($1=="Udp6RcvbufErrors") n+=$2; next }
    /^Udp:/ { if(!h){for(i=2;i<=NF;i++) H[i]=$i; h=1} else {for(i=2;i<=NF;i++) if(H[i]=="RcvbufErrors") n+=$i} }
    END { print n+0 }' /proc/net/snmp /proc/net/snmp6
}
udp_rcvbuf_errs() { echo $(( $(ns_udp_rcvbuf $NS_A) + $(ns_udp_rcvbuf $NS_B) )); }

# start_bg NS LOGFILE CMD... : CMD inside NS under `timeout PROC_TTL`; LAST_PID = the program's PID
# (ip netns exec and env exec the program, so the timeout's child is the program itself).
start_bg() {
  local ns=$1 logf=$2 tpid child="" i
  shift 2
  timeout -k 5 "$PROC_TTL" ip netns exec "$ns" "$@" >"$logf" 2>&1 9>&- 8>&- &
  tpid=$!
  ALL_PIDS+=("$tpid"); PSTART[$tpid]=$(proc_start "$tpid")
  for i in $(seq 1 50); do
    child=$(awk '{print $1}' "/proc/$tpid/task/$tpid/children" 2>/dev/null)
    [ -n "$child" ] && break
    pid_alive "$tpid" || break
    sleep 0.1
  done
  [ -n "$child" ] && { ALL_PIDS+=("$child"); PSTART[$child]=$(proc_start "$child"); }
  LAST_PID=${child:-$tpid}
  sleep 0.2
  pid_alive "$LAST_PID"
}

stop_pids() { # TERM, wait ≤10 s (weft writes its CPU profile on TERM), KILL; reap
  local p i any
  [ $# -eq 0 ] && return 0
  for p in "$@"; do pid_alive "$p" && kill -TERM "$p" 2>/dev/null; done
  for i in $(seq 1 100); do
    any=0
    for p in "$@"; do pid_alive "$p" && any=1; done
    [ $any = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do pid_alive "$p" && { log "pid $p ignored TERM for 10 s, sending KILL"; kill -KILL "$p" 2>/dev/null; }; done
  for p in "$@"; do wait "$p" 2>/dev/null; done
  return 0
}

# ------------------------------------------------------------------ namespaces
ns_create() {
  local ns pid
  for ns in $(ip netns list | awk '{print $1}' | grep -E '^wb-[0-9]+-[ab]$'); do
    pid=${ns#wb-}; pid=${pid%-?}
    if [ "$pid" != "$$" ] && ! kill -0 "$pid" 2>/dev/null; then
      log "stale namespace $ns (its run, pid $pid, is gone): deleting"; ip netns del "$ns"
    fi
  done
  ip netns add $NS_A && ip netns add $NS_B || die "cannot create namespaces"
  ip link add $VETH_A netns $NS_A mtu 1500 type veth peer name $VETH_B netns $NS_B mtu 1500 || die "veth"
  ip -n $NS_A addr add $U_A4/24 dev $VETH_A; ip -n $NS_B addr add $U_B4/24 dev $VETH_B
  ip -n $NS_A addr add $U_A6/64 dev $VETH_A nodad; ip -n $NS_B addr add $U_B6/64 dev $VETH_B nodad
  ip -n $NS_A link set lo up; ip -n $NS_B link set lo up
  ip -n $NS_A link set $VETH_A up; ip -n $NS_B link set $VETH_B up
}

assert_clean() { # only lo and the veth may remain between variants
  local ns l
  for ns in $NS_A $NS_B; do
    for l in $(ip -n "$ns" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//'); do
      case $l in lo|$VETH_A|$VETH_B) ;; *)
        log "WARNING: leftover interface $l in $ns, deleting"; note leftover_if "$ns/$l"
        ip -n "$ns" link del "$l" 2>/dev/null ;;
      esac
    done
    ip -n "$ns" -o addr | grep -q " $T_NET\." && die "$T_NET.x still configured in $ns"
  done
  return 0
}

cleanup() {
  [ "$CLEANED" = 1 ] && return
  CLEANED=1
  trap - INT TERM
  log "cleanup: stopping processes and removing namespaces"
  [ -n "$WATCHDOG_PID" ] && kill -TERM "$WATCHDOG_PID" 2>/dev/null
  local rev=() i
  for ((i=${#ALL_PIDS[@]}-1; i>=0; i--)); do rev+=("${ALL_PIDS[i]}"); done
  stop_pids "${rev[@]}"
  [ -n "$WATCHDOG_PID" ] && wait "$WATCHDOG_PID" 2>/dev/null
  ip netns del $NS_A 2>/dev/null; ip netns del $NS_B 2>/dev/null
  rm -f "/var/run/wireguard/$WG_A.sock" "/var/run/wireguard/$WG_B.sock"
  [ -n "$WORK" ] && [ -d "$WORK" ] && rm -rf "$WORK"
}

on_exit() {
  local rc=$?
  cleanup
  [ "$TOPS_DONE" = 1 ] || profile_tops
  meta finished_utc "$(date -u +%FT%TZ)"
  meta runtime_s "$((SECONDS - START_TS))"
  meta exit_code "$rc"
  if [ -s "$OUTDIR/results.tsv" ]; then
    log "writing summary.md and results.json"
    (cd "$ROOT" && timeout 300 "$GO" run ./bench/cmd/benchreport -dir "$OUTDIR" >/dev/null) || log "report failed"
    ln -sfn "$(basename "$OUTDIR")" "$OUT_ROOT/latest"
    [ -f "$OUTDIR/summary.md" ] && cat "$OUTDIR/summary.md" >&2
  fi
  log "done in $((SECONDS - START_TS))s (rc=$rc); results in $OUTDIR (bench/results/latest)"
}

# ------------------------------------------------------------------ measurement
wait_ping() { # NS DST TIMEOUT_S
  local ns=$1 dst=$2 t_end=$((SECONDS + $3))
  while [ $SECONDS -lt $t_end ]; do
    vpn_all_alive || return 1
    ip netns exec "$ns" ping -c 1 -W 1 -q "$dst" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

do_ping() { # KEY DST
  local key=$1 dst=$2 f="$RAW/r$CUR_ROUND-$CUR_VARIANT-$1.txt" line loss
  timeout -k 2 $((PINGS + 20)) ip netns exec $NS_A ping -n -c "$PINGS" -i "$PING_INTERVAL" -W 1 "$dst" >"$f" 2>&1
  loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$f")
  line=$(sed -n 's#^rtt min/avg/max/mdev = \([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\) ms.*#\1 \2 \3 \4#p' "$f")
  if [ -z "$line" ]; then log "$key to $dst: no RTT"; note "${key}_fail" "$(tr '\n' ' ' <"$f" | cut -c1-200)"; return 1; fi
  set -- $line
  rec "${key}_min_ms" "$1"; rec "${key}_avg_ms" "$2"; rec "${key}_max_ms" "$3"; rec "${key}_mdev_ms" "$4"
  rec "${key}_loss_pct" "${loss:-NA}"
  # median and 90th percentile of the per-packet RTTs (robust to a few scheduler outliers)
  local p50 p90
  read -r p50 p90 < <(sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' "$f" | sort -g |
    awk '{v[NR]=$1} END{ if (NR==0) {print "NA NA"; exit} m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; i=int(NR*0.9+0.999); if(i<1)i=1; printf "%.4f %.4f\n", m, v[i]}')
  rec "${key}_p50_ms" "$p50"; rec "${key}_p90_ms" "$p90"
  log "$key $dst: median $p50 ms, avg $2 ms (min $1 p90 $p90 max $3) loss ${loss}%"
}

start_iperf_server() {
  start_bg $NS_B "$LOGS/r$CUR_ROUND-$CUR_VARIANT-iperf3-server.log" iperf3 -s -p $IPERF_PORT || return 1
  IPERF_SRV_PID=$LAST_PID
  local i
  for i in $(seq 1 30); do
    ip netns exec $NS_B ss -Htln "sport = :$IPERF_PORT" | grep -q . && return 0
    sleep 0.1
  done
  return 1
}

# iperf_run JSON SECS ARGS... : one iperf3 client run from NS_A; sets IR_* (CPU, frags, rc)
iperf_run() {
  local json=$1 secs=$2; shift 2
  local v0 v1 sb0 st0 sb1 st1 f0 f1 hz
  hz=$(getconf CLK_TCK)
  sleep 0.5
  f0=$(frags); read -r sb0 st0 < <(sys_cpu); v0=$(vpn_ticks)
  timeout -k 5 $((secs + 30)) ip netns exec $NS_A \
    iperf3 -c "$PEER4" -p $IPERF_PORT -t "$secs" --connect-timeout 5000 -J "$@" >"$json" 2>"$json.stderr"
  IR_RC=$?
  v1=$(vpn_ticks); read -r sb1 st1 < <(sys_cpu); f1=$(frags)
  IR_FRAGS=$((f1 - f0))
  IR_VPN_CPU=$(awk -v a="$v0" -v b="$v1" -v hz="$hz" 'BEGIN{printf "%.3f", (b-a)/hz}')
  IR_SYS_CPU=$(awk -v a="$sb0" -v b="$sb1" -v hz="$hz" 'BEGIN{printf "%.3f", (b-a)/hz}')
  IR_STEAL=$(awk -v a="$st0" -v b="$st1" -v hz="$hz" 'BEGIN{printf "%.3f", (b-a)/hz}')
  vpn_all_alive || { IR_VPN_CPU=NA; note vpn_died "a VPN process died during $(basename "$json")"; }
  IR_ERR=$(jq -r '.error // empty' "$json" 2>/dev/null)
  if [ $IR_RC -ne 0 ] || [ -n "$IR_ERR" ] || ! jq -e '.end.sum_received' "$json" >/dev/null 2>&1; then
    IR_OK=0
    stop_pids "$IPERF_SRV_PID"; start_iperf_server || log "iperf3 server restart failed"   # a failed run can wedge it
  else
    IR_OK=1
  fi
}
per_gb() { awk -v c="$1" -v b="$2" 'BEGIN{ if (c != "NA" && b > 0) printf "%.3f", c/(b/1e9); else print "NA"}'; }

do_tcp() { # KEY ARGS...
  local key=$1; shift
  local json="$RAW/r$CUR_ROUND-$CUR_VARIANT-$key.json" bps bytes retr mbps
  iperf_run "$json" "$DUR" "$@"
  if [ $IR_OK != 1 ]; then log "$key FAILED rc=$IR_RC $IR_ERR"; note "${key}_fail" "rc=$IR_RC $IR_ERR"; return 1; fi
  read -r bps bytes retr < <(jq -r '[.end.sum_received.bits_per_second, .end.sum_received.bytes, (.end.sum_sent.retransmits // "NA")] | @tsv' "$json")
  mbps=$(awk -v b="$bps" 'BEGIN{printf "%.1f", b/1e6}')
  rec "${key}_mbps" "$mbps"; rec "${key}_bytes" "$bytes"; rec "${key}_retrans" "$retr"
  rec "${key}_frags" "$IR_FRAGS"; rec "${key}_steal_s" "$IR_STEAL"; rec "${key}_sys_cpu_s" "$IR_SYS_CPU"
  rec "${key}_sys_cpu_s_per_gb" "$(per_gb "$IR_SYS_CPU" "$bytes")"
  if [ ${#VPN_PIDS[@]} -gt 0 ]; then
    rec "${key}_vpn_cpu_s" "$IR_VPN_CPU"; rec "${key}_vpn_cpu_s_per_gb" "$(per_gb "$IR_VPN_CPU" "$bytes")"
  fi
  log "$key: $mbps Mbit/s, retrans $retr, vpn cpu ${IR_VPN_CPU}s ($(per_gb "$IR_VPN_CPU" "$bytes") s/GB), box ${IR_SYS_CPU}s, steal ${IR_STEAL}s, frags $IR_FRAGS"
}

# udp_step PPS(0 = unlimited) : one UDP run of UDP_STEP_DUR; sets US_* (offered/received pps, loss)
udp_step() {
  local pps=$1 n=$((++UDP_STEP_N)) json rate sp ss rb rs lp bl
  json="$RAW/r$CUR_ROUND-$CUR_VARIANT-udp-$n.json"
  rate=$(( pps * UDP_LEN * 8 ))
  local e0 e1
  e0=$(udp_rcvbuf_errs)
  iperf_run "$json" "$UDP_STEP_DUR" -u -b "$rate" -l "$UDP_LEN" -w "$UDP_WINDOW"
  e1=$(udp_rcvbuf_errs); US_RCVBUF=$((e1 - e0))
  if [ $IR_OK != 1 ]; then
    log "udp step $n (target $pps pps) FAILED rc=$IR_RC $IR_ERR"; note "udp_step_fail" "target $pps pps: rc=$IR_RC $IR_ERR"
    US_OK=0; US_LOSS=100; US_RX=0; US_TX=0; US_FRAGS=$IR_FRAGS; return 1
  fi
  # Loss is counted end to end: 1 − packets received ÷ packets sent. iperf3's own lost_percent only
  # counts sequence gaps up to the highest number received, so datagrams still queued (or dropped)
  # when the test ends are not in it — with big socket buffers that hides an overloaded receiver.
  local rp rl ipl
  read -r sp ss rp rl ipl bl < <(jq -r '[.end.sum_sent.packets, .end.sum_sent.seconds, .end.sum_received.packets,
      .end.sum_received.lost_packets, .end.sum_received.lost_percent, .start.test_start.blksize] | @tsv' "$json")
  US_TX=$(awk -v p="$sp" -v s="$ss" 'BEGIN{printf "%.0f", p/s}')
  US_RX=$(awk -v p="$rp" -v l="$rl" -v s="$ss" 'BEGIN{printf "%.0f", (p-l)/s}')
  US_LOSS=$(awk -v p="$rp" -v l="$rl" -v t="$sp" 'BEGIN{ if (t <= 0) {print "100.000"; exit} x=100*(1-(p-l)/t); if (x < 0) x=0; printf "%.3f", x}')
  US_CPU=$IR_VPN_CPU; US_BYTES=$(awk -v p="$rp" -v l="$rl" -v b="$bl" 'BEGIN{printf "%.0f", (p-l)*b}'); US_FRAGS=$IR_FRAGS; US_OK=1
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$CUR_ROUND" "$CUR_VARIANT" "$n" "$pps" "$US_TX" "$US_RX" "$US_LOSS" "$IR_FRAGS" "$US_RCVBUF" >>"$OUTDIR/udp-sweep.tsv"
  log "udp step $n: target $pps pps, sent $US_TX pps, received $US_RX pps, loss $US_LOSS% (iperf3 gap count ${ipl}%), UDP rcvbuf drops (both ns) $US_RCVBUF, frags $IR_FRAGS"
}

# The highest UDP packet rate with loss < UDP_LOSS_MAX %: one unlimited probe (-b 0) gives the
# sender's ceiling (offered) and the overload delivery rate; then a geometric bisection between
# the highest passing and the lowest failing offered rate, ≤ UDP_MAX_STEPS steps, stopping at 5 %.
do_udp_sweep() {
  UDP_STEP_N=0
  local lo=0 hi=0 cand=0 i best_rx=0 best_loss=NA best_cpu=NA best_bytes=0 frag_total=0 steps=0 limited=0
  udp_step 0 || { rec udp_status failed; return 1; }
  frag_total=$((frag_total + US_FRAGS))
  rec udp_overload_tx_pps "$US_TX"; rec udp_overload_rx_pps "$US_RX"; rec udp_overload_loss_pct "$US_LOSS"
  rec udp_overload_vpn_cpu_s_per_gb "$(per_gb "$US_CPU" "$US_BYTES")"
  if awk -v l="$US_LOSS" -v m="$UDP_LOSS_MAX" 'BEGIN{exit !(l < m)}'; then
    # even the unlimited sender loses < 1 %: the sender is the limit
    lo=$US_TX; best_rx=$US_RX; best_loss=$US_LOSS; best_cpu=$US_CPU; best_bytes=$US_BYTES; limited=1
  else
    hi=$(awk -v t="$US_TX" -v r="$US_RX" -v f="$UDP_HI_FACTOR" 'BEGIN{h=r*f; if (t < h) h=t; printf "%.0f", h}')
    cand=$US_RX
    [ "$cand" -lt 100 ] && cand=100
    for ((i = 1; i <= UDP_MAX_STEPS; i++)); do
      udp_step "$cand"; steps=$i
      frag_total=$((frag_total + ${US_FRAGS:-0}))
      if [ "$US_OK" = 1 ] && awk -v l="$US_LOSS" -v m="$UDP_LOSS_MAX" 'BEGIN{exit !(l < m)}'; then
        if [ "$cand" -gt "$lo" ]; then
          lo=$cand; best_rx=$US_RX; best_loss=$US_LOSS; best_cpu=$US_CPU; best_bytes=$US_BYTES
        fi
      else
        [ "$cand" -lt "$hi" ] && hi=$cand
      fi
      if [ "$lo" -gt 0 ]; then
        awk -v h="$hi" -v l="$lo" 'BEGIN{exit !(h/l < 1.05)}' && break
        cand=$(awk -v h="$hi" -v l="$lo" 'BEGIN{printf "%.0f", sqrt(h*l)}')
      else
        cand=$(awk -v c="$cand" 'BEGIN{printf "%.0f", c*0.6}')
        [ "$cand" -lt 100 ] && break
      fi
    done
  fi
  rec udp_sweep_steps "$steps"; rec udp_frags "$frag_total"; rec udp_sender_limited "$limited"
  if [ "$lo" -gt 0 ]; then
    rec udp_pps "$best_rx"; rec udp_offered_pps "$lo"; rec udp_loss_pct "$best_loss"
    rec udp_mbps "$(awk -v p="$best_rx" -v l="$UDP_LEN" 'BEGIN{printf "%.1f", p*l*8/1e6}')"
    [ "$hi" -gt 0 ] && rec udp_bracket_hi_pps "$hi"
    [ ${#VPN_PIDS[@]} -gt 0 ] && rec udp_vpn_cpu_s_per_gb "$(per_gb "$best_cpu" "$best_bytes")"
    log "udp: highest rate with < ${UDP_LOSS_MAX}% loss: $best_rx pps received (offered $lo, loss $best_loss%; next failing offered rate $hi)"
  else
    rec udp_pps 0; note udp_no_pass "no rate down to ~100 pps had < ${UDP_LOSS_MAX}% loss"
    log "udp: no tested rate had < ${UDP_LOSS_MAX}% loss"
  fi
}

# ------------------------------------------------------------------ key material
gen_keys() {
  local d=$WORK/keys
  mkdir -p "$d"
  ( umask 077; cd "$d" || exit 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
      -subj /CN=wb-ca -days 2 -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 || exit 1
    for n in server client; do
      [ $n = server ] && eku=serverAuth || eku=clientAuth
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key -out $n.csr \
        -subj /CN=wb-$n >/dev/null 2>&1 || exit 1
      printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n' $eku >$n.ext
      openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $n.crt -days 2 \
        -extfile $n.ext >/dev/null 2>&1 || exit 1
    done
    openvpn --genkey tls-crypt ta.key >/dev/null 2>&1 || exit 1
  ) || log "x509 / tls-crypt key generation had errors"
  if command -v wg >/dev/null; then
    ( umask 077; cd "$d" && wg genkey >wg-a.key && wg pubkey <wg-a.key >wg-a.pub && wg genkey >wg-b.key && wg pubkey <wg-b.key >wg-b.pub ) ||
      log "wireguard key generation failed"
  fi
}

# ------------------------------------------------------------------ VPN setups
# Each up_* sets VPN_PIDS, PEER4 (the address in NS_B the traffic goes to), PEER6 ('' = no IPv6);
# returns 0 when started. A failure reason is recorded with `fail`.

# OpenVPN-style config files: the SAME files are given to weft and to openvpn.
ovpn_confs() { # DIR PROTO(udp|tcp) CIPHER
  local d=$1 proto=$2 cipher=$3 k=$WORK/keys
  mkdir -p "$d"
  { echo "dev tun"
    [ "$proto" = udp ] && echo "proto udp" || echo "proto tcp-server"
    echo "port $OVPN_PORT"
    echo "topology subnet"
    echo "server $T_NET.0 255.255.255.0"
    echo "server-ipv6 fd00:9::/64"
    echo "tun-mtu $TUN_MTU"
    echo "ca $k/ca.crt"; echo "cert $k/server.crt"; echo "key $k/server.key"
    echo "dh none"
    echo "tls-crypt $k/ta.key"
    echo "data-ciphers $cipher"
    echo "keepalive 10 60"
    echo "verb 3"
  } >"$d/server.conf"
  { echo "client"
    echo "dev tun"
    [ "$proto" = udp ] && echo "proto udp" || echo "proto tcp-client"
    echo "remote $U_A4 $OVPN_PORT"
    echo "nobind"
    echo "tun-mtu $TUN_MTU"
    echo "ca $k/ca.crt"; echo "cert $k/client.crt"; echo "key $k/client.key"
    echo "remote-cert-tls server"
    echo "tls-crypt $k/ta.key"
    echo "data-ciphers $cipher"
    echo "verb 3"
  } >"$d/client.conf"
}

weft_has_server() { local h; [ -x "$WEFT_BIN" ] || return 1; h=$("$WEFT_BIN" server --help 2>&1); grep -qi -- '-config' <<<"$h"; }

# vpn_cmd IMPL ROLE CONF PROFILE_FILE -> prints nothing, sets CMDV (array)
vpn_cmd() {
  local impl=$1 role=$2 conf=$3 prof=$4
  CMDV=()
  if [ "$impl" = weft ]; then
    [ -n "$prof" ] && CMDV=(env "WEFT_CPUPROFILE=$prof")
    CMDV+=("$WEFT_BIN" "$role" --config "$conf")
  else
    CMDV=(openvpn --config "$conf")
  fi
}

up_ovpnlike() { # SERVER_IMPL CLIENT_IMPL PROTO CIPHER
  local simpl=$1 cimpl=$2 proto=$3 cipher=$4 d=$WORK/cfg/$3-$4 i ss_flag mode sprof="" cprof=""
  local la="$LOGS/r$CUR_ROUND-$CUR_VARIANT-a.log" lb="$LOGS/r$CUR_ROUND-$CUR_VARIANT-b.log"
  if { [ "$simpl" = openvpn ] || [ "$cimpl" = openvpn ]; } && ! command -v openvpn >/dev/null; then fail "openvpn not installed"; return; fi
  if [ "$simpl" = weft ] || [ "$cimpl" = weft ]; then
    [ -x "$WEFT_BIN" ] || { fail "$WEFT_BIN missing (make build)"; return; }
  fi
  if [ "$simpl" = weft ] && ! weft_has_server; then fail "$WEFT_BIN has no 'server' command yet ($("$WEFT_BIN" server --help 2>&1 | head -1))"; return; fi
  [ -f "$d/server.conf" ] || ovpn_confs "$d" "$proto" "$cipher"
  mode=${CUR_VARIANT#weft-}
  if [ "$PROFILE" = 1 ] && [ "$CUR_ROUND" = 1 ]; then
    [ "$simpl" = weft ] && sprof="$OUTDIR/weft-$mode.pprof"
    [ "$cimpl" = weft ] && { [ "$simpl" = weft ] && cprof="$OUTDIR/weft-$mode-client.pprof" || cprof="$OUTDIR/$CUR_VARIANT-client.pprof"; }
  fi
  vpn_cmd "$simpl" server "$d/server.conf" "$sprof"
  start_bg $NS_A "$la" "${CMDV[@]}" || { fail "$simpl server exited at start: $(tail -n 3 "$la" | tr '\n' ' ' | cut -c1-300)"; return; }
  VPN_PIDS+=("$LAST_PID")
  [ "$proto" = udp ] && ss_flag=-Huln || ss_flag=-Htln
  for i in $(seq 1 100); do
    ip netns exec $NS_A ss $ss_flag "sport = :$OVPN_PORT" | grep -q . && break
    pid_alive "$LAST_PID" || break
    sleep 0.1
  done
  ip netns exec $NS_A ss $ss_flag "sport = :$OVPN_PORT" | grep -q . ||
    { fail "$simpl server not listening on $proto/$OVPN_PORT within 10 s: $(tail -n 3 "$la" | tr '\n' ' ' | cut -c1-300)"; return; }
  vpn_cmd "$cimpl" client "$d/client.conf" "$cprof"
  start_bg $NS_B "$lb" "${CMDV[@]}" || { fail "$cimpl client exited at start: $(tail -n 3 "$lb" | tr '\n' ' ' | cut -c1-300)"; return; }
  VPN_PIDS+=("$LAST_PID")
  for i in $(seq 1 $((READY_TIMEOUT * 5))); do
    grep -q 'Initialization Sequence Completed' "$lb" 2>/dev/null && break
    vpn_all_alive || break
    sleep 0.2
  done
  grep -q 'Initialization Sequence Completed' "$lb" ||
    { fail "$cimpl client: no 'Initialization Sequence Completed' within ${READY_TIMEOUT}s: $(tail -n 3 "$lb" | tr '\n' ' ' | cut -c1-300)"; return; }
  PEER4=$(ip -n $NS_B -o -4 addr show | awk '{print $4}' | cut -d/ -f1 | grep "^$T_NET\." | head -1)
  PEER6=$(ip -n $NS_B -o -6 addr show scope global | awk '{print $4}' | cut -d/ -f1 | grep -i '^fd00:9:' | head -1)
  [ -n "$PEER4" ] || { fail "client got no address in $T_NET.0/24"; return; }
  note client_addr "$PEER4 ${PEER6:-no-v6}"
  [ -n "$sprof" ] && note profile_server "$(basename "$sprof")"
  [ -n "$cprof" ] && note profile_client "$(basename "$cprof")"
  return 0
}

up_wg_go() { # BINARY
  local bin=$1 k=$WORK/keys i
  [ -x "$bin" ] || bin=$(command -v "$bin" 2>/dev/null) || true
  [ -n "$bin" ] && [ -x "$bin" ] || { fail "wireguard-go binary $1 not found (scripts/bench-setup.sh builds tools/wireguard)"; return; }
  command -v wg >/dev/null || { fail "wg (wireguard-tools) not installed"; return; }
  start_bg $NS_A "$LOGS/r$CUR_ROUND-$CUR_VARIANT-a.log" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error "$bin" -f $WG_A ||
    { fail "wireguard-go a exited: $(tail -n 3 "$LOGS/r$CUR_ROUND-$CUR_VARIANT-a.log" | tr '\n' ' ')"; return; }
  VPN_PIDS+=("$LAST_PID")
  start_bg $NS_B "$LOGS/r$CUR_ROUND-$CUR_VARIANT-b.log" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error "$bin" -f $WG_B ||
    { fail "wireguard-go b exited: $(tail -n 3 "$LOGS/r$CUR_ROUND-$CUR_VARIANT-b.log" | tr '\n' ' ')"; return; }
  VPN_PIDS+=("$LAST_PID")
  for i in $(seq 1 50); do
    [ -S /var/run/wireguard/$WG_A.sock ] && [ -S /var/run/wireguard/$WG_B.sock ] && break; sleep 0.1
  done
  ip netns exec $NS_A wg set $WG_A listen-port 51820 private-key $k/wg-a.key \
    peer "$(cat $k/wg-b.pub)" allowed-ips $T_B4/32,$T_B6/128 endpoint $U_B4:51820 || { fail "wg set a failed"; return; }
  ip netns exec $NS_B wg set $WG_B listen-port 51820 private-key $k/wg-b.key \
    peer "$(cat $k/wg-a.pub)" allowed-ips $T_A4/32,$T_A6/128 endpoint $U_A4:51820 || { fail "wg set b failed"; return; }
  ip -n $NS_A link set $WG_A mtu "$TUN_MTU"; ip -n $NS_B link set $WG_B mtu "$TUN_MTU"
  ip -n $NS_A addr add $T_A4/24 dev $WG_A; ip -n $NS_A addr add $T_A6/64 dev $WG_A nodad
  ip -n $NS_B addr add $T_B4/24 dev $WG_B; ip -n $NS_B addr add $T_B6/64 dev $WG_B nodad
  ip -n $NS_A link set $WG_A up; ip -n $NS_B link set $WG_B up
  PEER4=$T_B4; PEER6=$T_B6
}

up_nebula() { # NEBULA NEBULA-CERT TAG
  local bin=$1 cert=$2 tag=$3 d=$WORK/$3 s me lh hosts
  [ -x "$bin" ] || bin=$(command -v "$bin" 2>/dev/null) || true
  [ -x "$cert" ] || cert=$(command -v "$cert" 2>/dev/null) || true
  [ -n "$bin" ] && [ -x "$bin" ] && [ -n "$cert" ] && [ -x "$cert" ] || { fail "nebula binaries $1 / $2 not found"; return; }
  mkdir -p "$d"
  if [ ! -f "$d/pbb.crt" ]; then
    ( cd "$d" && umask 077 && "$cert" ca -name wb-ca -duration 24h >/dev/null &&
      "$cert" sign -name pba -ip $T_A4/24 >/dev/null && "$cert" sign -name pbb -ip $T_B4/24 >/dev/null ) 2>"$d/cert.err" ||
      { fail "nebula-cert failed: $(head -c 300 "$d/cert.err")"; return; }
  fi
  for s in a b; do
    if [ $s = a ]; then me=$U_A4; lh=true; hosts='[]'; else me=$U_B4; lh=false; hosts="[\"$T_A4\"]"; fi
    cat >"$d/$s.yml" <<EOF
pki:
  ca: $d/ca.crt
  cert: $d/pb$s.crt
  key: $d/pb$s.key
static_host_map:
  "$T_A4": ["$U_A4:4242"]
  "$T_B4": ["$U_B4:4242"]
lighthouse:
  am_lighthouse: $lh
  interval: 60
  hosts: $hosts
listen:
  host: $me
  port: 4242
punchy:
  punch: false
tun:
  disabled: false
  dev: wbneb-$s
  drop_local_broadcast: false
  drop_multicast: false
  tx_queue: 500
  mtu: $TUN_MTU
logging:
  level: info
  format: text
firewall:
  outbound:
    - port: any
      proto: any
      host: any
  inbound:
    - port: any
      proto: any
      host: any
EOF
  done
  start_bg $NS_A "$LOGS/r$CUR_ROUND-$CUR_VARIANT-a.log" "$bin" -config "$d/a.yml" ||
    { fail "nebula a exited: $(tail -n 3 "$LOGS/r$CUR_ROUND-$CUR_VARIANT-a.log" | tr '\n' ' ' | cut -c1-300)"; return; }
  VPN_PIDS+=("$LAST_PID")
  start_bg $NS_B "$LOGS/r$CUR_ROUND-$CUR_VARIANT-b.log" "$bin" -config "$d/b.yml" ||
    { fail "nebula b exited: $(tail -n 3 "$LOGS/r$CUR_ROUND-$CUR_VARIANT-b.log" | tr '\n' ' ' | cut -c1-300)"; return; }
  VPN_PIDS+=("$LAST_PID")
  PEER4=$T_B4; PEER6=""   # IPv4-only overlay (v1 certificates)
}

cipher_of() { case $1 in *-aes) echo AES-256-GCM ;; *-chacha) echo CHACHA20-POLY1305 ;; *) echo "" ;; esac; }

setup_variant() {
  local v=$1 rest proto cipher
  case $v in
    veth) PEER4=$U_B4; PEER6=$U_B6 ;;
    weft-*|ovpn-*|weftc-*)
      rest=${v#*-}; proto=${rest%%-*}; cipher=$(cipher_of "$v")
      case $proto in udp|tcp) ;; *) fail "unknown variant $v"; return ;; esac
      [ -n "$cipher" ] || { fail "unknown cipher in $v"; return; }
      case $v in
        weft-*)  up_ovpnlike weft weft "$proto" "$cipher" ;;
        ovpn-*)  up_ovpnlike openvpn openvpn "$proto" "$cipher" ;;
        weftc-*) up_ovpnlike openvpn weft "$proto" "$cipher" ;;
      esac ;;
    wg-go-new) up_wg_go "$WG_NEW" ;;
    wg-go-deb) up_wg_go /usr/bin/wireguard-go ;;
    nebula-deb) up_nebula /usr/bin/nebula /usr/bin/nebula-cert nebula-deb ;;
    nebula-new) up_nebula "$NEB_NEW_DIR/nebula" "$NEB_NEW_DIR/nebula-cert" nebula-new ;;
    *) fail "unknown variant $v" ;;
  esac
}

variant_facts() { # what the programs say they negotiated, and the tun MTU actually set
  local la="$LOGS/r$CUR_ROUND-$CUR_VARIANT-a.log" lb="$LOGS/r$CUR_ROUND-$CUR_VARIANT-b.log" x ns side dev
  case $CUR_VARIANT in
    weft-*|ovpn-*|weftc-*)
      x=$(grep -hoE "Data Channel: cipher '[^']*'|data channel key ready.* cipher=[A-Za-z0-9-]+" "$lb" | tail -1)
      note data_channel_client "${x:-not found in client log}"
      if [ -n "$x" ] && ! grep -q -- "$(cipher_of "$CUR_VARIANT")" <<<"$x"; then
        note cipher_mismatch "expected $(cipher_of "$CUR_VARIANT"), client log says: $x"
      fi
      x=$(grep -hiE 'ovpn-dco|data channel offload' "$la" "$lb" | head -1 | cut -c1-160); [ -n "$x" ] && note dco "$x" ;;
    nebula-*)
      x=$(grep -h 'Nebula interface is active' "$la" | grep -o 'build=[^ ]*' | tail -1); note nebula_build "${x:-NA}" ;;
    wg-go-*)
      x=$(ip netns exec $NS_A wg show $WG_A latest-handshakes 2>/dev/null | awk '{print $2}'); note wg_handshake_epoch "${x:-NA}" ;;
  esac
  for ns in $NS_A $NS_B; do
    side=${ns##*-}
    dev=$(ip -n $ns -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -v -e '^lo$' -e '^wbveth' | head -1)
    [ -n "$dev" ] && note "tun_mtu_$side" "$dev $(ip -n $ns -o link show dev "$dev" | grep -o 'mtu [0-9]*')"
  done
}

teardown_variant() {
  stop_pids ${IPERF_SRV_PID:+"$IPERF_SRV_PID"}
  IPERF_SRV_PID=""
  stop_pids "${VPN_PIDS[@]}"
  VPN_PIDS=()
  local p keep=()
  for p in "${ALL_PIDS[@]}"; do
    if pid_alive "$p"; then keep+=("$p"); else wait "$p" 2>/dev/null; unset "PSTART[$p]"; fi
  done
  ALL_PIDS=("${keep[@]}")
  sleep 0.3
  assert_clean
}

measure() { [[ " $MEASURE " == *" $1 "* ]]; } # is figure $1 in MEASURE?

run_variant() {
  CUR_VARIANT=$1
  local t0=$SECONDS
  VPN_PIDS=(); PEER4=""; PEER6=""
  assert_clean
  log "---- round $CUR_ROUND/$ROUNDS: $CUR_VARIANT (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
  rec loadavg1 "$(cut -d' ' -f1 /proc/loadavg)"
  local bb t_q=$((SECONDS + QUIET_WAIT))
  bb=$(bg_busy)
  while [ "$QUIET_WAIT" -gt 0 ] && [ $SECONDS -lt $t_q ] && awk -v b="$bb" -v m="$QUIET_MAX_BUSY" 'BEGIN{exit !(b != "NA" && b > m)}'; do
    log "other load ${bb}% > ${QUIET_MAX_BUSY}%: waiting (≤ $((t_q - SECONDS)) s more)"
    sleep 4; bb=$(bg_busy)
  done
  rec bg_busy_pct "$bb"
  awk -v b="$bb" 'BEGIN{exit !(b != "NA" && b > 25)}' && note busy_box "other load ${bb}% of the CPUs just before this variant: figures are contaminated"
  if ! setup_variant "$CUR_VARIANT"; then
    rec status failed; teardown_variant; return
  fi
  if ! wait_ping $NS_A "$PEER4" "$READY_TIMEOUT"; then
    fail "no IPv4 reply from $PEER4 within ${READY_TIMEOUT}s"
    rec status failed; teardown_variant; return
  fi
  rec setup_s $((SECONDS - t0))
  start_iperf_server || { fail "iperf3 server did not start"; rec status failed; teardown_variant; return; }
  # settle: a few discarded pings (first packets can meet ARP/ND, route and key setup)
  sleep 0.5; ip netns exec $NS_A ping -q -c 5 -i 0.05 -W 1 "$PEER4" >/dev/null 2>&1
  measure ping && do_ping ping4 "$PEER4"
  if [ -n "$PEER6" ] && measure ping; then
    if wait_ping $NS_A "$PEER6" 5; then do_ping ping6 "$PEER6"; else note ping6_fail "no IPv6 reply from $PEER6"; fi
  fi
  local ok=1
  if measure tcp1; then do_tcp tcp1 || ok=0; fi
  if measure tcp4; then do_tcp tcp4 -P 4 || ok=0; fi
  if measure udp; then do_udp_sweep || ok=0; fi
  if vpn_all_alive; then
    [ $ok = 1 ] && rec status ok || rec status partial
  else
    note vpn_died "a VPN process exited during the measurements"; rec status partial
  fi
  variant_facts
  teardown_variant
  log "variant took $((SECONDS - t0))s"
}

profile_tops() { # pprof -top text beside every profile written
  local f
  for f in "$OUTDIR"/*.pprof; do
    [ -e "$f" ] || continue
    if [ -s "$f" ]; then
      timeout 120 "$GO" tool pprof -top -nodecount=60 "$WEFT_BIN" "$f" >"${f%.pprof}.top.txt" 2>&1 ||
        log "pprof -top of $(basename "$f") failed"
    fi
  done
  # profiles that were requested but not written (WEFT_CPUPROFILE not honoured by this bin/weft?)
  awk -F'\t' '$3 ~ /^profile_/ {print $4}' "$OUTDIR/notes.tsv" | sort -u | while read -r f; do
    [ -s "$OUTDIR/$f" ] || printf '%s\t%s\t%s\t%s\n' 0 "" profile_missing "$f was requested (WEFT_CPUPROFILE) but not written" >>"$OUTDIR/notes.tsv"
  done
}

record_versions() {
  local wv
  meta mode "$MODE"
  meta started_utc "$(date -u +%FT%TZ)"
  meta kernel "$(uname -r)"
  meta cpu "$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
  meta ncpu "$(nproc)"
  meta cpu_flags "$(grep -m1 -o -w -e aes -e vaes -e avx2 -e avx512f /proc/cpuinfo | sort -u | tr '\n' ' ')"
  meta rounds "$ROUNDS"; meta dur_s "$DUR"; meta pings "$PINGS"; meta ping_interval "$PING_INTERVAL"
  meta tun_mtu "$TUN_MTU"; meta udp_len "$UDP_LEN"; meta udp_step_s "$UDP_STEP_DUR"; meta udp_max_steps "$UDP_MAX_STEPS"
  meta udp_loss_max_pct "$UDP_LOSS_MAX"; meta udp_iperf_window "$UDP_WINDOW"; meta udp_hi_factor "$UDP_HI_FACTOR"; meta veth_mtu 1500; meta variants "$VARIANTS"; meta profile "$PROFILE"
  meta direction "iperf3 client in ns a (VPN server side) sends to ns b (VPN client side)"
  meta go "$("$GO" version 2>/dev/null)"
  meta weft "$("$WEFT_BIN" version 2>/dev/null | head -1) ($WEFT_BIN, built $(date -u -r "$WEFT_BIN" +%FT%TZ 2>/dev/null))"
  meta weft_git "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' +uncommitted changes')"
  meta weft_server "$(weft_has_server && echo yes || echo "no ('$WEFT_BIN server' not available)")"
  meta openvpn "$(openvpn --version 2>/dev/null | head -1 | cut -d' ' -f1-2) ($(openvpn --version 2>/dev/null | sed -n 's/^library versions: \(OpenSSL [^ ,]*\).*/\1/p'))"
  wv=$(cat "$ROOT/tools/wireguard.version" 2>/dev/null)
  meta wg_go_new "$("$WG_NEW" --version 2>/dev/null | head -1 | awk '{print $2}') (${wv:-module version unknown}, $(go version "$WG_NEW" 2>/dev/null | awk '{print $2}'))"
  meta wg_go_deb "$(/usr/bin/wireguard-go --version 2>/dev/null | head -1 | awk '{print $2}') (Debian $(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null))"
  meta nebula_deb "$(/usr/bin/nebula -version 2>/dev/null | awk '/Version/{print $2}') (Debian $(dpkg-query -W -f='${Version}' nebula 2>/dev/null))"
  meta nebula_new "$("$NEB_NEW_DIR/nebula" -version 2>/dev/null | awk '/Version/{print $2}') (Go module proxy, $(go version "$NEB_NEW_DIR/nebula" 2>/dev/null | awk '{print $2}'))"
  meta iperf3 "$(iperf3 --version 2>/dev/null | head -1)"
  meta wireguard_tools "$(dpkg-query -W -f='${Version}' wireguard-tools 2>/dev/null)"
}

lock_holders() { # processes with FILE open (the lock's holders), for the error message
  local f p t out=""
  for f in /proc/[0-9]*/fd/*; do
    t=$(readlink "$f" 2>/dev/null) || continue
    [ "$t" = "$1" ] || continue
    p=${f#/proc/}; p=${p%%/*}
    { [ "$p" = $$ ] || [ "$p" = "$BASHPID" ]; } && continue
    out+="pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80); "
  done
  printf '%s' "${out:-holder unknown}"
}

# ------------------------------------------------------------------ main
main() {
  [ "$(id -u)" = 0 ] || { echo "bench/run.sh needs root (network namespaces, TUN)" >&2; exit 1; }
  if [ "${SETUP:-1}" = 1 ]; then "$ROOT/scripts/bench-setup.sh" || echo "bench: setup reported problems; missing programs are recorded as failed variants" >&2; fi
  for c in ip iperf3 ping jq timeout awk ss flock openssl; do command -v $c >/dev/null || { echo "missing $c (run scripts/bench-setup.sh)" >&2; exit 1; }; done
  [ -c /dev/net/tun ] || { echo "/dev/net/tun missing" >&2; exit 1; }
  if [ "${WEFT_BUILD:-0}" = 1 ] || [ ! -x "$WEFT_BIN" ]; then
    (cd "$ROOT" && "$GO" build -o "$WEFT_BIN" ./cmd/weft) || echo "bench: building $WEFT_BIN failed; weft variants will be recorded as failed" >&2
  fi

  mkdir -p /run/lock
  exec 9>>"$LOCK" || { echo "cannot open $LOCK" >&2; exit 1; }
  flock -w "$LOCK_WAIT" 9 || { echo "another benchmark holds $LOCK — $(lock_holders "$LOCK") ($(cat "$LOCK.owner" 2>/dev/null)); set LOCK_WAIT=<s> to wait" >&2; exit 2; }
  exec 8>>"$PEER_LOCK" || { echo "cannot open $PEER_LOCK" >&2; exit 1; }
  flock -w "$LOCK_WAIT" 8 || { echo "another benchmark holds $PEER_LOCK — $(lock_holders "$PEER_LOCK") ($(cat "$PEER_LOCK.owner" 2>/dev/null)); set LOCK_WAIT=<s> to wait" >&2; exit 2; }

  START_TS=$SECONDS   # the run's clock (time-left checks, "done in") starts once the locks are held
  OUTDIR=$OUT_ROOT/$(date -u +%Y%m%dT%H%M%SZ)
  [ -e "$OUTDIR" ] && OUTDIR=$OUTDIR-$$
  mkdir -p "$OUTDIR" || exit 1
  echo "pid $$ started $(date -u +%FT%TZ) outdir $OUTDIR" >"$LOCK.owner"
  RAW=$OUTDIR/raw; LOGS=$OUTDIR/logs
  mkdir -p "$RAW" "$LOGS"
  : >"$OUTDIR/results.tsv"; : >"$OUTDIR/notes.tsv"; : >"$OUTDIR/meta.tsv"
  printf 'round\tvariant\tstep\ttarget_pps\ttx_pps\trx_pps\tloss_pct\tfrags\tudp_rcvbuf_errors\n' >"$OUTDIR/udp-sweep.tsv"

  WORK=$(mktemp -d /tmp/weft-bench.XXXXXX)
  trap on_exit EXIT
  trap 'log "signal received, stopping"; exit 130' INT TERM
  ( trap 'kill $sp 2>/dev/null; exit 0' TERM
    sleep "$MAX_RUNTIME" & sp=$!; wait $sp
    echo "watchdog: MAX_RUNTIME=${MAX_RUNTIME}s reached, terminating the run" >&2
    kill -TERM "$MAIN_PID" 2>/dev/null ) 9>&- 8>&- &
  WATCHDOG_PID=$!

  record_versions
  ns_create
  gen_keys
  log "mode $MODE: $ROUNDS round(s) x $NVAR variants (~${PER_VARIANT_EST}s each), tunnel MTU $TUN_MTU, UDP datagrams $UDP_LEN B; watchdog ${MAX_RUNTIME}s"
  log "variants: $VARIANTS"
  for ((CUR_ROUND=1; CUR_ROUND<=ROUNDS; CUR_ROUND++)); do
    for v in $VARIANTS; do
      if [ $((SECONDS - START_TS + PER_VARIANT_EST + 20)) -gt "$MAX_RUNTIME" ]; then
        CUR_VARIANT=$v; note not_run "not enough time left (MAX_RUNTIME) in round $CUR_ROUND"; log "not enough time left; stopping"; break 2
      fi
      run_variant "$v"
    done
  done
  CUR_VARIANT=""
  mkdir -p "$OUTDIR/configs"
  ( cd "$WORK" && find . -type f \( -name '*.conf' -o -name '*.yml' \) -exec cp --parents {} "$OUTDIR/configs/" \; ) 2>/dev/null
  cleanup   # stops the VPNs (profiles are written on SIGTERM) before the report
  profile_tops; TOPS_DONE=1
  grep -q $'\tstatus\t' "$OUTDIR/results.tsv" || { log "no variant was measured"; return 1; }
  return 0
}

main "$@"; exit $?
