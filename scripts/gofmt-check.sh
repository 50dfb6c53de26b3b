#!/usr/bin/env bash
# scripts/gofmt-check.sh — fail if any Go file in the repo is not gofmt-formatted.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(gofmt -l . | grep -v -E '^(tools|bin)/' || true)
if [ -n "$out" ]; then
	echo "gofmt: these files need formatting (run gofmt -w):" >&2
	echo "$out" >&2
	exit 1
fi
