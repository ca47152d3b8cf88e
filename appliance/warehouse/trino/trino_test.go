package trino_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/causality-io/causality/appliance/warehouse"
	"github.com/causality-io/causality/appliance/warehouse/trino"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		cfg  trino.Config
	}{
		{"file", trino.Config{WarehouseURL: "file:///var/lib/causality/warehouse"}},
		{"s3_minio_path_style", trino.Config{
			WarehouseURL: "s3://lake/prod/", S3Endpoint: "minio.internal:9000", S3AccessKey: "causality-writer",
			S3Insecure: true, S3PathStyle: true,
		}},
		{"s3_aws_default_credentials", trino.Config{
			WarehouseURL: "s3://acme-events", S3Region: "eu-west-1",
			Catalog: "lake", Schema: "analytics", Table: "app_events",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := trino.Render(&buf, tt.cfg); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("Render output differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

// properties parses the catalog part of Render's output.
func properties(t *testing.T, out string) map[string]string {
	t.Helper()
	props := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "-- ") {
			break // the SQL part
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("catalog line %q is not key=value", line)
		}
		if _, dup := props[k]; dup {
			t.Fatalf("property %s set twice", k)
		}
		props[k] = v
	}
	return props
}

func render(t *testing.T, cfg trino.Config) string {
	t.Helper()
	var buf bytes.Buffer
	if err := trino.Render(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestCatalogProperties(t *testing.T) {
	file := properties(t, render(t, trino.Config{WarehouseURL: "file:///srv/lake/"}))
	wantFile := map[string]string{
		"connector.name":             "hive",
		"hive.metastore":             "file",
		"hive.metastore.catalog.dir": "local:///_trino_metastore",
		"fs.native-local.enabled":    "true",
		"local.location":             "/srv/lake",
	}
	if !reflect.DeepEqual(file, wantFile) {
		t.Errorf("file lake catalog:\n got %v\nwant %v", file, wantFile)
	}

	s3 := properties(t, render(t, trino.Config{
		WarehouseURL: "s3://b/p/q", S3Endpoint: "127.0.0.1:9000", S3AccessKey: "AK", S3Region: "r1",
		S3Insecure: true, S3PathStyle: true,
	}))
	wantS3 := map[string]string{
		"connector.name":             "hive",
		"hive.metastore":             "file",
		"hive.metastore.catalog.dir": "s3://b/p/q/_trino_metastore",
		"fs.native-s3.enabled":       "true",
		"s3.endpoint":                "http://127.0.0.1:9000",
		"s3.region":                  "r1",
		"s3.path-style-access":       "true",
		"s3.aws-access-key":          "AK",
		"s3.aws-secret-key":          "${ENV:" + trino.SecretKeyEnv + "}",
	}
	if !reflect.DeepEqual(s3, wantS3) {
		t.Errorf("s3 lake catalog:\n got %v\nwant %v", s3, wantS3)
	}

	// HTTPS unless told otherwise; an endpoint given as a URL is kept.
	if got := properties(t, render(t, trino.Config{WarehouseURL: "s3://b", S3Endpoint: "s3.example:443"}))["s3.endpoint"]; got != "https://s3.example:443" {
		t.Errorf("endpoint = %q", got)
	}
	if got := properties(t, render(t, trino.Config{WarehouseURL: "s3://b", S3Endpoint: "http://m:9000", S3Insecure: false}))["s3.endpoint"]; got != "http://m:9000" {
		t.Errorf("endpoint URL = %q", got)
	}
	// Without an access key there is no secret either.
	aws := properties(t, render(t, trino.Config{WarehouseURL: "s3://b"}))
	for _, k := range []string{"s3.aws-access-key", "s3.aws-secret-key", "s3.endpoint"} {
		if v, ok := aws[k]; ok {
			t.Errorf("AWS default credentials: %s=%s set", k, v)
		}
	}
	if aws["s3.region"] != "us-east-1" || aws["s3.path-style-access"] != "false" {
		t.Errorf("AWS defaults: %v", aws)
	}
}

// createTableRE captures the column list of the CREATE TABLE statement.
var createTableRE = regexp.MustCompile(`(?s)CREATE TABLE IF NOT EXISTS (\S+) \((.*?)\n\)\nWITH \((.*?)\n\);`)

type ddlColumn struct{ name, typ string }

func ddl(t *testing.T, out string) (table string, cols []ddlColumn, with string) {
	t.Helper()
	m := createTableRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no CREATE TABLE in output:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(m[2]), "\n") {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ","))
		if len(f) != 2 {
			t.Fatalf("column line %q", line)
		}
		cols = append(cols, ddlColumn{f[0], f[1]})
	}
	return m[1], cols, m[3]
}

// compatible says which Trino types can read a Row field: the check is
// written from the Go and Parquet side, independently of trino.Columns.
func compatible(f reflect.StructField) []string {
	_, opts, _ := strings.Cut(f.Tag.Get("parquet"), ",")
	if strings.Contains(opts, "timestamp(millisecond") {
		return []string{"timestamp(3)", "timestamp(3) with time zone"}
	}
	switch f.Type.Kind() {
	case reflect.String:
		return []string{"varchar"}
	case reflect.Int64:
		return []string{"bigint"}
	case reflect.Int32:
		return []string{"integer", "bigint"}
	case reflect.Bool:
		return []string{"boolean"}
	}
	return nil
}

func TestDDLHasEveryRowColumn(t *testing.T) {
	out := render(t, trino.Config{WarehouseURL: "file:///lake"})
	table, cols, with := ddl(t, out)
	if table != "causality.causality.events" {
		t.Errorf("table = %s", table)
	}
	rt := reflect.TypeFor[warehouse.Row]()
	if len(cols) != rt.NumField()+5 {
		t.Fatalf("DDL has %d columns, Row has %d fields + 5 partition columns", len(cols), rt.NumField())
	}
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("parquet"), ",")
		got := cols[i]
		if got.name != name {
			t.Errorf("DDL column %d is %s, Row field %s is column %s", i, got.name, f.Name, name)
			continue
		}
		ok := false
		for _, typ := range compatible(f) {
			ok = ok || got.typ == typ
		}
		if !ok {
			t.Errorf("column %s: Trino type %s cannot read Go %s (parquet %q); want one of %v",
				name, got.typ, f.Type, f.Tag.Get("parquet"), compatible(f))
		}
	}
	// Partition columns last, in path order, and named as partitioned_by.
	wantParts := []ddlColumn{{"app_id", "varchar"}, {"year", "integer"}, {"month", "integer"}, {"day", "integer"}, {"hour", "integer"}}
	if got := cols[rt.NumField():]; !reflect.DeepEqual(got, wantParts) {
		t.Errorf("partition columns = %v, want %v", got, wantParts)
	}
	if !strings.Contains(with, "partitioned_by = ARRAY['app_id', 'year', 'month', 'day', 'hour']") {
		t.Errorf("WITH clause: %s", with)
	}
	if !strings.Contains(with, "external_location = 'local:///events'") || !strings.Contains(with, "format = 'PARQUET'") {
		t.Errorf("WITH clause: %s", with)
	}
	// The partition path the sink writes is what the DDL declares.
	p := warehouse.Partition{AppID: "a", Year: 2026, Month: 11, Day: 7, Hour: 3}.Path()
	var keys []string
	for _, seg := range strings.Split(p, "/")[1:] {
		k, _, _ := strings.Cut(seg, "=")
		keys = append(keys, k)
	}
	if !strings.HasPrefix(p, "events/") || strings.Join(keys, ",") != "app_id,year,month,day,hour" {
		t.Errorf("Partition.Path() = %s does not match the DDL's partition keys", p)
	}
}

