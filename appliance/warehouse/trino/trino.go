// Package trino renders what a Trino cluster needs to query the event lake:
// a Hive connector catalog file and the SQL that declares the events table
// over the lake's Hive partitions (DESIGN.md, "Warehouse (contract)").
//
// The table's columns come from warehouse.Row's Parquet tags (Columns), so
// the DDL follows the file schema and cannot drift from it.
//
// Trino property names were checked against Trino's sources and docs for
// the 4xx releases:
//
//   - hive.metastore=file with hive.metastore.catalog.dir (the file-based
//     metastore: schema and table metadata as files, no metastore service).
//   - Local lakes: fs.native-local.enabled and local.location. local.location
//     is a plain directory (Trino refuses a URI there), and every location
//     under it is written local:///<path below that directory>: Trino's local
//     file system accepts only the local scheme. Newer releases rename the
//     switch fs.local.enabled and keep the old name as a deprecated alias.
//   - S3: fs.native-s3.enabled, s3.endpoint, s3.region, s3.path-style-access,
//     s3.aws-access-key, s3.aws-secret-key (newer releases: fs.s3.enabled,
//     old name kept as an alias). The secret is never printed: the file
//     refers to an environment variable with Trino's ${ENV:NAME} syntax.
package trino

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"strings"

	"github.com/causality-io/causality/appliance/warehouse"
)

// SecretKeyEnv is the environment variable the rendered catalog file reads
// the S3 secret key from, the same one the appliance reads it from.
const SecretKeyEnv = "CAUSALITY_S3_SECRET_KEY"

// Defaults for the names in Config.
const (
	DefaultCatalog = "causality"
	DefaultSchema  = "causality"
	DefaultTable   = "events"
)

// Config describes the lake and how Trino reaches it.
type Config struct {
	// WarehouseURL is the lake root: file:///absolute/dir or
	// s3://bucket[/prefix], as given to the appliance.
	WarehouseURL string
	// S3Endpoint is host:port (or a URL) of an S3-compatible store;
	// empty for AWS S3.
	S3Endpoint string
	// S3Region is the bucket's region; empty means us-east-1.
	S3Region string
	// S3AccessKey is the access key id; empty leaves credentials to
	// Trino's default AWS credential chain.
	S3AccessKey string
	// S3Insecure talks plain HTTP to S3Endpoint.
	S3Insecure bool
	// S3PathStyle addresses buckets as endpoint/bucket/key (MinIO and
	// most S3-compatible stores) rather than bucket.endpoint/key.
	S3PathStyle bool
	// Catalog, Schema and Table name the Trino objects; empty means
	// DefaultCatalog, DefaultSchema, DefaultTable.
	Catalog, Schema, Table string
}

// Column is one table column with its Trino type.
type Column struct {
	Name string
	Type string
}

// PartitionColumns are the Hive partition keys, in path order, with the
// types their values have in the path (integers without leading zeros).
var PartitionColumns = []Column{
	{"app_id", "varchar"},
	{"year", "integer"},
	{"month", "integer"},
	{"day", "integer"},
	{"hour", "integer"},
}

// Columns lists the file columns of warehouse.Row, in file order, with their
// Trino types, from the struct's parquet tags.
func Columns() ([]Column, error) {
	rt := reflect.TypeFor[warehouse.Row]()
	cols := make([]Column, 0, rt.NumField())
	for i := range rt.NumField() {
		f := rt.Field(i)
		tag, ok := f.Tag.Lookup("parquet")
		if !ok || tag == "-" {
			return nil, fmt.Errorf("warehouse.Row.%s has no parquet column name", f.Name)
		}
		name, opts, _ := strings.Cut(tag, ",")
		typ, err := trinoType(f.Type, opts)
		if err != nil {
			return nil, fmt.Errorf("warehouse.Row.%s (%s): %w", f.Name, name, err)
		}
		cols = append(cols, Column{Name: name, Type: typ})
	}
	return cols, nil
}

