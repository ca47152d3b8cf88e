package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/causality-io/causality/appliance/datadir"
	"github.com/causality-io/causality/appliance/pgembed"
	"github.com/causality-io/causality/appliance/store"
)

// RestoreResult describes a finished restore.
type RestoreResult struct {
	Manifest Manifest // the backup's
	// SchemaVersion is the schema version after the migrations since the backup.
	SchemaVersion int
	Target        string // the data dir, or the external database's host and name
}

// Restore loads a backup into an empty data dir (one that is empty or does not exist:
// the embedded PostgreSQL is initialised there) or, with DatabaseURL, into an empty
// database. Nothing is overwritten: a target that holds anything is refused, as are a
// damaged backup and one of a schema newer than this binary, before anything is created.
// When the load fails half way, what it created in the data dir is removed again.
func Restore(ctx context.Context, opts Options, file string) (res RestoreResult, err error) {
	if opts.DatabaseURL == "" {
		if err := checkEmptyDir(opts.DataDir); err != nil {
			return res, err
		}
	}
	a, err := openArchive(file)
	if err != nil {
		return res, err
	}
	defer a.Close()
	res.Manifest = a.manifest
	latest, err := store.LatestVersion()
	if err != nil {
		return res, err
	}
	if a.manifest.SchemaVersion > latest {
		return res, fmt.Errorf("%w: %s has schema version %d (causality %s); this binary knows schema versions up to %d: restore it with causality %s or newer (nothing was changed)",
			ErrNewerBackup, file, a.manifest.SchemaVersion, a.manifest.CausalityVersion, latest, a.manifest.CausalityVersion)
	}
	opts.say("checking %s (%d tables, schema version %d, taken %s by causality %s)...", file, len(a.manifest.Tables),
		a.manifest.SchemaVersion, a.manifest.CreatedAt.Format(time.RFC3339), a.manifest.CausalityVersion)
	if err := a.verify(); err != nil {
		return res, err
	}

	if opts.DatabaseURL != "" {
		res.Target = "the database at --database-url"
		opts.say("loading into the database at --database-url...")
		res.SchemaVersion, err = load(ctx, a, opts.DatabaseURL, opts.logger(), opts.say)
		return res, err
	}

	res.Target = opts.DataDir
	created, err := createDir(opts.DataDir)
	if err != nil {
		return res, err
	}
	lock, err := datadir.TryLock(opts.DataDir, "causality restore")
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			if cerr := clearDir(opts.DataDir, created); cerr != nil {
				err = errors.Join(err, fmt.Errorf("remove the partial restore from %s: %w", opts.DataDir, cerr))
			} else {
				err = fmt.Errorf("%w (the partial restore was removed; %s is as before)", err, opts.DataDir)
			}
		}
		lock.Unlock()
	}()
	opts.say("initialising the embedded PostgreSQL in %s...", opts.postgresDir())
	srv, err := pgembed.Start(ctx, pgembed.Options{Dir: opts.postgresDir(), BinariesDir: opts.PGBinaries, Logger: opts.logger()})
	if err != nil {
		return res, fmt.Errorf("embedded postgres: %w", err)
	}
	opts.say("loading...")
	res.SchemaVersion, err = load(ctx, a, srv.URL(), opts.logger(), opts.say)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if serr := srv.Stop(stopCtx); err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return res, err
	}
	if err := datadir.Record(opts.DataDir, opts.Version, res.SchemaVersion); err != nil {
		return res, err
	}
	return res, nil
}

// checkEmptyDir refuses a data dir that exists and holds anything.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore into %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return nil
	}
	var names []string
	for _, e := range entries[:min(len(entries), 5)] {
		names = append(names, e.Name())
	}
	if len(entries) > 5 {
		names = append(names, "…")
	}
	return fmt.Errorf("%w: data dir %s already holds %s: restore only into an empty or new directory (move the old one away first; restore never overwrites)",
		ErrNotEmpty, dir, strings.Join(names, ", "))
}

// createDir makes the data dir as serve does (others may pass through: the embedded
// PostgreSQL runs as an unprivileged account under root) and reports whether it did.
func createDir(dir string) (bool, error) {
	_, err := os.Stat(dir)
	created := errors.Is(err, fs.ErrNotExist)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return false, fmt.Errorf("create data dir: %w", err)
	}
	return created, nil
}

// clearDir undoes a failed restore: the dir was empty or absent before.
func clearDir(dir string, created bool) error {
	if created {
		return os.RemoveAll(dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
