// Package migrations embeds the numbered SQL migrations of the configuration database.
// A file is named NNNN_what.sql; each runs once, in order, in its own transaction.
package migrations

import "embed"

// FS holds the *.sql files.
//
//go:embed *.sql
var FS embed.FS
