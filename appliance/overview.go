package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/metrics"
	"github.com/causality-io/causality/appliance/store"
	"github.com/causality-io/causality/web"
)

// The ingest rate is sampled every sampleEvery and kept for sampleKeep.
const (
	sampleEvery = 5 * time.Second
	sampleKeep  = time.Hour
)

// overview computes the admin overview's numbers from the running parts
// (admin.OverviewSource).
type overview struct {
	a      *Appliance
	rate   ingestRate
	now    func() time.Time
	recent int // anomalies shown
}

// startOverview starts sampling the accepted-events counter on the background loops and
// returns the overview's source. Call it once the components it reads are up.
func (a *Appliance) startOverview() *overview {
	o := &overview{a: a, now: time.Now, recent: 5}
	o.rate.init(int(sampleKeep/sampleEvery) + 1)
	o.rate.add(o.now(), o.accepted())
	a.background.Go(func() {
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-a.bgCtx.Done():
				return
			case <-t.C:
				o.rate.add(o.now(), o.accepted())
			}
		}
	})
	return o
}

// accepted reads the accepted-events counter.
func (o *overview) accepted() float64 {
	return counterValue(o.a.metrics.EventsTotal.WithLabelValues(metrics.Accepted))
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// Overview gathers the numbers. A part that cannot be read leaves its numbers unknown
// (-1 or zero) and adds to the returned error; the rest are still filled in.
func (o *overview) Overview(ctx context.Context) (web.OverviewStats, error) {
	a := o.a
	now := o.now()
	s := web.OverviewStats{EventsToday: -1, WarehouseLag: -1, ReactionLag: -1}
	var errs []error

	cur := o.accepted()
	s.IngestPerSecNow, _ = o.rate.since(now, cur, sampleEvery)
	s.IngestPerSecHour, s.HourCovered = o.rate.since(now, cur, sampleKeep)
	s.Accepted = cur
	s.Rejected = counterValue(a.metrics.EventsTotal.WithLabelValues(metrics.Rejected))
	s.Duplicates = counterValue(a.metrics.EventsTotal.WithLabelValues(metrics.Duplicate))

	if info, err := o.streamInfo(ctx); err != nil {
		errs = append(errs, err)
	} else {
		s.StreamMessages, s.StreamBytes, s.StreamMaxBytes = info.State.Msgs, info.State.Bytes, info.Config.MaxBytes
		if s.EventsToday, err = o.eventsToday(ctx, info, now); err != nil {
			errs = append(errs, err)
		}
		if s.StreamMaxBytes > 0 && float64(s.StreamBytes) > 0.9*float64(s.StreamMaxBytes) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("The event stream is %.0f%% full: at 100%% ingest answers 503. "+
				"Check that the warehouse keeps up, or raise --stream-max-bytes.", 100*float64(s.StreamBytes)/float64(s.StreamMaxBytes)))
		}
	}

	if a.sink != nil {
		if lag, err := a.sink.Lag(ctx); err != nil {
			errs = append(errs, fmt.Errorf("warehouse lag: %w", err))
		} else {
			s.WarehouseLag = int64(lag)
		}
		st := a.sink.Status()
		s.LastWrites = []web.DestinationWrite{{Destination: a.dest.String(), At: st.LastWrite}}
		if st.Err != "" {
			s.Warnings = append(s.Warnings, fmt.Sprintf("The warehouse cannot write since %s: %s. Events wait in the stream until it can.",
				st.FailingSince.UTC().Format(time.RFC3339), st.Err))
		}
	}
	if a.reaction != nil {
		if lag, err := a.reaction.engine.Lag(ctx); err != nil {
			errs = append(errs, fmt.Errorf("reaction lag: %w", err))
		} else {
			s.ReactionLag = int64(lag)
		}
		if c, err := a.reaction.dispatcher.Outbox(ctx); err != nil {
			errs = append(errs, fmt.Errorf("deliveries: %w", err))
		} else {
			s.DeliveriesPending, s.DeliveriesRetrying, s.DeliveriesDead = c.Pending, c.Retrying, c.Dead
		}
	}

	if an, err := o.anomalies(ctx); err != nil {
		errs = append(errs, err)
	} else {
		s.Anomalies = an
	}

	var fs syscall.Statfs_t
	if err := syscall.Statfs(a.cfg.DataDir, &fs); err != nil {
		errs = append(errs, fmt.Errorf("disk space of %s: %w", a.cfg.DataDir, err))
	} else {
		s.DiskFree, s.DiskTotal = fs.Bavail*uint64(fs.Bsize), fs.Blocks*uint64(fs.Bsize)
		if s.DiskTotal > 0 && s.DiskFree < s.DiskTotal/10 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("Less than 10%% of the disk under the data dir %s is free.", a.cfg.DataDir))
		}
	}
	return s, errors.Join(errs...)
}

