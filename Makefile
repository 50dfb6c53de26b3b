# weft — see README.md. `make demo` runs the demo, `make test` the tests.
SHELL       := /bin/bash
.SHELLFLAGS := -euo pipefail -c
GO          ?= go
BIN         := bin/weft
WEFT_BIN    := $(abspath $(BIN))
FUZZTIME    ?= 10s
TEST_TIMEOUT ?= 20m
BENCH_DIR   := bench/results

# The OpenSSL TLS engine is compiled in when cgo, a C compiler and libssl-dev are
# present (scripts/setup.sh installs libssl-dev); otherwise weft builds with the Go
# engine only, as `CGO_ENABLED=0 go build ./cmd/weft` does.
OPENSSL_TAG = $(shell pkg-config --exists 'openssl >= 1.1.1' 2>/dev/null && [ "$$($(GO) env CGO_ENABLED)" = 1 ] && command -v "$$($(GO) env CC)" >/dev/null && echo openssl)
GOTAGS      ?= $(OPENSSL_TAG)

.PHONY: all build setup test vet fmt-check fuzz bench bench-quick bench-scale bench-readme bench-go demo clean

all: build

## build: the weft binary at bin/weft (with the OpenSSL engine when available)
build:
	$(GO) build -tags '$(GOTAGS)' -o $(BIN) ./cmd/weft

## setup: install test/demo dependencies when missing (Debian; quick when present)
setup:
	./scripts/setup.sh

vet:
	$(GO) vet ./...
	$(GO) vet -tags '$(GOTAGS)' ./...

fmt-check:
	./scripts/gofmt-check.sh

## test: setup, vet, gofmt check, pure-Go build, then all tests (unit + netns interop in ./test)
test: setup
	$(GO) vet ./...
	[ -z "$(GOTAGS)" ] || $(GO) vet -tags '$(GOTAGS)' ./tlsengine/ ./ovpn/
	./scripts/gofmt-check.sh
	CGO_ENABLED=0 $(GO) build ./...
	$(GO) build -tags '$(GOTAGS)' -o $(BIN) ./cmd/weft
	WEFT_BIN=$(WEFT_BIN) $(GO) test -tags '$(GOTAGS)' -count=1 -timeout $(TEST_TIMEOUT) ./...

## fuzz: every Fuzz* target for FUZZTIME (default 10s) each
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

## bench: side-by-side data-plane benchmark (root; 3 interleaved rounds, ~40 min) -> bench/results/<UTC>/,
## plus Go micro-benchmarks (handshakes per TLS engine, ciphers, compression, UDP I/O)
bench: build
	WEFT_BIN=$(WEFT_BIN) GO=$(GO) ./bench/run.sh full
	$(MAKE) bench-go

## bench-quick: veth, weft-udp-aes, openvpn-udp-aes, newest wireguard-go in one round (< 3 min)
bench-quick: build
	WEFT_BIN=$(WEFT_BIN) GO=$(GO) ./bench/run.sh quick

## bench-scale: 1,000 clients against weft server and openvpn (root)
bench-scale: build
	./bench/scale/run.sh

## bench-readme: rewrite README.md's performance block from bench/results/latest
bench-readme:
	GO=$(GO) ./bench/readme-table.sh --write

## bench-go: Go micro-benchmarks -> bench/results/go-bench-<UTC>.txt
bench-go:
	mkdir -p $(BENCH_DIR)
	f=$(BENCH_DIR)/go-bench-$$(date -u +%Y%m%dT%H%M%SZ).txt; \
	$(GO) test -tags '$(GOTAGS)' -run '^$$' -bench . -benchmem ./datachan/ ./tlsengine/ ./compress/ ./transport/udp/ | tee "$$f"; \
	cp "$$f" $(BENCH_DIR)/go-bench-latest.txt

## demo: a weft server and clients on the user-space stack (no root, no TUN)
demo: build
	./$(BIN) demo

clean:
	rm -rf bin $(BENCH_DIR)/*.tmp testdata/fuzz-tmp
