package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckAndRecord(t *testing.T) {
	dir := t.TempDir()
	if err := Check(filepath.Join(dir, "absent"), "v1"); err != nil {
		t.Fatalf("Check of a dir that does not exist: %v", err)
	}
	if err := Check(dir, "v1"); err != nil {
		t.Fatalf("Check of a dir without a record (older layout, format 1): %v", err)
	}
	if err := Record(dir, "v1.2.0", 2); err != nil {
		t.Fatal(err)
	}
	info, ok, err := Read(dir)
	if err != nil || !ok || info.Format != Format || info.WrittenBy != "v1.2.0" || info.SchemaVersion != 2 || info.UpdatedAt.IsZero() {
		t.Fatalf("Read after Record = %+v, %v, %v", info, ok, err)
	}
	if err := Check(dir, "v1.2.0"); err != nil {
		t.Fatalf("Check of its own format: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+".tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestCheckRefusesNewerFormat(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, FileName)
	content := []byte(`{"format": 7, "written_by": "v9.0.0"}`)
	if err := os.WriteFile(name, content, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Check(dir, "v1.0.0")
	if !errors.Is(err, ErrNewer) {
		t.Fatalf("Check = %v, want ErrNewer", err)
	}
	for _, want := range []string{"v9.0.0", "format 7", "v1.0.0", "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if b, _ := os.ReadFile(name); string(b) != string(content) {
		t.Errorf("Check changed the record: %q", b)
	}
}

func TestCheckRefusesDamagedRecord(t *testing.T) {
	for _, content := range []string{"", "not json", `{"format": 0}`, `{"written_by": "v1"}`} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Check(dir, "v1"); err == nil || !strings.Contains(err.Error(), "is damaged") {
			t.Errorf("Check of %q = %v, want a damaged-record error", content, err)
		}
	}
}

func TestTryLock(t *testing.T) {
	dir := t.TempDir()
	l, err := TryLock(dir, "causality serve")
	if err != nil {
		t.Fatal(err)
	}
	// A second holder, even in the same process, is refused and told who holds it.
	_, err = TryLock(dir, "causality backup")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "causality serve") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second TryLock = %v, want ErrLocked naming the holder", err)
	}
	l.Unlock()
	l.Unlock() // twice is harmless
	l2, err := TryLock(dir, "causality backup")
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	l2.Unlock()
	if _, err := TryLock(filepath.Join(dir, "absent"), "x"); err == nil {
		t.Error("TryLock of a missing dir succeeded")
	}
}
