#!/usr/bin/env bash
# scripts/fuzz.sh — run every Fuzz* target in the module for $FUZZTIME each.
# Targets are discovered with `go test -list '^Fuzz' ./...`.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}

# `go test -list` prints the matching names of a package, then "ok  <pkg> ...".
mapfile -t targets < <("$GO" test -list '^Fuzz' ./... | awk '
	/^Fuzz/ { names[n++] = $1; next }
	/^ok[ \t]/ { for (i = 0; i < n; i++) print $2 " " names[i]; n = 0 }
')
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no Fuzz* targets found"
	exit 0
fi
echo "fuzz: ${#targets[@]} target(s), ${FUZZTIME} each"
failed=()
for t in "${targets[@]}"; do
	pkg=${t% *}; name=${t#* }
	echo "=== fuzz $pkg $name"
	if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"; then
		failed+=("$pkg.$name")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: all ${#targets[@]} target(s) passed"
