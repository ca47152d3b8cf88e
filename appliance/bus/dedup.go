package bus

import (
	"context"
	"log/slog"
	"math"
	"time"
)

// DedupCap keeps JetStream's duplicate window from holding more than MaxIDs ids: the
// server remembers every id for the whole window, so memory grows with rate × window.
// When the stored rate times the configured window would pass the cap, the window is
// shortened to MaxIDs / rate (never below MinWindow); when the rate falls, the configured
// window comes back. Only the embedded server is capped: an external server's memory is
// its operator's to size, and several appliances must not fight over its config.
type DedupCap struct {
	Bus        *Bus
	MaxIDs     int
	Configured time.Duration
	MinWindow  time.Duration
	Every      time.Duration
	Log        *slog.Logger
	// OnChange, if set, is told every window change (for metrics).
	OnChange func(window time.Duration)
}

// Run adjusts the window until ctx ends.
func (d *DedupCap) Run(ctx context.Context) {
	t := time.NewTicker(d.Every)
	defer t.Stop()
	var lastSeq uint64
	var lastAt time.Time
	var smoothed float64 // stored events per second: follows rises at once, falls slowly
	current := d.Configured
	if d.OnChange != nil {
		d.OnChange(current)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		info, err := d.Bus.stream.Info(ctx)
		if err != nil {
			continue
		}
		now := time.Now()
		if !lastAt.IsZero() && info.State.LastSeq >= lastSeq {
			rate := float64(info.State.LastSeq-lastSeq) / now.Sub(lastAt).Seconds()
			smoothed = math.Max(rate, smoothed*0.8)
		}
		lastSeq, lastAt = info.State.LastSeq, now
		want := d.window(smoothed)
		if !worthChanging(current, want, d.Configured) {
			continue
		}
		cfg := info.Config
		cfg.Duplicates = want
		if _, err := d.Bus.js.UpdateStream(ctx, cfg); err != nil {
			d.Log.Warn("adjust duplicate window", "err", err)
			continue
		}
		if want < d.Configured {
			d.Log.Warn("duplicate window shortened to bound memory: a repeat of an event older than the window is stored again",
				"window", want, "configured", d.Configured, "events_per_second", int(smoothed), "max_ids", d.MaxIDs)
		} else {
			d.Log.Info("duplicate window back to its configured length", "window", want)
		}
		current = want
		if d.OnChange != nil {
			d.OnChange(current)
		}
	}
}

// window is the longest window up to Configured whose ids fit in MaxIDs at rate.
func (d *DedupCap) window(rate float64) time.Duration {
	if rate <= 0 || rate*d.Configured.Seconds() <= float64(d.MaxIDs) {
		return d.Configured
	}
	w := time.Duration(float64(d.MaxIDs) / rate * float64(time.Second)).Truncate(time.Second)
	return max(w, d.MinWindow)
}

// worthChanging avoids rewriting the stream config for small wobbles of the rate, but
// always goes back to the configured window.
func worthChanging(current, want, configured time.Duration) bool {
	if current == want {
		return false
	}
	return want == configured || math.Abs(float64(want-current))/float64(current) > 0.2
}
