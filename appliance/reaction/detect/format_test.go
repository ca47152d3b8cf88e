package detect

import (
	"math"
	"testing"
	"time"
)

func TestNumber(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{7, "7"},
		{1000, "1,000"},
		{-1234567, "-1,234,567"},
		{2.5, "2.5"},
		{1234.5678, "1,234.568"},
		{999.9996, "1,000"},
		{0.0005, "0.0005"},
		{1e20, "1e+20"},
		{math.NaN(), "NaN"},
		{math.Inf(-1), "-Inf"},
	}
	for _, tt := range tests {
		if got := number(tt.v); got != tt.want {
			t.Errorf("number(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestDecimal1(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{61.345, "61.3"},
		{4.06, "4.1"},
		{12345.67, "12,345.7"},
		{0, "0.0"},
	}
	for _, tt := range tests {
		if got := decimal1(tt.v); got != tt.want {
			t.Errorf("decimal1(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestSpans(t *testing.T) {
	start := time.Date(2026, 5, 4, 10, 4, 30, 0, time.UTC).Unix()
	tests := []struct {
		seconds  int64
		last     string
		interval string
	}{
		{1, "second", "the second from 10:04:30 UTC"},
		{10, "10 seconds", "the 10 seconds from 10:04:30 UTC"},
		{60, "minute", "the minute from 10:04 UTC"},
		{300, "5 minutes", "the 5 minutes from 10:04 UTC"},
		{3600, "hour", "the hour from 2026-05-04 10:04 UTC"},
		{7200, "2 hours", "the 2 hours from 2026-05-04 10:04 UTC"},
		{86400, "day", "the day from 2026-05-04 10:04 UTC"},
		{90, "90 seconds", "the 90 seconds from 10:04:30 UTC"},
	}
	for _, tt := range tests {
		if got := lastSpan(tt.seconds); got != tt.last {
			t.Errorf("lastSpan(%d) = %q, want %q", tt.seconds, got, tt.last)
		}
		if got := intervalSpan(start, tt.seconds); got != tt.interval {
			t.Errorf("intervalSpan(%d) = %q, want %q", tt.seconds, got, tt.interval)
		}
	}
}

func TestEvents(t *testing.T) {
	for n, want := range map[int64]string{0: "0 events", 1: "1 event", 1250: "1,250 events"} {
		if got := events(n); got != want {
			t.Errorf("events(%d) = %q, want %q", n, got, want)
		}
	}
}
