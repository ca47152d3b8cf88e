package backup

import (
	"fmt"
	"path"
	"regexp"
	"time"
)

// FormatName marks an archive as a causality backup.
const FormatName = "causality-backup"

// FormatVersion is the archive layout this binary writes; it reads this one and older.
const FormatVersion = 1

// manifestName is the manifest's name inside the archive.
const manifestName = "manifest.json"

// Manifest is manifest.json: what a backup holds.
type Manifest struct {
	Format           string    `json:"format"`
	FormatVersion    int       `json:"format_version"`
	CausalityVersion string    `json:"causality_version"`
	CreatedAt        time.Time `json:"created_at"`
	// SchemaVersion is the newest migration the database recorded when it was dumped.
	SchemaVersion int `json:"schema_version"`
	// PostgresVersion is the server's version (e.g. "17.10"), PostgresMajor its major.
	PostgresVersion string `json:"postgres_version"`
	PostgresMajor   string `json:"postgres_major"`
	// Database is "embedded" or "external".
	Database      string `json:"database"`
	DataDirFormat int    `json:"data_dir_format"`
	// Tables are in load order: every table after the tables it references.
	Tables []Table `json:"tables"`
	Note   string  `json:"note"`
}

// Table is one table's entry in the archive.
type Table struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Rows    int64    `json:"rows"`
	File    string   `json:"file"` // data/<name>.copy
	Bytes   int64    `json:"bytes"`
	SHA256  string   `json:"sha256"`
}

var (
	tableName  = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	columnName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
)

// check validates what a restore relies on, so that a damaged or foreign manifest is
// refused before anything is created.
func (m *Manifest) check() error {
	switch {
	case m.Format != FormatName:
		return fmt.Errorf("format %q is not %q", m.Format, FormatName)
	case m.FormatVersion <= 0:
		return fmt.Errorf("bad format_version %d", m.FormatVersion)
	case m.FormatVersion > FormatVersion:
		return fmt.Errorf("%w: archive format %d, written by causality %s; this binary reads format %d: restore it with causality %s or newer",
			ErrNewerBackup, m.FormatVersion, m.CausalityVersion, FormatVersion, m.CausalityVersion)
	case m.SchemaVersion <= 0:
		return fmt.Errorf("bad schema_version %d", m.SchemaVersion)
	case len(m.Tables) == 0:
		return fmt.Errorf("no tables")
	}
	seen := map[string]bool{}
	for _, t := range m.Tables {
		if !tableName.MatchString(t.Name) || seen[t.Name] {
			return fmt.Errorf("bad or repeated table name %q", t.Name)
		}
		seen[t.Name] = true
		if t.File != path.Join("data", t.Name+".copy") {
			return fmt.Errorf("table %s: unexpected file %q", t.Name, t.File)
		}
		if len(t.Columns) == 0 || t.Rows < 0 || t.Bytes < 0 || len(t.SHA256) != 64 {
			return fmt.Errorf("table %s: incomplete entry", t.Name)
		}
		for _, c := range t.Columns {
			if !columnName.MatchString(c) {
				return fmt.Errorf("table %s: bad column name %q", t.Name, c)
			}
		}
	}
	if !seen["schema_migrations"] {
		return fmt.Errorf("no schema_migrations table")
	}
	return nil
}