func (o *overview) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	st, err := o.a.bus.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", bus.StreamName, err)
	}
	return st.CachedInfo(), nil
}

// eventsToday counts the events stored since midnight UTC: the stream's last sequence
// minus the first one stored at or after midnight. -1 when the stream may have dropped
// some of today's already (a max age under a day).
func (o *overview) eventsToday(ctx context.Context, info *jetstream.StreamInfo, now time.Time) (int64, error) {
	midnight := now.UTC().Truncate(24 * time.Hour)
	st := info.State
	if st.Msgs == 0 || st.LastTime.Before(midnight) {
		return 0, nil
	}
	if maxAge := info.Config.MaxAge; maxAge > 0 && now.Sub(midnight) > maxAge {
		return -1, nil
	}
	first := st.FirstSeq
	if st.FirstTime.Before(midnight) {
		seq, found, err := o.firstSeqSince(ctx, midnight)
		if err != nil {
			return -1, err
		}
		if !found {
			return 0, nil
		}
		first = seq
	}
	if first > st.LastSeq {
		return 0, nil
	}
	return int64(st.LastSeq - first + 1), nil
}

// firstSeqSince asks the stream for its first message stored at or after t (the JetStream
// API's get by start time, which the client library does not offer).
func (o *overview) firstSeqSince(ctx context.Context, t time.Time) (seq uint64, found bool, err error) {
	req, _ := json.Marshal(map[string]any{"start_time": t.UTC(), "no_hdr": true})
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	msg, err := o.a.bus.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+bus.StreamName, req)
	if err != nil {
		return 0, false, fmt.Errorf("events today: %w", err)
	}
	var resp struct {
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, false, fmt.Errorf("events today: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == 10037: // no message found
		return 0, false, nil
	case resp.Error != nil:
		return 0, false, fmt.Errorf("events today: %s", resp.Error.Description)
	case resp.Message == nil:
		return 0, false, errors.New("events today: empty answer from the stream")
	}
	return resp.Message.Seq, true, nil
}

// anomalies are the latest firings, with their detectors' names.
func (o *overview) anomalies(ctx context.Context) ([]web.AnomalyLine, error) {
	as, err := o.a.store.ListAnomalies(ctx, store.AnomalyFilter{Limit: o.recent})
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, nil
	}
	ds, err := o.a.store.ListDetectors(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(ds))
	for _, d := range ds {
		names[d.ID.String()] = d.Name
	}
	lines := make([]web.AnomalyLine, len(as))
	for i, an := range as {
		name := names[an.DetectorID.String()]
		if name == "" {
			name = an.DetectorID.String()
		}
		lines[i] = web.AnomalyLine{At: an.FiredAt, Detector: name, AppID: an.AppID, Message: an.Message}
	}
	return lines, nil
}

// ingestRate is a ring of samples of the accepted-events counter.
type ingestRate struct {
	mu      sync.Mutex
	samples []ingestSample // oldest first until full, then from next on
	next    int
}

type ingestSample struct {
	at    time.Time
	count float64
}

func (r *ingestRate) init(n int) { r.samples = make([]ingestSample, 0, n) }

func (r *ingestRate) add(at time.Time, count float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) < cap(r.samples) {
		r.samples = append(r.samples, ingestSample{at, count})
		return
	}
	r.samples[r.next] = ingestSample{at, count}
	r.next = (r.next + 1) % len(r.samples)
}

// since is the rate per second from the newest sample at least d old (or the oldest
// there is) to count now, and the time it covers.
func (r *ingestRate) since(now time.Time, count float64, d time.Duration) (float64, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.samples)
	if n == 0 {
		return 0, 0
	}
	oldest := 0
	if n == cap(r.samples) {
		oldest = r.next
	}
	from := r.samples[oldest]
	for i := n - 1; i >= 0; i-- { // newest to oldest
		s := r.samples[(oldest+i)%n]
		if now.Sub(s.at) >= d {
			from = s
			break
		}
	}
	span := now.Sub(from.at)
	if span <= 0 {
		return 0, 0
	}
	return max(count-from.count, 0) / span.Seconds(), span
}
