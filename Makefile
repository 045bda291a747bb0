# keyward — `make help` lists the targets. Every Go target fans out over the
# workspace modules of go.work.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
MODULES  := pkg services/gateway services/mockanthropic services/dashboard
PKGS     := $(addprefix ./,$(addsuffix /...,$(MODULES)))
TOOLS    := $(CURDIR)/.tools/bin
export PATH := $(TOOLS):$(PATH)
export GOFLAGS ?= -buildvcs=false

.PHONY: help build run test test-go test-clients test-rules test-reliability test-metrics-names test-fuzz fuzz bench lint vuln deps clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

build: ## build bin/gateway, bin/mockanthropic and bin/dashboard
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/gateway ./services/gateway/cmd/gateway
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/mockanthropic ./services/mockanthropic/cmd/mockanthropic
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/dashboard ./services/dashboard/cmd/dashboard

run: build ## start the mock upstream, the gateway (:5001) and the dashboard (:8501)
	./scripts/run.sh

deps: ## install the Debian packages the tests need (redis, sentinel, promtool, etcd, chromium, shellcheck)
	./scripts/deps.sh

test: deps lint test-go test-clients test-rules test-metrics-names test-deploy test-live test-reliability test-fuzz ## everything CI runs
	@echo "make test: all stages passed"

test-go: ## unit and integration tests of every module, with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-clients: ## the official clients from npm (TypeScript SDK in Node and Chromium, Vercel AI SDK, Claude Code CLI) against the gateway
	./scripts/clients-deps.sh
	$(GO) test -tags clients -count=1 -timeout 15m -v ./services/gateway/test/js/ 2>&1 | tee .clients.log | grep -E '^(=== RUN|--- |    clients_test|PASS|FAIL|ok)' || true
	@grep -qE '^(FAIL|--- FAIL)' .clients.log && { echo "client tests failed (full log: .clients.log)"; exit 1; } || true
	@grep -qE '^ok' .clients.log

test-reliability: build ## fault-injection suite: Redis outages/failover, upstream storms, SIGTERM, slow clients
	$(GO) test -tags reliability -count=1 -timeout 20m -v -run 'Reliability' ./services/gateway/test/reliability/ 2>&1 | tee .reliability.log | grep -E '^(=== RUN|--- |    .*(figure|admitted|recovered|:)|PASS|FAIL|ok)' || true
	@grep -qE '^(FAIL|--- FAIL)' .reliability.log && { echo "reliability suite failed (full log: .reliability.log)"; exit 1; } || true
	@grep -qE '^ok' .reliability.log

test-rules: ## promtool: check and unit-test the alert rules
	./deploy/prometheus/check.sh

test-metrics-names: build ## every metric named by the alert rules and the Grafana dashboard exists in the gateway's /metrics
	./scripts/metrics-names.sh

fuzz: ## run each fuzz target for FUZZTIME (default 10s)
	./scripts/fuzz.sh $${FUZZTIME:-10s}

test-fuzz: ## every fuzz target for a bounded 3 s each (part of make test; corpora are committed)
	./scripts/fuzz.sh 3s

bench: build ## Go benchmarks of the hot paths + an end-to-end load run; results in bench/
	./scripts/bench.sh

lint: ## gofmt, go vet, staticcheck and go mod tidy -diff for all seven modules, go work sync, shellcheck over every script
	./scripts/lint.sh

vuln: ## govulncheck of every module against an offline copy of the Go vulnerability database (stdlib-only findings reported, not failed)
	./scripts/lint.sh vuln

clean: ## remove build output
	rm -rf bin artifacts .reliability.log .clients.log

-include deploy/deploy.mk
