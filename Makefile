# herd — build, test, run, benchmark.
GO      ?= go
BIN     ?= bin/herd
PKGS    := ./...
IMAGE   ?= herd:latest

.PHONY: all build dev image test test-ui fmt-check vet unit e2e bench-kv bench-detect bench-logstore bench-gateway bench-security bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/herd

## dev: a one-node cluster on 127.0.0.1 (API and UI on :7700), data in a temp dir.
dev:
	$(GO) run ./cmd/herd agent --dev

## image: the herd image $(IMAGE) (deploy/Dockerfile: FROM scratch, the static binary alone), as deploy/docker-compose.yml uses it.
image:
	@ctx=$$(mktemp -d /tmp/herd-image.XXXXXX) && trap 'rm -rf "$$ctx"' EXIT && \
	CGO_ENABLED=0 $(GO) build -o "$$ctx/herd" ./cmd/herd && \
	cp deploy/Dockerfile "$$ctx/Dockerfile" && \
	docker build -q -t $(IMAGE) "$$ctx" >/dev/null && \
	echo "image $(IMAGE) built"

## test: what CI runs: formatting, vet, and every test with the race detector.
test: fmt-check vet unit

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 12m $(PKGS)

## test-ui: the dashboard in a real browser (installs Debian's chromium when missing, as root).
test-ui:
	bash scripts/test-ui.sh

## e2e: multi-host tests: 5 agents in Docker containers on a private network, faults, a report (needs a Docker engine).
e2e:
	bash scripts/e2e.sh

## bench-kv: herd vs etcd 3.4, 3 members each on loopback (installs etcd from Debian).
bench-kv:
	bash scripts/bench-kv.sh

## bench-security: KV puts over mTLS vs plaintext (3 servers), and the time to join with a token.
bench-security:
	bash scripts/bench-security.sh

## bench-gateway: the gateway vs HAProxy, nginx and Caddy (installs them from Debian), kill test, idle conns, 10k routes.
bench-gateway:
	bash scripts/bench-gateway.sh

## bench-detect: failure detection time, median of 10 kills.
bench-detect:
	bash scripts/bench-detect.sh

## bench-workload: replica failover time and failed requests under load (median of 5 kills), no false failover under CPU saturation, scheduler bench.
.PHONY: bench-workload
bench-workload:
	bash scripts/bench-workload.sh

## bench-logstore: raft-wal vs raft-boltdb v2 append latency.
bench-logstore:
	$(GO) test -run '^$$' -bench BenchmarkLogStore -benchtime 2000x ./internal/server

bench: bench-logstore bench-detect bench-kv

clean:
	rm -rf bin
