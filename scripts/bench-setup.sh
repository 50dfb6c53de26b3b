#!/usr/bin/env bash
# scripts/bench-setup.sh — install what `make bench` / bench/run.sh needs (Debian).
#
# Idempotent and quick when everything is present (dpkg-query, then nothing).
#  * Debian packages, no recommends (wireguard-tools would otherwise pull a whole
#    kernel image to satisfy "wireguard-modules"):
#      iperf3 openvpn wireguard-go wireguard-tools nebula sysstat iputils-ping
#      iproute2 jq openssl procps util-linux coreutils
#  * the newest wireguard-go, built from the Go module proxy with our Go into
#    tools/ (git-ignored):  GOBIN=$PWD/tools go install golang.zx2c4.com/wireguard@<ver>
#    It lands as tools/wireguard; we keep that name and record the version in
#    tools/wireguard.version.
#  * nebula v1.10.3 from the proxy into tools/nebula-v1.10.3/ (optional: a failure
#    is reported, never fatal; Debian's 1.6.1 is the default nebula peer).
# Needs root for apt-get; without root it only reports what is missing.
# Env: WG_GO_VERSION (default below), NEBULA_PROXY_VERSION (default v1.10.3, "" = skip),
#      BENCH_SETUP_OFFLINE=1 (no apt-get / no go install; only report).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
WG_GO_MODULE=golang.zx2c4.com/wireguard
WG_GO_VERSION=${WG_GO_VERSION:-v0.0.0-20260522210424-ecfc5a8d5446}
NEBULA_PROXY_VERSION=${NEBULA_PROXY_VERSION-v1.10.3}
TOOLS=$ROOT/tools
GO=${GO:-go}
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"

say()  { printf 'bench-setup: %s\n' "$*" >&2; }
warn() { printf 'bench-setup: WARNING: %s\n' "$*" >&2; }

PKGS=(iperf3 openvpn wireguard-go wireguard-tools nebula sysstat iputils-ping iproute2 jq openssl procps util-linux coreutils)
missing=()
for p in "${PKGS[@]}"; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
rc=0
if [ ${#missing[@]} -gt 0 ]; then
	if [ "${BENCH_SETUP_OFFLINE:-0}" = 1 ]; then
		warn "missing (offline mode, not installing): ${missing[*]}"; rc=1
	elif [ "$(id -u)" -ne 0 ]; then
		warn "not root: cannot install ${missing[*]} (run as root)"; rc=1
	else
		say "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		timeout 600 apt-get update -q >&2 || warn "apt-get update failed"
		timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || { warn "apt-get install failed"; rc=1; }
	fi
fi

[ -c /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200 2>/dev/null && chmod 0666 /dev/net/tun; } ||
	warn "/dev/net/tun missing"

# ---- newest wireguard-go from the Go module proxy, into tools/
mkdir -p "$TOOLS"
want="$WG_GO_MODULE@$WG_GO_VERSION"
if [ -x "$TOOLS/wireguard" ] && [ "$(cat "$TOOLS/wireguard.version" 2>/dev/null)" = "$want" ]; then
	say "tools/wireguard is $want"
elif [ "${BENCH_SETUP_OFFLINE:-0}" = 1 ]; then
	warn "tools/wireguard ($want) not built (offline mode)"; rc=1
else
	say "building $want into tools/ with $($GO version 2>/dev/null)"
	# outside the weft module, so that our go.mod (which pins an older wireguard for tun/) is not involved
	if (cd "$TOOLS" && GOBIN=$TOOLS GOFLAGS=-buildvcs=false timeout 900 "$GO" install "$want") >&2; then
		echo "$want" >"$TOOLS/wireguard.version"
		say "built tools/wireguard"
	else
		warn "go install $want failed"; rc=1
	fi
fi

# ---- nebula from the proxy (optional)
if [ -n "$NEBULA_PROXY_VERSION" ]; then
	nd=$TOOLS/nebula-$NEBULA_PROXY_VERSION
	if [ -x "$nd/nebula" ] && [ -x "$nd/nebula-cert" ]; then
		say "tools/nebula-$NEBULA_PROXY_VERSION present"
	elif [ "${BENCH_SETUP_OFFLINE:-0}" = 1 ]; then
		:
	else
		mkdir -p "$nd"
		say "building github.com/slackhq/nebula@$NEBULA_PROXY_VERSION (nebula, nebula-cert) into ${nd#$ROOT/}/ (optional)"
		if (cd "$nd" && GOBIN=$nd GOFLAGS=-buildvcs=false timeout 900 "$GO" install \
			"github.com/slackhq/nebula/cmd/nebula@$NEBULA_PROXY_VERSION" \
			"github.com/slackhq/nebula/cmd/nebula-cert@$NEBULA_PROXY_VERSION") >"$nd/build.log" 2>&1; then
			say "built ${nd#$ROOT/}/nebula"
		else
			warn "nebula $NEBULA_PROXY_VERSION did not build (optional; see ${nd#$ROOT/}/build.log); Debian's nebula is used"
		fi
	fi
fi

for c in iperf3 openvpn wireguard-go wg nebula nebula-cert pidstat ping jq ip openssl flock timeout; do
	command -v "$c" >/dev/null 2>&1 || { warn "still missing: $c"; rc=1; }
done
[ "$rc" = 0 ] && say "all bench dependencies present"
exit "$rc"
