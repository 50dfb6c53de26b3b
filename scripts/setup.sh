#!/usr/bin/env bash
# scripts/setup.sh — install what weft's tests and demo need (Debian/Ubuntu).
#
# Idempotent and quick when everything is present (one dpkg-query, no apt).
# Installs missing packages with apt-get (one `apt-get update`, no recommends).
# Not root: warns and continues; tests that need root/TUN/openvpn then skip loudly.
set -euo pipefail

PKGS=(openvpn iperf3 iproute2 iputils-ping openssl libssl-dev pkg-config curl procps nftables)
# command that proves each package is usable (libssl-dev: headers)
declare -A PROBE=(
	[openvpn]="command -v openvpn"
	[iperf3]="command -v iperf3"
	[iproute2]="command -v ip"
	[iputils-ping]="command -v ping"
	[openssl]="command -v openssl"
	[libssl-dev]="test -e /usr/include/openssl/ssl.h"
	[curl]="command -v curl"
	[procps]="command -v ps"
	[pkg-config]="command -v pkg-config"
	[nftables]="command -v nft"
)

say()  { printf 'setup: %s\n' "$*"; }
warn() { printf '\nsetup: WARNING: %s\n\n' "$*" >&2; }

# openvpn lives in /usr/sbin; make sure probes see it for non-login shells
export PATH="$PATH:/usr/sbin:/sbin"

missing=()
for p in "${PKGS[@]}"; do
	if command -v dpkg-query >/dev/null 2>&1; then
		if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ]; then
			continue
		fi
	elif eval "${PROBE[$p]}" >/dev/null 2>&1; then
		continue
	fi
	missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		warn "not root: cannot install ${missing[*]}. Tests that need them (or root) will SKIP loudly. Run 'sudo scripts/setup.sh' to install."
	elif ! command -v apt-get >/dev/null 2>&1; then
		warn "no apt-get: install these yourself: ${missing[*]}"
	else
		say "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q
		apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
fi

# /dev/net/tun (containers sometimes lack the node)
if [ ! -c /dev/net/tun ]; then
	if [ "$(id -u)" -eq 0 ]; then
		mkdir -p /dev/net && mknod /dev/net/tun c 10 200 2>/dev/null && chmod 0666 /dev/net/tun ||
			warn "/dev/net/tun missing and could not be created; TUN tests will SKIP loudly"
	else
		warn "/dev/net/tun missing; TUN tests will SKIP loudly"
	fi
fi

if [ "$(id -u)" -ne 0 ]; then
	warn "not root: namespace/TUN interop tests will SKIP loudly (run as root for the full suite)"
fi
command -v go >/dev/null 2>&1 || warn "go not found in PATH (need Go 1.26)"

still=()
for p in "${PKGS[@]}"; do
	eval "${PROBE[$p]}" >/dev/null 2>&1 || still+=("$p")
done
if [ ${#still[@]} -gt 0 ]; then
	warn "still missing: ${still[*]}"
else
	say "all test dependencies present ($(openvpn --version 2>/dev/null | head -n1 | cut -d' ' -f1-2))"
fi
