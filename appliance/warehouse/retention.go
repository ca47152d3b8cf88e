package warehouse

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"
)

// Retention drops whole hour partitions once their hour ended more than
// MaxAge ago. A partition goes in one Dest.DeletePrefix (on local disk one
// rename, so readers stop seeing it all at once; on S3 object by object).
//
// A late event written into a partition that is being dropped may land
// just before or after the delete; one that lands after recreates the
// partition, and the next run drops it again.
type Retention struct {
	Dest Destination
	// MaxAge is how long after its hour ended a partition is kept;
	// <= 0 keeps everything (RunOnce does nothing).
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// RunOnce drops every expired partition and returns the directories it
// dropped. A failure on one partition does not stop the others.
func (r *Retention) RunOnce(ctx context.Context) ([]string, error) {
	if r.MaxAge <= 0 {
		return nil, nil
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	objs, err := r.Dest.List(ctx, "events")
	if err != nil {
		return nil, fmt.Errorf("retention: list lake: %w", err)
	}
	expired := map[string]bool{}
	for _, o := range objs {
		dir := path.Dir(o.Path)
		if expired[dir] {
			continue
		}
		if end, ok := partitionHourEnd(dir); ok && now.Sub(end) > r.MaxAge {
			expired[dir] = true
		}
	}
	dirs := make([]string, 0, len(expired))
	for dir := range expired {
		dirs = append(dirs, dir)
	}
	slices.Sort(dirs)
	var dropped []string
	var errs []error
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		// DeletePrefix is by directory (localdest) or by "dir/" key
		// prefix (s3dest), so hour=1 never takes hour=10 with it.
		if err := r.Dest.DeletePrefix(ctx, dir); err != nil {
			errs = append(errs, fmt.Errorf("retention: drop %s: %w", dir, err))
			continue
		}
		dropped = append(dropped, dir)
	}
	return dropped, errors.Join(errs...)
}
