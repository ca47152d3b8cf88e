package appliance

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/causality-io/causality/appliance/warehouse"
)

// startHousekeeping runs compaction and retention on the lake, each under
// a database advisory lock: appliances sharing a bucket and a database
// (scale-out) then take turns, and the compaction scheme's one-compactor
// assumption holds.
func (a *Appliance) startHousekeeping(dest warehouse.Destination, m *warehouse.Metrics, log *slog.Logger) {
	if a.cfg.CompactTarget > 0 {
		tmp := filepath.Join(a.cfg.DataDir, "tmp")
		if err := os.MkdirAll(tmp, 0o700); err != nil {
			log.Warn("compaction temp dir; using the system one", "err", err)
			tmp = ""
		}
		c := &warehouse.Compactor{
			Dest:        dest,
			Ledger:      a.sink.Ledger(),
			TargetBytes: int64(a.cfg.CompactTarget),
			After:       a.cfg.CompactAfter,
			TempDir:     tmp,
			Encode:      a.sink.Encode(), // the sink's codec, whose encoders outlive every file
			Log:         log.With("task", "compaction"),
		}
		a.background.Go(func() {
			a.every(compactEvery, "warehouse-compaction", log, func(ctx context.Context) error {
				rep, err := c.RunOnce(ctx)
				m.Compacted.WithLabelValues("in").Add(float64(rep.FilesIn))
				m.Compacted.WithLabelValues("out").Add(float64(rep.FilesOut))
				if rep.Compacted > 0 || rep.Recovered > 0 {
					log.Info("compacted closed hours", "partitions", rep.Compacted, "files_in", rep.FilesIn, "files_out", rep.FilesOut,
						"rows", rep.RowsOut, "duplicates_dropped", rep.Duplicates, "recovered", rep.Recovered)
				}
				return err
			})
		})
	}
	if a.cfg.Retention > 0 {
		r := &warehouse.Retention{Dest: dest, MaxAge: a.cfg.Retention}
		a.background.Go(func() {
			a.every(retentionEvery, "warehouse-retention", log, func(ctx context.Context) error {
				dropped, err := r.RunOnce(ctx)
				m.RetentionDrops.Add(float64(len(dropped)))
				if len(dropped) > 0 {
					log.Info("retention deleted old hour partitions", "partitions", len(dropped), "older_than", a.cfg.Retention)
				}
				return err
			})
		})
	}
}

// every runs task now and then every period on the background context,
// holding the advisory lock name; a failed run is logged and retried at
// the next period.
func (a *Appliance) every(period time.Duration, name string, log *slog.Logger, task func(context.Context) error) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if _, err := a.store.WithLock(a.bgCtx, name, task); err != nil && a.bgCtx.Err() == nil {
			log.Warn("housekeeping failed; retrying later", "task", name, "err", err)
		}
		select {
		case <-a.bgCtx.Done():
			return
		case <-t.C:
		}
	}
}
