# weft — see README.md. `make demo` runs the demo, `make test` the tests.
SHELL       := /bin/bash
.SHELLFLAGS := -euo pipefail -c
GO          ?= go
BIN         := bin/weft
WEFT_BIN    := $(abspath $(BIN))
FUZZTIME    ?= 10s
TEST_TIMEOUT ?= 20m
BENCH_DIR   := bench/results

.PHONY: all build setup test vet fmt-check fuzz bench demo clean

all: build

## build: the weft binary at bin/weft
build:
	$(GO) build -o $(BIN) ./cmd/weft

## setup: install test/demo dependencies when missing (Debian; quick when present)
setup:
	./scripts/setup.sh

vet:
	$(GO) vet ./...

fmt-check:
	./scripts/gofmt-check.sh

## test: setup, vet, gofmt check, build, then all tests (unit + netns interop in ./test)
test: setup
	$(GO) vet ./...
	./scripts/gofmt-check.sh
	$(GO) build ./...
	$(GO) build -o $(BIN) ./cmd/weft
	WEFT_BIN=$(WEFT_BIN) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## fuzz: every Fuzz* target for FUZZTIME (default 10s) each
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

## bench: Go benchmarks, results in bench/results/
bench:
	mkdir -p $(BENCH_DIR)
	f=$(BENCH_DIR)/bench-$$(date -u +%Y%m%dT%H%M%SZ).txt; \
	$(GO) test -run '^$$' -bench . -benchmem ./... | tee "$$f"; \
	cp "$$f" $(BENCH_DIR)/latest.txt; echo "bench: results in $$f"

## demo: openvpn server + weft client in network namespaces (needs root for now)
demo: setup build
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "make demo: needs root for now (network namespaces + TUN); a later issue makes it rootless." >&2; \
		exit 1; \
	fi
	WEFT_BIN=$(WEFT_BIN) $(GO) test -count=1 -timeout 5m ./test -run '^TestDemo$$' -v

clean:
	rm -rf bin $(BENCH_DIR)/*.tmp testdata/fuzz-tmp
