package web

import (
	"fmt"
	"time"
)

// OverviewStats are the numbers a person checks first.
type OverviewStats struct {
	IngestPerSecNow  float64 // accepted events per second over the last few seconds
	IngestPerSecHour float64 // average over the last hour (or since start, if shorter)
	HourCovered      time.Duration
	EventsToday      int64 // since midnight UTC; -1 when unknown
	Accepted         float64
	Rejected         float64
	Duplicates       float64

	StreamMessages uint64
	StreamBytes    uint64
	StreamMaxBytes int64
	WarehouseLag   int64 // -1 when unknown
	ReactionLag    int64 // -1 when unknown

	LastWrites []DestinationWrite

	DeliveriesPending  int64
	DeliveriesRetrying int64
	DeliveriesDead     int64
	Anomalies          []AnomalyLine

	DiskFree  uint64 // bytes free on the data dir's file system
	DiskTotal uint64

	Warnings []string // something needs attention (the warehouse cannot write, …)
}

// DestinationWrite is when the warehouse last wrote to a destination.
type DestinationWrite struct {
	Destination string
	At          time.Time // zero: not yet
}

// AnomalyLine is one recent detector firing.
type AnomalyLine struct {
	At       time.Time
	Detector string
	AppID    string
	Message  string
}

func rate(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f/s", v)
	case v >= 1:
		return fmt.Sprintf("%.1f/s", v)
	default:
		return fmt.Sprintf("%.2f/s", v)
	}
}

func count(v float64) string { return fmt.Sprintf("%.0f", v) }

func bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func lag(n int64) string {
	if n < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d", n)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "not yet"
	}
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func percent(part, whole uint64) string {
	if whole == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(whole))
}
