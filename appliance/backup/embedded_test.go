package backup

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/datadir"
	"github.com/causality-io/causality/appliance/pgembed"
)

// startEmbedded starts the embedded PostgreSQL of a data dir, as serve would (the
// CAUSALITY_PG_BINARIES variable lets a developer without the bundle point at binaries).
func startEmbedded(t *testing.T, dataDir string) *pgembed.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		t.Fatal(err)
	}
	srv, err := pgembed.Start(ctx, pgembed.Options{Dir: filepath.Join(dataDir, "postgres"), BinariesDir: os.Getenv("CAUSALITY_PG_BINARIES")})
	if errors.Is(err, pgembed.ErrNoBinaries) {
		t.Skip("no PostgreSQL to test with: run `make bundle`")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopEmbedded(t, srv) })
	return srv
}

func stopEmbedded(t *testing.T, srv *pgembed.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Errorf("stop PostgreSQL: %v", err)
	}
}

func embeddedOptions(t *testing.T, dataDir string) Options {
	return Options{DataDir: dataDir, PGBinaries: os.Getenv("CAUSALITY_PG_BINARIES"), Version: "v-test", Progress: t.Output()}
}

// The embedded database is backed up whether or not an appliance runs on the data dir,
// and restored into a new data dir that then holds the same rows.
func TestEmbeddedBackupAndRestore(t *testing.T) {
	t.Parallel()
	root := reachableDir(t)
	data := filepath.Join(root, "data")
	srv := startEmbedded(t, data)
	openStore(t, srv.URL())
	fill(t, srv.URL())
	want := tableSums(t, srv.URL())
	stopEmbedded(t, srv)

	// Stopped: the backup starts the embedded PostgreSQL itself, and stops it after.
	stopped := filepath.Join(root, "stopped.zip")
	res, err := Backup(t.Context(), embeddedOptions(t, data), stopped)
	if err != nil {
		t.Fatalf("Backup of a stopped data dir: %v", err)
	}
	if res.Rows == 0 || readManifest(t, stopped).Database != "embedded" {
		t.Errorf("Backup = %+v", res)
	}
	if _, running, err := pgembed.Running(filepath.Join(data, "postgres")); running || err != nil {
		t.Errorf("after the backup PostgreSQL still runs (%v, %v)", running, err)
	}
	lock, err := datadir.TryLock(data, "test")
	if err != nil {
		t.Fatalf("the backup kept the data dir's lock: %v", err)
	}
	lock.Unlock()

	// Running (as serve holds it: the lock and its PostgreSQL): the backup connects to it.
	lock, err = datadir.TryLock(data, "causality serve")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	srv = startEmbedded(t, data)
	running := filepath.Join(root, "running.zip")
	if _, err := Backup(t.Context(), embeddedOptions(t, data), running); err != nil {
		t.Fatalf("Backup while running: %v", err)
	}
	if _, ok, _ := pgembed.Running(filepath.Join(data, "postgres")); !ok {
		t.Error("the backup stopped the running PostgreSQL")
	}
	stopEmbedded(t, srv)
	// Locked by a process whose PostgreSQL does not run (yet): no second PostgreSQL.
	if _, err := Backup(t.Context(), embeddedOptions(t, data), filepath.Join(root, "x.zip")); !errors.Is(err, datadir.ErrLocked) ||
		!strings.Contains(err.Error(), "not running") {
		t.Errorf("Backup of a locked data dir without PostgreSQL = %v", err)
	}
	lock.Unlock()

	for _, file := range []string{stopped, running} {
		target := filepath.Join(root, "restored-"+filepath.Base(file))
		rres, err := Restore(t.Context(), embeddedOptions(t, target), file)
		if err != nil {
			t.Fatalf("Restore %s: %v", file, err)
		}
		if rres.Target != target {
			t.Errorf("Restore = %+v", rres)
		}
		info, ok, err := datadir.Read(target)
		if err != nil || !ok || info.WrittenBy != "v-test" || info.SchemaVersion != rres.SchemaVersion {
			t.Errorf("datadir.json after restore = %+v, %v, %v", info, ok, err)
		}
		srv := startEmbedded(t, target)
		got := tableSums(t, srv.URL())
		for table, sum := range want {
			if got[table] != sum {
				t.Errorf("%s: table %s differs after backup and restore", filepath.Base(file), table)
			}
		}
		stopEmbedded(t, srv)
	}
}

// A restore that fails after the data dir was initialised removes what it made.
func TestFailedRestoreLeavesTheDataDirAsItWas(t *testing.T) {
	t.Parallel()
	root := reachableDir(t)
	data := filepath.Join(root, "data")
	srv := startEmbedded(t, data)
	openStore(t, srv.URL())
	stopEmbedded(t, srv)
	good := filepath.Join(root, "good.zip")
	if _, err := Backup(t.Context(), embeddedOptions(t, data), good); err != nil {
		t.Fatal(err)
	}
	// The data files are intact; only the manifest lies about a column, which shows once
	// the schema is rebuilt.
	bad := filepath.Join(root, "bad.zip")
	rewriteArchive(t, good, bad, func(n string, b []byte) []byte {
		if n != manifestName {
			return b
		}
		var m Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for i := range m.Tables {
			if m.Tables[i].Name == "settings" {
				m.Tables[i].Columns[1] = "valeur"
			}
		}
		out, _ := json.Marshal(m)
		return out
	})

	fresh := filepath.Join(root, "fresh") // does not exist: removed again
	_, err := Restore(t.Context(), embeddedOptions(t, fresh), bad)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "valeur") || !strings.Contains(err.Error(), "partial restore was removed") {
		t.Fatalf("Restore of a lying manifest = %v", err)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("the data dir the restore created is still there: %v", err)
	}
	empty := filepath.Join(root, "empty") // exists and is empty: emptied again
	if err := os.Mkdir(empty, 0o711); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(t.Context(), embeddedOptions(t, empty), bad); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Restore = %v, want ErrDamaged", err)
	}
	if entries, err := os.ReadDir(empty); err != nil || len(entries) != 0 {
		t.Errorf("the empty data dir holds %v after a failed restore (%v)", entries, err)
	}
}
