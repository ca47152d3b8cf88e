package pgembed

import "embed"

// bundleFS holds bundle/linux-amd64/postgres.tar.zst when `make bundle` ran before the
// build, and only that directory's README otherwise. One file per architecture, so that a
// release binary carries only its own PostgreSQL.
//
//go:embed bundle/linux-amd64
var bundleFS embed.FS
