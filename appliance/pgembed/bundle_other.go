//go:build !amd64 && !arm64

package pgembed

import "embed"

// bundleFS is empty on architectures without a PostgreSQL bundle: use --pg-binaries or
// --database-url there.
var bundleFS embed.FS