func TestSQLStatements(t *testing.T) {
	out := render(t, trino.Config{WarehouseURL: "s3://bkt/it's", Catalog: "c", Schema: "s", Table: "t"})
	for _, want := range []string{
		"CREATE SCHEMA IF NOT EXISTS c.s\nWITH (location = 's3://bkt/it''s');",
		"CREATE TABLE IF NOT EXISTS c.s.t (",
		"external_location = 's3://bkt/it''s/events',",
		"CALL c.system.sync_partition_metadata('s', 't', 'FULL');",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	for _, cfg := range []trino.Config{
		{},
		{WarehouseURL: "/no/scheme"},
		{WarehouseURL: "file://host/dir"},
		{WarehouseURL: "file:relative"},
		{WarehouseURL: "s3:///prefix-only"},
		{WarehouseURL: "gs://bucket"},
		{WarehouseURL: "file:///lake", Catalog: "Bad-Name"},
		{WarehouseURL: "file:///lake", Schema: "x; DROP"},
		{WarehouseURL: "file:///lake", Table: "9lives"},
		{WarehouseURL: "s3://b", S3AccessKey: "a\nb"},
	} {
		var buf bytes.Buffer
		if err := trino.Render(&buf, cfg); err == nil {
			t.Errorf("Render(%+v) succeeded", cfg)
		}
		if buf.Len() != 0 {
			t.Errorf("Render(%+v) wrote %d bytes before failing", cfg, buf.Len())
		}
	}
}

func TestColumnsMatchRow(t *testing.T) {
	cols, err := trino.Columns()
	if err != nil {
		t.Fatal(err)
	}
	rt := reflect.TypeFor[warehouse.Row]()
	if len(cols) != rt.NumField() {
		t.Fatalf("%d columns for %d Row fields", len(cols), rt.NumField())
	}
	seen := map[string]bool{}
	for _, c := range cols {
		if seen[c.Name] {
			t.Errorf("column %s twice", c.Name)
		}
		seen[c.Name] = true
		for _, p := range trino.PartitionColumns {
			if c.Name == p.Name {
				t.Errorf("file column %s clashes with a partition column", c.Name)
			}
		}
	}
}
