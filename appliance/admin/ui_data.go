package admin

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/causality-io/causality/appliance/warehouse/lake"
	"github.com/causality-io/causality/web"
)

// Warehouse is what the data page shows of the event lake.
type Warehouse struct {
	// Dest is the lake, listed for its partitions and files; nil lists nothing.
	Dest lake.Destination
	// Trino is the catalog file and the DDL for this installation (`causality trino`).
	Trino string
	// DuckDB is a query that reads this installation's lake.
	DuckDB string
}

// The data page's bounds: the lake is listed whole (as retention does), but only its
// newest days are shown, in at most so many rows.
const (
	dataDays    = 7
	dataMaxRows = 500
	dataListFor = 20 * time.Second
)

// trinoSQLMarker starts the SQL part of the Trino output (after the catalog file).
const trinoSQLMarker = "-- ---- SQL ----"

// dataRoutes mounts the data page in the signed-in group.
func (u *UI) dataRoutes(r chi.Router) {
	r.Get("/data", u.dataPage)
}

func (u *UI) dataPage(w http.ResponseWriter, r *http.Request) {
	wh := u.opts.Warehouse
	v := web.DataView{Days: dataDays, DuckDB: wh.DuckDB}
	v.TrinoCatalog, v.TrinoSQL = wh.Trino, ""
	if i := strings.Index(wh.Trino, trinoSQLMarker); i >= 0 {
		v.TrinoCatalog, v.TrinoSQL = strings.TrimRight(wh.Trino[:i], "\n"), wh.Trino[i:]
	}
	if wh.Dest != nil {
		v.Destination = wh.Dest.String()
		ctx, cancel := context.WithTimeout(r.Context(), dataListFor)
		defer cancel()
		objs, err := wh.Dest.List(ctx, "events")
		if err != nil {
			u.log.Warn("list the lake", "destination", v.Destination, "err", err)
			v.Err = "The lake could not be listed: " + err.Error()
		} else {
			summarizeLake(&v, objs, time.Now())
		}
	}
	u.render(w, r, http.StatusOK, web.DataPage(u.page(r, "Data", web.NavData), v))
}

// summarizeLake groups the lake's Parquet files by app and day for the last dataDays
// days (UTC, by partition), newest day first, and totals the whole lake.
func summarizeLake(v *web.DataView, objs []lake.Object, now time.Time) {
	type key struct {
		app string
		day time.Time
	}
	rows := map[key]*web.PartitionDay{}
	hours := map[key]map[int]bool{}
	since := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -(dataDays - 1))
	for _, o := range objs {
		p, ok := parsePartition(o.Path)
		if !ok {
			continue
		}
		v.LakeFiles++
		v.LakeBytes += o.Size
		if p.day.Before(since) {
			continue
		}
		k := key{p.app, p.day}
		row := rows[k]
		if row == nil {
			row = &web.PartitionDay{AppID: p.app, Day: p.day}
			rows[k], hours[k] = row, map[int]bool{}
		}
		row.Files++
		row.Bytes += o.Size
		row.Newest = maxTime(row.Newest, o.ModTime)
		hours[k][p.hour] = true
		v.WindowFiles++
		v.WindowBytes += o.Size
	}
	for k, row := range rows {
		row.Hours = len(hours[k])
		v.Rows = append(v.Rows, *row)
	}
	slices.SortFunc(v.Rows, func(a, b web.PartitionDay) int {
		return cmp.Or(b.Day.Compare(a.Day), cmp.Compare(a.AppID, b.AppID))
	})
	if len(v.Rows) > dataMaxRows {
		v.Truncated = len(v.Rows) - dataMaxRows
		v.Rows = v.Rows[:dataMaxRows]
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// lakePartition is where a file sits in the lake's Hive layout.
type lakePartition struct {
	app  string
	day  time.Time // UTC midnight
	hour int
}

// parsePartition reads "events/app_id=<app>/year=Y/month=M/day=D/hour=H/<file>.parquet".
func parsePartition(path string) (lakePartition, bool) {
	parts := strings.Split(path, "/")
	if len(parts) != 7 || parts[0] != "events" || !strings.HasSuffix(parts[6], ".parquet") {
		return lakePartition{}, false
	}
	var p lakePartition
	app, ok := strings.CutPrefix(parts[1], "app_id=")
	if !ok {
		return p, false
	}
	p.app = unescapePartitionValue(app)
	var n [4]int
	for i, name := range []string{"year", "month", "day", "hour"} {
		s, ok := strings.CutPrefix(parts[2+i], name+"=")
		if !ok {
			return p, false
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			return p, false
		}
		n[i] = v
	}
	if n[1] < 1 || n[1] > 12 || n[2] < 1 || n[2] > 31 || n[3] < 0 || n[3] > 23 {
		return p, false
	}
	p.day, p.hour = time.Date(n[0], time.Month(n[1]), n[2], 0, 0, 0, 0, time.UTC), n[3]
	return p, true
}

// unescapePartitionValue undoes Hive's escaping of a partition value (%XX, and the
// default partition for an empty value).
func unescapePartitionValue(s string) string {
	if s == "__HIVE_DEFAULT_PARTITION__" {
		return ""
	}
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
