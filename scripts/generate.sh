#!/usr/bin/env bash
# Regenerates gen/causality/v1 from proto/causality/v1 (the wire contract, WIRE.md), and
# web/*_templ.go from the admin UI's templ components (web/*.templ).
#
# Needs protoc (Debian: apt-get install protobuf-compiler); installs protoc-gen-go
# at the version pinned in go.mod into ./bin when it is missing or different.
# buf/validate/validate.proto is vendored under proto/ for protoc only: its Go
# code comes from the module buf.build/gen/go/bufbuild/protovalidate/..., so it
# is not generated here.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

protoc_gen_go_version=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
bin="$root/bin"
plugin="$bin/protoc-gen-go"
if [[ ! -x "$plugin" ]] || [[ "$("$plugin" --version 2>/dev/null)" != "protoc-gen-go $protoc_gen_go_version" ]]; then
  echo "installing protoc-gen-go $protoc_gen_go_version into $bin" >&2
  GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$protoc_gen_go_version"
fi

if ! command -v protoc >/dev/null; then
  echo "protoc not found: install it (Debian: apt-get install protobuf-compiler)" >&2
  exit 1
fi

out=gen/causality/v1
rm -f "$out"/*.pb.go
mkdir -p "$out"
protoc \
  --plugin=protoc-gen-go="$plugin" \
  -I proto \
  --go_out=gen --go_opt=paths=source_relative \
  proto/causality/v1/*.proto

# The templ version is the one go.mod pins as a tool (go tool templ).
rm -f web/*_templ.go
go tool templ generate -path web -log-level warn
