package warehouse_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	. "github.com/causality-io/causality/appliance/warehouse"
	"github.com/causality-io/causality/appliance/warehouse/localdest"
)

func TestRetentionDropsOnlyExpiredPartitions(t *testing.T) {
	// The clock is 2026-11-07 12:30 UTC (cxNow).
	p := func(app string, day, hour int) string {
		return Partition{AppID: app, Year: 2026, Month: 11, Day: day, Hour: hour}.Path()
	}
	all := []string{
		p("shop", 7, 1),  // ended 02:00, 10h30 ago
		p("shop", 7, 10), // ended 11:00, 1h30 ago; hour=1 is a prefix of it
		p("shop", 7, 11), // ended 12:00, 30 min ago
		p("shop", 7, 12), // the current hour
		p("shop", 6, 23), // ended 00:00 today, 12h30 ago
		p("blog", 7, 1),  // same hour, other app
		p("shop", 1, 10), // a week ago
	}
	file := cxEncode(t, cxRows(1, "a", 5)) // retention never reads it
	for _, tc := range []struct {
		name    string
		maxAge  time.Duration
		dropped []string
	}{
		{"off", 0, nil},
		{"negative is off", -time.Hour, nil},
		{"one hour", time.Hour, []string{p("blog", 7, 1), p("shop", 1, 10), p("shop", 6, 23), p("shop", 7, 1), p("shop", 7, 10)}},
		{"exactly the age of hour=10 keeps it", 90 * time.Minute, []string{p("blog", 7, 1), p("shop", 1, 10), p("shop", 6, 23), p("shop", 7, 1)}},
		{"twelve hours", 12 * time.Hour, []string{p("shop", 1, 10), p("shop", 6, 23)}},
		{"a day", 24 * time.Hour, []string{p("shop", 1, 10)}},
		{"a month", 30 * 24 * time.Hour, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dest := cxLake(t)
			for _, dir := range all {
				cxPutRaw(t, dest, dir+"/a.parquet", file)
				cxPutRaw(t, dest, dir+"/b.parquet", file)
			}
			// Things beside the lake and outside the layout stay.
			if err := dest.Put(ctx, LedgerDir+"/warehouse/1.json", []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if err := dest.Put(ctx, "events/README", []byte("hi")); err != nil {
				t.Fatal(err)
			}
			r := &Retention{Dest: dest, MaxAge: tc.maxAge, Now: cxClock}
			dropped, err := r.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dropped, tc.dropped) {
				t.Errorf("dropped %v\nwant    %v", dropped, tc.dropped)
			}
			for _, dir := range all {
				objs, err := dest.List(ctx, dir)
				if err != nil {
					t.Fatal(err)
				}
				n := len(objs)
				if gone := slices.Contains(tc.dropped, dir); gone && n != 0 || !gone && n != 2 {
					t.Errorf("%s holds %d files (dropped: %v)", dir, n, gone)
				}
			}
			for _, keep := range []string{LedgerDir + "/warehouse/1.json", "events/README"} {
				if _, err := dest.Get(ctx, keep); err != nil {
					t.Errorf("%s: %v", keep, err)
				}
			}
			// Nothing left to drop.
			if again, err := r.RunOnce(ctx); err != nil || len(again) != 0 {
				t.Errorf("second run dropped %v, %v", again, err)
			}
		})
	}
}

func cxPutRaw(t testing.TB, dest *localdest.Dest, p string, data []byte) {
	t.Helper()
	full := filepath.Join(dest.Root(), filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, data, 0o640); err != nil {
		t.Fatal(err)
	}
}
