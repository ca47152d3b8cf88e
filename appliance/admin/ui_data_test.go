package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/warehouse/lake"
	"github.com/causality-io/causality/appliance/warehouse/localdest"
	"github.com/causality-io/causality/appliance/warehouse/trino"
	"github.com/causality-io/causality/web"
)

func partitionPath(app string, t time.Time, file string) string {
	return fmt.Sprintf("events/app_id=%s/year=%d/month=%d/day=%d/hour=%d/%s", app, t.Year(), int(t.Month()), t.Day(), t.Hour(), file)
}

func TestUIDataPage(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dest, err := localdest.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	old := now.AddDate(0, 0, -10)
	for path, size := range map[string]int{
		partitionPath("shop", now, "a.parquet"):                    100,
		partitionPath("shop", now, "b.parquet"):                    50,
		partitionPath("shop", now.Add(-time.Hour), "c.parquet"):    25, // same day unless the test runs just after midnight
		partitionPath("a%2Fb", now, "d.parquet"):                   10, // app id "a/b", escaped
		partitionPath("shop", old, "old.parquet"):                  1000,
		partitionPath("shop", now, "_tmp/hidden.parquet"):          7, // hidden: not listed
		"events/app_id=shop/year=x/month=1/day=1/hour=1/x.parquet": 3, // not a partition
	} {
		if err := dest.Put(ctx, path, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	var tr strings.Builder
	if err := trino.Render(&tr, trino.Config{WarehouseURL: "file://" + root}); err != nil {
		t.Fatal(err)
	}
	duck := "SELECT count(*) FROM read_parquet('" + root + "/events/**/*.parquet', hive_partitioning = true);"

	c := newUIClient(t)
	c.serveUI(UIOptions{Warehouse: Warehouse{Dest: dest, Trino: tr.String(), DuckDB: duck}}, 0)
	if resp, _ := c.get("/admin/data"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("data page without a session: %d, want a redirect to sign in", resp.StatusCode)
	}
	c.signIn()
	resp, page := c.get("/admin/data")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("data page: %d", resp.StatusCode)
	}
	today := now.Format("2006-01-02")
	sameDay := now.Hour() > 0
	for _, want := range []string{
		"<h1>Data</h1>", `aria-current="page">Data`, dest.String(),
		today, "<td>a/b</td>", "Whole lake", "5 files", // every file but the hidden one and the misfiled one
		"etc/catalog/causality.properties", "connector.name=hive", "CREATE TABLE IF NOT EXISTS causality.causality.events",
		"sync_partition_metadata", `id="snippet-trino-catalog"`, `data-copy="snippet-trino-catalog"`,
		`id="snippet-trino-sql"`, `data-copy="snippet-trino-sql"`, `id="snippet-duckdb"`, `data-copy="snippet-duckdb"`,
		"read_parquet(&#39;" + root + "/events/**/*.parquet&#39;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("data page lacks %q", want)
		}
	}
	if sameDay {
		// shop today: 2 hours, 3 files, 175 B.
		if !strings.Contains(page, `<td>shop</td><td class="num">2</td><td class="num">3</td><td class="num nowrap">175 B</td>`) {
			t.Errorf("data page lacks shop's row for today:\n%s", page)
		}
	}
	if strings.Contains(page, old.Format("2006-01-02")) {
		t.Error("a day older than the window is listed")
	}
	if strings.Contains(page, "_tmp") {
		t.Error("a hidden file is listed")
	}
}

// failingLake cannot be listed.
type failingLake struct{ lake.Destination }

func (failingLake) List(context.Context, string) ([]lake.Object, error) {
	return nil, errors.New("bucket unreachable")
}
func (failingLake) String() string { return "s3://lake/prod" }

func TestUIDataPageLakeUnreachable(t *testing.T) {
	t.Parallel()
	c := newUIClient(t)
	c.serveUI(UIOptions{Warehouse: Warehouse{Dest: failingLake{}, DuckDB: "SELECT 1;"}}, 0)
	c.signIn()
	resp, page := c.get("/admin/data")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "The lake could not be listed: bucket unreachable") ||
		!strings.Contains(page, "SELECT 1;") {
		t.Errorf("data page with an unreachable lake: %d", resp.StatusCode)
	}
}

func TestSummarizeLakeBounds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var objs []lake.Object
	for app := range 100 {
		for day := range 10 {
			at := now.AddDate(0, 0, -day)
			objs = append(objs, lake.Object{Path: partitionPath(fmt.Sprintf("app%03d", app), at, "f.parquet"), Size: 1, ModTime: at})
		}
	}
	var v web.DataView
	summarizeLake(&v, objs, now)
	if v.LakeFiles != 1000 || v.WindowFiles != 700 {
		t.Errorf("files: lake %d, window %d; want 1000 and 700", v.LakeFiles, v.WindowFiles)
	}
	if len(v.Rows) != dataMaxRows || v.Truncated != 200 {
		t.Errorf("%d rows, %d left out; want %d and 200", len(v.Rows), v.Truncated, dataMaxRows)
	}
	if first, last := v.Rows[0], v.Rows[len(v.Rows)-1]; !first.Day.Equal(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)) ||
		first.AppID != "app000" || !last.Day.Before(first.Day) {
		t.Errorf("rows not newest day first, then by app: first %+v, last %+v", first, last)
	}
}

func TestParsePartition(t *testing.T) {
	t.Parallel()
	p, ok := parsePartition("events/app_id=a%2Fb%3D/year=2026/month=11/day=7/hour=3/x.parquet")
	if !ok || p.app != "a/b=" || p.hour != 3 || !p.day.Equal(time.Date(2026, 11, 7, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("parsed %+v %v", p, ok)
	}
	if p, ok := parsePartition("events/app_id=__HIVE_DEFAULT_PARTITION__/year=2026/month=1/day=1/hour=0/x.parquet"); !ok || p.app != "" {
		t.Errorf("default partition: %+v %v", p, ok)
	}
	for _, bad := range []string{
		"events/app_id=a/year=2026/month=11/day=7/hour=3/x.json",
		"events/app_id=a/year=2026/month=13/day=7/hour=3/x.parquet",
		"events/app_id=a/year=2026/month=11/day=7/x.parquet",
		"_trino_metastore/app_id=a/year=2026/month=11/day=7/hour=3/x.parquet",
	} {
		if _, ok := parsePartition(bad); ok {
			t.Errorf("%s parsed as a partition", bad)
		}
	}
}
