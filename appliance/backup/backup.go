// Package backup writes and restores the appliance's configuration: `causality backup`
// and `causality restore`.
//
// A backup is the configuration database (apps, API keys, settings with the admin password
// hash, webhooks with their signing secrets, rules, detectors and their state, the delivery
// outbox and history, anomalies, the migrations table) as one zip file:
//
//	manifest.json         what and when: format, causality and schema version, PostgreSQL
//	                      version, and per table its columns, rows, size and SHA-256
//	data/<table>.copy     the table's rows in PostgreSQL's COPY text format
//
// Events are not in it: they live in the JetStream stream and the Parquet warehouse.
//
// The embedded PostgreSQL ships without pg_dump (the npm package it comes from has only
// initdb, pg_ctl and postgres), so the dump is logical and written here: one REPEATABLE
// READ, READ ONLY transaction, so every table is read at the same instant while the
// appliance keeps running, and COPY ... TO STDOUT per table, parents before children.
// The schema is not copied: a restore rebuilds it with this binary's migrations up to the
// backup's schema version, loads the rows, then migrates forward. So a backup restores
// into any later causality, and into another PostgreSQL major version.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/causality-io/causality/appliance/datadir"
	"github.com/causality-io/causality/appliance/pgembed"
)

// Options say where the configuration database is, as for `causality serve`.
type Options struct {
	DataDir     string // the embedded PostgreSQL is under <DataDir>/postgres
	DatabaseURL string // an external PostgreSQL instead
	PGBinaries  string // --pg-binaries, for a binary built without the bundle
	// Version is this binary's, written into the manifest and datadir.json.
	Version string
	// Progress gets one line per step (stderr in the CLI); nil discards them.
	Progress io.Writer
}

func (o Options) say(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// logger passes the warnings of the embedded PostgreSQL and the store to Progress.
func (o Options) logger() *slog.Logger {
	if o.Progress == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(o.Progress, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func (o Options) postgresDir() string { return filepath.Join(o.DataDir, "postgres") }

// Result describes a written backup.
type Result struct {
	File          string
	Bytes         int64
	SchemaVersion int
	Tables        int
	Rows          int64
}

// Backup writes a backup of the configuration database to file, replacing it whole (the
// archive is written beside it and renamed when complete). The database is the running
// appliance's when one runs; otherwise the embedded PostgreSQL is started for the dump
// and stopped after.
func Backup(ctx context.Context, opts Options, file string) (Result, error) {
	dbURL, source, release, err := openSource(ctx, opts)
	if err != nil {
		return Result{}, err
	}
	defer release()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return Result{}, fmt.Errorf("connect to the %s: %w", source, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	m := Manifest{
		Format:           FormatName,
		FormatVersion:    FormatVersion,
		CausalityVersion: opts.Version,
		CreatedAt:        time.Now().UTC(),
		DataDirFormat:    datadir.Format,
		Database:         "embedded",
		Note:             "The appliance's configuration only: events are in the JetStream stream and the Parquet warehouse, not here.",
	}
	if opts.DatabaseURL != "" {
		m.Database = "external"
	}
	opts.say("dumping the configuration database (%s)...", source)
	size, err := writeAtomically(file, func(w io.Writer) error {
		return dump(ctx, conn, &m, w)
	})
	if err != nil {
		return Result{}, fmt.Errorf("backup to %s: %w", file, err)
	}
	res := Result{File: file, Bytes: size, SchemaVersion: m.SchemaVersion, Tables: len(m.Tables)}
	for _, t := range m.Tables {
		res.Rows += t.Rows
	}
	return res, nil
}

// openSource finds the configuration database: --database-url, the PostgreSQL of a
// running appliance on the data dir, or the embedded one started here (and stopped by
// release). It never creates a cluster.
func openSource(ctx context.Context, opts Options) (dbURL, source string, release func(), err error) {
	if opts.DatabaseURL != "" {
		return opts.DatabaseURL, "external PostgreSQL", func() {}, nil
	}
	if err := datadir.Check(opts.DataDir, opts.Version); err != nil {
		return "", "", nil, err
	}
	pgDir := opts.postgresDir()
	if !pgembed.HasCluster(pgDir) {
		return "", "", nil, fmt.Errorf("%w: no embedded PostgreSQL cluster under %s: check --data-dir (or pass --database-url for an external PostgreSQL)", ErrNoDatabase, pgDir)
	}
	// Holding the data dir's lock means no appliance runs on it, and none starts while the
	// PostgreSQL started here runs (it would stop it as a leftover, and we its).
	lock, lockErr := datadir.TryLock(opts.DataDir, "causality backup")
	if lockErr != nil {
		if !errors.Is(lockErr, datadir.ErrLocked) {
			return "", "", nil, lockErr
		}
		dbURL, ok, err := pgembed.Running(pgDir)
		if err != nil {
			return "", "", nil, err
		}
		if !ok {
			return "", "", nil, fmt.Errorf("%w, and its PostgreSQL is not running (yet): try again in a moment", lockErr)
		}
		return dbURL, "embedded PostgreSQL of the running appliance", func() {}, nil
	}
	opts.say("no appliance runs on %s: starting its embedded PostgreSQL for the backup...", opts.DataDir)
	srv, err := pgembed.Start(ctx, pgembed.Options{Dir: pgDir, BinariesDir: opts.PGBinaries, Logger: opts.logger()})
	if err != nil {
		lock.Unlock()
		return "", "", nil, fmt.Errorf("embedded postgres: %w", err)
	}
	return srv.URL(), "embedded PostgreSQL, started for the backup", func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := srv.Stop(stopCtx); err != nil {
			opts.say("warning: %v", err)
		}
		lock.Unlock()
	}, nil
}

// ErrNoDatabase means there is no configuration database where the options point.
var ErrNoDatabase = errors.New("nothing to back up")
