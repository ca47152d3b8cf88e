package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is the result of a run; --json prints it as is.
type Report struct {
	Target           string  `json:"target"` // the endpoint URL, or "jetstream"
	Mode             string  `json:"mode"`
	Format           string  `json:"format"`
	Gzip             bool    `json:"gzip"`
	UniqueIDs        bool    `json:"unique_ids"`
	EventsPerRequest int     `json:"events_per_request"`
	Concurrency      int     `json:"concurrency"`
	RateTarget       float64 `json:"rate_target"` // requests/s; 0 = as fast as possible
	DurationSeconds  float64 `json:"duration_seconds"`
	WarmupSeconds    float64 `json:"warmup_seconds"`
	Machine          Machine `json:"machine"`

	ElapsedSeconds float64 `json:"elapsed_seconds"` // measured window, up to the last answer
	Interrupted    bool    `json:"interrupted,omitempty"`
	Requests       int64   `json:"requests"`
	EventsSent     int64   `json:"events_sent"`
	EventsAccepted int64   `json:"events_accepted"` // duplicates included, as the server counts them
	Duplicates     int64   `json:"duplicates"`
	EventsPerSec   float64 `json:"events_per_second"`
	RequestsPerSec float64 `json:"requests_per_second"`
	// Latency of the successful requests; with --rate it counts from the scheduled send
	// time, and Service from the actual send.
	Latency Latency          `json:"latency_ms"`
	Service *Latency         `json:"service_time_ms,omitempty"`
	Status  map[string]int64 `json:"status"`
	// Backlog: requests due in the measured window that were never sent (rate only).
	Backlog    int64  `json:"backlog,omitempty"`
	FirstError string `json:"first_error,omitempty"`

	Body           *BodyInfo     `json:"body,omitempty"`
	Store          *StoreInfo    `json:"store,omitempty"`
	Readers        *ReaderInfo   `json:"readers,omitempty"`
	ClientCPUCores float64       `json:"client_cpu_cores"` // this process
	Process        *ProcessUsage `json:"process,omitempty"`

	statusNames []string
}

// Latency is a summary of a histogram, in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

func summarize(h *Histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{
		Count: h.Count(), P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), Mean: ms(h.Mean()),
	}
}

// BodyInfo describes the HTTP bodies.
type BodyInfo struct {
	Distinct   int `json:"distinct"`
	PlainBytes int `json:"plain_bytes"` // mean size as the server decodes it
	WireBytes  int `json:"wire_bytes"`  // mean size sent (gzip'd with --gzip)
}

// StoreInfo describes the JetStream target's store.
type StoreInfo struct {
	Dir      string `json:"dir"`
	FS       string `json:"fs,omitempty"`
	Sync     string `json:"sync"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
}

func (r *Report) fill(res loadResult) {
	r.ElapsedSeconds = res.elapsed.Seconds()
	r.Interrupted = res.interrupted
	r.Requests = res.requests
	r.EventsSent = res.requests * int64(r.EventsPerRequest)
	r.EventsAccepted, r.Duplicates = res.accepted, res.dups
	if s := r.ElapsedSeconds; s > 0 {
		r.EventsPerSec = float64(res.accepted) / s
		r.RequestsPerSec = float64(res.requests) / s
	}
	r.Latency = summarize(&res.latency)
	if r.RateTarget > 0 {
		s := summarize(&res.service)
		r.Service = &s
	}
	r.Status = make(map[string]int64, len(r.statusNames))
	for i, name := range r.statusNames {
		r.Status[name] = res.status[i]
	}
	r.Backlog = res.backlog
	r.FirstError = res.firstErr
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	desc := fmt.Sprintf("%s, %d event(s)/request, %s", r.Mode, r.EventsPerRequest, r.Format)
	if r.Gzip {
		desc += "+gzip"
	}
	if !r.UniqueIDs {
		desc += ", repeated ids"
	}
	rate := "as fast as possible"
	if r.RateTarget > 0 {
		rate = fmt.Sprintf("%g requests/s open loop", r.RateTarget)
	}
	p("causality bench: %s (%s)\n", r.Target, desc)
	interrupted := ""
	if r.Interrupted {
		interrupted = " (interrupted)"
	}
	p("  %d workers, %s, measured %s after %s warmup%s\n", r.Concurrency, rate,
		secs(r.ElapsedSeconds), secs(r.WarmupSeconds), interrupted)
	p("  machine: %s\n", r.Machine)
	if r.Body != nil {
		p("  body:    %d B (%d B on the wire), %d distinct\n", r.Body.PlainBytes, r.Body.WireBytes, r.Body.Distinct)
	}
	if r.Store != nil {
		fs := r.Store.FS
		if fs == "" {
			fs = "unknown fs"
		}
		p("  store:   %s (%s), sync %s; stream holds %d messages, %.1f MiB\n", r.Store.Dir, fs, r.Store.Sync, r.Store.Messages, float64(r.Store.Bytes)/(1<<20))
	}
	if rd := r.Readers; rd != nil {
		p("  readers: %d explicit-ack consumers, slowest read %.0f events/s in the window; ", rd.Count, rd.EventsPerSec)
		if rd.Error != "" {
			p("%s", rd.Error)
		} else {
			p("all caught up %s after the load", secs(rd.DrainSeconds))
		}
		if rd.IteratorErrors > 0 {
			p(" (%d pull errors carried on from)", rd.IteratorErrors)
		}
		p("\n")
	}
	p("requests   %d (%.1f/s)\n", r.Requests, r.RequestsPerSec)
	p("events     %d sent, %d accepted (%.0f/s)", r.EventsSent, r.EventsAccepted, r.EventsPerSec)
	if r.Duplicates > 0 {
		p(", %d of them duplicates", r.Duplicates)
	}
	p("\n")
	lat := func(name string, l Latency) {
		p("%s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s  (n=%d, ±%.1f%%)\n", name,
			ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), ms(l.Mean), l.Count, 100*HistogramPrecision)
	}
	if r.Service != nil {
		lat("latency   ", r.Latency)
		lat("service   ", *r.Service)
		p("           (latency counts from the scheduled send, service from the actual send)\n")
	} else {
		lat("latency   ", r.Latency)
	}
	p("status    ")
	for _, name := range r.statusNames {
		p(" %s: %d", name, r.Status[name])
	}
	p("\n")
	if r.FirstError != "" {
		p("first error: %s\n", r.FirstError)
	}
	if r.Backlog > 0 {
		p("backlog    %d requests due in the window were never sent: the server (or --concurrency %d) could not keep up with --rate %g, so the tail latency above is understated\n",
			r.Backlog, r.Concurrency, r.RateTarget)
	}
	what := "client"
	if r.Target == "jetstream" {
		what = "process (bench + embedded JetStream)"
	}
	if r.ClientCPUCores > 0 {
		p("cpu        %s %.2f cores\n", what, r.ClientCPUCores)
	}
	if u := r.Process; u != nil {
		p("pid %-6d rss max %.1f MiB, mean %.1f MiB (%d samples); cpu %.2f cores\n", u.PID, u.RSSMaxMiB, u.RSSMeanMiB, u.Samples, u.CPUCores)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}