// trinoType maps a Row field's Go type and parquet tag options to the Trino
// type the Hive connector reads that Parquet column as.
func trinoType(t reflect.Type, opts string) (string, error) {
	for _, o := range strings.Split(opts, ",") {
		if !strings.HasPrefix(o, "timestamp") {
			continue
		}
		if t.Kind() != reflect.Int64 {
			return "", fmt.Errorf("timestamp column on a %s field", t)
		}
		// Trino's Hive connector reads timestamps at millisecond
		// precision by default (hive.timestamp-precision).
		switch unit, _, _ := strings.Cut(strings.Trim(strings.TrimPrefix(o, "timestamp"), "()"), ":"); unit {
		case "millisecond":
			return "timestamp(3)", nil
		default:
			return "", fmt.Errorf("timestamp unit %q: only millisecond maps to the Hive connector's default precision", unit)
		}
	}
	switch t.Kind() {
	case reflect.String:
		return "varchar", nil
	case reflect.Int64:
		return "bigint", nil
	case reflect.Int32:
		return "integer", nil
	case reflect.Bool:
		return "boolean", nil
	}
	return "", fmt.Errorf("no Trino type for Go type %s", t)
}

// lake is Config resolved: names defaulted, locations in Trino's terms.
type lake struct {
	cfg Config
	s3  bool
	// dir is the local lake root (file warehouses).
	dir string
	// root is the lake root as a Trino location, without a trailing
	// slash unless it is a scheme root ("local:///").
	root string
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func resolve(cfg Config) (*lake, error) {
	if cfg.Catalog == "" {
		cfg.Catalog = DefaultCatalog
	}
	if cfg.Schema == "" {
		cfg.Schema = DefaultSchema
	}
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	for _, n := range []struct{ what, v string }{{"catalog", cfg.Catalog}, {"schema", cfg.Schema}, {"table", cfg.Table}} {
		if !identRE.MatchString(n.v) {
			return nil, fmt.Errorf("trino: %s name %q: want lower-case letters, digits and _", n.what, n.v)
		}
	}
	if cfg.WarehouseURL == "" {
		return nil, errors.New("trino: no warehouse URL")
	}
	u, err := url.Parse(cfg.WarehouseURL)
	if err != nil {
		return nil, fmt.Errorf("trino: warehouse URL: %w", err)
	}
	l := &lake{cfg: cfg}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("trino: %q: want file:///absolute/path", cfg.WarehouseURL)
		}
		if !path.IsAbs(u.Path) {
			return nil, fmt.Errorf("trino: %q: the path must be absolute", cfg.WarehouseURL)
		}
		l.dir = path.Clean(u.Path)
		l.root = "local:///"
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("trino: %q: want s3://bucket or s3://bucket/prefix", cfg.WarehouseURL)
		}
		l.s3 = true
		l.root = "s3://" + u.Host
		if p := strings.Trim(u.Path, "/"); p != "" {
			l.root += "/" + p
		}
	default:
		return nil, fmt.Errorf("trino: %q: scheme must be file:// or s3://", cfg.WarehouseURL)
	}
	return l, nil
}

// at is a location below the lake root.
func (l *lake) at(rel string) string {
	if strings.HasSuffix(l.root, "/") {
		return l.root + rel
	}
	return l.root + "/" + rel
}

