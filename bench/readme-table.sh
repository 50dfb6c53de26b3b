#!/usr/bin/env bash
# bench/readme-table.sh — the README performance table, generated from a bench run's results.json.
#
#   bench/readme-table.sh [RUN_DIR]           print the block (default RUN_DIR: bench/results/latest)
#   bench/readme-table.sh --write [RUN_DIR]   rewrite the block between <!-- bench:start --> and
#                                             <!-- bench:end --> in README.md (markers must exist)
# No root needed; reads only RUN_DIR/results.json (written by bench/run.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-go}
write=0
if [ "${1:-}" = --write ]; then write=1; shift; fi
dir=${1:-$ROOT/bench/results/latest}
[ -f "$dir/results.json" ] || { echo "readme-table: $dir/results.json not found (run make bench or make bench-quick first)" >&2; exit 1; }
cd "$ROOT"
if [ $write = 1 ]; then
	"$GO" run ./bench/cmd/benchreport -dir "$dir" -readme "$ROOT/README.md"
	echo "readme-table: README.md block rewritten from $dir/results.json" >&2
else
	"$GO" run ./bench/cmd/benchreport -dir "$dir" -readme -
fi
