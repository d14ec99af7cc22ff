# netbed: `make demo` runs the shipped comparison, `make test` the tests.
GO      ?= go
BIN     := bin
PKGS    := ./...
# `netbed version` prints it; a plain `go build` shows the module's version.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build test bench bench-smoke lint demo generate clean fuzz

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/ ./cmd/...

test: lint
	$(GO) test -count=1 -timeout 40m $(PKGS)
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory bench-smoke

# Each fuzz target below for FUZZTIME (their seeds and committed corpora,
# testdata/fuzz/, also run as plain tests in `go test`).
FUZZTIME ?= 10s
FUZZ     := ./controller/api:FuzzRequests ./controller/api:FuzzRequestBodies ./controller/api:FuzzTokensFile ./datapath/vpc/cloud:FuzzParseLimits ./datapath/vpc:FuzzRewrite
fuzz:
	@set -e; for t in $(FUZZ); do \
		echo "fuzz $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*}; \
	done

# Every benchmark once, so that none rots between `make bench` runs.
# Its output is long; on a failure, the failing packages' lines are shown.
bench-smoke:
	@out=$$(mktemp); \
	if $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 20m $(PKGS) > $$out 2>&1; then rm -f $$out; \
	else grep -v -E '^(ok|PASS|goos|goarch|pkg|cpu|Benchmark[^ ]*[[:space:]]+[0-9])' $$out; rm -f $$out; exit 1; fi

# Benchmarks; results are recorded in docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

generate:
	$(GO) generate $(PKGS)

demo: build
	./scripts/demo.sh

clean:
	rm -rf $(BIN) out