// Render writes the catalog file and the SQL, one after the other, each
// preceded by a comment saying where it goes.
func Render(w io.Writer, cfg Config) error {
	l, err := resolve(cfg)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := l.catalog(&b); err != nil {
		return err
	}
	b.WriteString("\n")
	if err := l.sql(&b); err != nil {
		return err
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func (l *lake) catalog(b *strings.Builder) error {
	c := l.cfg
	p := func(k, v string) error {
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("trino: value of %s contains a line break or NUL", k)
		}
		// Java properties: a backslash escapes; keys here need none.
		fmt.Fprintf(b, "%s=%s\n", k, strings.ReplaceAll(v, `\`, `\\`))
		return nil
	}
	fmt.Fprintf(b, "# ---- etc/catalog/%s.properties ----\n", c.Catalog)
	fmt.Fprintf(b, "# Trino catalog %q for the Causality event lake at %s.\n", c.Catalog, c.WarehouseURL)
	b.WriteString("# Save this part as etc/catalog/" + c.Catalog + ".properties on the coordinator and\n")
	b.WriteString("# every worker, then restart Trino. Property names as in Trino 4xx.\n")
	b.WriteString("connector.name=hive\n")
	b.WriteString("# Table and partition metadata are files under this directory: no metastore\n")
	b.WriteString("# service to run. Its name starts with _, so lake readers skip it. Trino\n")
	b.WriteString("# writes its metadata here and never changes the files under events/.\n")
	b.WriteString("hive.metastore=file\n")
	if err := p("hive.metastore.catalog.dir", l.at("_trino_metastore")); err != nil {
		return err
	}
	if !l.s3 {
		b.WriteString("# Local file system. local.location is the lake root as a plain directory, and\n")
		b.WriteString("# every location in this catalog (and in the SQL) is local:///<path below it>.\n")
		b.WriteString("# Trino must see the lake at this path on every node: with Trino in a container,\n")
		b.WriteString("# mount the lake and change only local.location. Newer Trino releases call the\n")
		b.WriteString("# switch fs.local.enabled and still accept this name.\n")
		b.WriteString("fs.native-local.enabled=true\n")
		return p("local.location", l.dir)
	}
	b.WriteString("# Native S3 file system. Newer Trino releases call the switch fs.s3.enabled\n")
	b.WriteString("# and still accept this name.\n")
	b.WriteString("fs.native-s3.enabled=true\n")
	if ep := c.S3Endpoint; ep != "" {
		if !strings.Contains(ep, "://") {
			scheme := "https://"
			if c.S3Insecure {
				scheme = "http://"
			}
			ep = scheme + ep
		}
		if err := p("s3.endpoint", ep); err != nil {
			return err
		}
	} else {
		b.WriteString("# No s3.endpoint: AWS S3, found from the region.\n")
	}
	region := c.S3Region
	if region == "" {
		region = "us-east-1"
	}
	if err := p("s3.region", region); err != nil {
		return err
	}
	fmt.Fprintf(b, "s3.path-style-access=%t\n", c.S3PathStyle)
	if c.S3AccessKey == "" {
		b.WriteString("# No keys: Trino uses the default AWS credential chain (environment, instance role).\n")
		return nil
	}
	if err := p("s3.aws-access-key", c.S3AccessKey); err != nil {
		return err
	}
	fmt.Fprintf(b, "# The secret is not written here: Trino reads it from the environment variable\n")
	fmt.Fprintf(b, "# %s, which must be set for the Trino server process on every node.\n", SecretKeyEnv)
	fmt.Fprintf(b, "s3.aws-secret-key=${ENV:%s}\n", SecretKeyEnv)
	return nil
}

func (l *lake) sql(b *strings.Builder) error {
	cols, err := Columns()
	if err != nil {
		return err
	}
	c := l.cfg
	table := c.Catalog + "." + c.Schema + "." + c.Table
	b.WriteString("-- ---- SQL ----\n")
	b.WriteString("-- Run once the catalog is loaded, e.g. trino --file <this part>.\n")
	b.WriteString("-- Every statement is idempotent; run the CALL again whenever new hours have\n")
	b.WriteString("-- been written (Trino sees only the partitions recorded in its metastore).\n\n")
	fmt.Fprintf(b, "CREATE SCHEMA IF NOT EXISTS %s.%s\nWITH (location = %s);\n\n", c.Catalog, c.Schema, sqlString(l.root))
	b.WriteString("-- Files are never written or deleted by Trino: the table is external, owned by\n")
	b.WriteString("-- the appliance. Partition columns come from the path and must come last.\n")
	fmt.Fprintf(b, "CREATE TABLE IF NOT EXISTS %s (\n", table)
	all := append(append([]Column(nil), cols...), PartitionColumns...)
	width := 0
	for _, col := range all {
		width = max(width, len(col.Name))
	}
	for i, col := range all {
		sep := ","
		if i == len(all)-1 {
			sep = ""
		}
		fmt.Fprintf(b, "  %-*s %s%s\n", width, col.Name, col.Type, sep)
	}
	keys := make([]string, len(PartitionColumns))
	for i, col := range PartitionColumns {
		keys[i] = sqlString(col.Name)
	}
	b.WriteString(")\nWITH (\n")
	fmt.Fprintf(b, "  external_location = %s,\n", sqlString(l.at("events")))
	b.WriteString("  format = 'PARQUET',\n")
	fmt.Fprintf(b, "  partitioned_by = ARRAY[%s]\n);\n\n", strings.Join(keys, ", "))
	b.WriteString("-- Record the partitions present in the lake (FULL also forgets deleted ones).\n")
	fmt.Fprintf(b, "CALL %s.system.sync_partition_metadata(%s, %s, 'FULL');\n", c.Catalog, sqlString(c.Schema), sqlString(c.Table))
	return nil
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
