package detect

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Messages are read by people, in a list of firings or a notification: numbers are
// grouped by thousands and spans are said in the largest whole unit.

// groupDigits puts commas between thousands of an optionally signed run of digits.
func groupDigits(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	if len(s) <= 3 {
		return sign + s
	}
	var b strings.Builder
	b.WriteString(sign)
	head := len(s) % 3
	if head == 0 {
		head = 3
	}
	b.WriteString(s[:head])
	for i := head; i < len(s); i += 3 {
		b.WriteByte(',')
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// number formats a value: whole numbers grouped ("1,250"), others with at most three
// decimals ("2.5"), and extreme ones in exponent form.
func number(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case a >= 1e15 || (a < 0.001 && a != 0):
		return strconv.FormatFloat(v, 'g', 4, 64)
	case v == math.Trunc(v):
		return groupDigits(strconv.FormatInt(int64(v), 10))
	}
	s := strings.TrimRight(strconv.FormatFloat(v, 'f', 3, 64), "0")
	whole, frac, _ := strings.Cut(s, ".")
	if frac == "" { // rounded to a whole number
		return groupDigits(whole)
	}
	return groupDigits(whole) + "." + frac
}

// decimal1 formats a value with one decimal, grouped: "1,234.5".
func decimal1(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) >= 1e15 {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	whole, frac, _ := strings.Cut(strconv.FormatFloat(v, 'f', 1, 64), ".")
	return groupDigits(whole) + "." + frac
}

// events is "1 event" or "1,250 events".
func events(n int64) string {
	if n == 1 {
		return "1 event"
	}
	return groupDigits(strconv.FormatInt(n, 10)) + " events"
}

// span says a number of seconds in its largest whole unit: (1, "minute"), (10, "seconds").
func span(seconds int64) (int64, string) {
	n, unit := seconds, "second"
	switch {
	case seconds > 0 && seconds%86400 == 0:
		n, unit = seconds/86400, "day"
	case seconds > 0 && seconds%3600 == 0:
		n, unit = seconds/3600, "hour"
	case seconds > 0 && seconds%60 == 0:
		n, unit = seconds/60, "minute"
	}
	return n, unit
}

// lastSpan is what follows "in the last": "minute", "10 seconds", "2 hours".
func lastSpan(seconds int64) string {
	n, unit := span(seconds)
	if n == 1 {
		return unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}

// intervalSpan names an interval by its length and start: "the minute from 10:04 UTC",
// "the 30 seconds from 10:04:30 UTC", "the hour from 2026-05-03 10:00 UTC".
func intervalSpan(startUnix, seconds int64) string {
	layout := "15:04"
	switch {
	case seconds >= 3600:
		layout = "2006-01-02 15:04"
	case seconds%60 != 0:
		layout = "15:04:05"
	}
	return "the " + lastSpan(seconds) + " from " + time.Unix(startUnix, 0).UTC().Format(layout) + " UTC"
}
