package pgembed

import "embed"

// bundleFS holds bundle/linux-arm64/postgres.tar.zst when `make bundle` ran before the
// build, and only that directory's README otherwise. One file per architecture, so that a
// release binary carries only its own PostgreSQL.
//
//go:embed bundle/linux-arm64
var bundleFS embed.FS
