package detect

import (
	"strconv"
	"time"
)

// ringSize is the number of sub-buckets of a sliding window: memory per app is fixed,
// and the count misses at most 1/ringSize of the window (see the package doc).
const ringSize = 60

// window counts the events of one app in a sliding window of rate or count.
type window struct {
	head    int64           // index of the newest sub-bucket: Unix ms * ringSize / window ms, floored
	total   int64           // sum of buckets
	buckets [ringSize]int64 // sub-bucket j at buckets[slot(j)], for j in (head-ringSize, head]
}

func slot(j int64) int { return int((j%ringSize + ringSize) % ringSize) }

// bucket is the index of the sub-bucket that contains t (Unix ns).
func (sp *spec) bucket(t int64) int64 {
	return floorDiv(floorDiv(t, int64(time.Millisecond))*ringSize, sp.windowMs)
}

// bucketEndMs is the Unix ms at which sub-bucket j ends (rounded up: a sub-bucket of a
// 10-second window is 166 2/3 ms long).
func (sp *spec) bucketEndMs(j int64) int64 {
	return -floorDiv(-(j+1)*sp.windowMs, ringSize)
}

// add counts one event in sub-bucket j. An event older than the ring is not counted.
func (w *window) add(j int64) bool {
	switch {
	case j > w.head:
		w.slide(j)
	case j <= w.head-ringSize:
		return false
	}
	w.buckets[slot(j)]++
	w.total++
	return true
}

// slide makes j the newest sub-bucket, emptying the ones that left the window.
func (w *window) slide(j int64) {
	if j-w.head >= ringSize {
		w.buckets = [ringSize]int64{}
		w.total = 0
	} else {
		for k := w.head + 1; k <= j; k++ {
			w.total -= w.buckets[slot(k)]
			w.buckets[slot(k)] = 0
		}
	}
	w.head = j
}

// countAt is the count of the window that ends with sub-bucket now, without sliding: a
// read for Status must not change the state that is saved.
func (w *window) countAt(now int64) int64 {
	switch {
	case now <= w.head:
		return w.total
	case now-w.head >= ringSize:
		return 0
	}
	var n int64
	for k := now - ringSize + 1; k <= w.head; k++ {
		n += w.buckets[slot(k)]
	}
	return n
}

// observeWindow counts an event of a rate or count detector and fires when the window
// holds more than the limit.
func (d *detector) observeWindow(st *appState, app string, t int64, eventID string) (Firing, bool) {
	sp := &d.spec
	w := st.win
	if !w.add(sp.bucket(t)) || !(float64(w.total) > sp.limit) || !d.allow(st, t) {
		return Firing{}, false
	}
	seconds := sp.windowMs / 1000
	return Firing{
		DetectorID: d.id,
		AppID:      app,
		Kind:       sp.kind,
		At:         fromNano(t),
		DedupKey:   "window:" + strconv.FormatInt(sp.bucketEndMs(w.head), 10),
		EventID:    eventID,
		Message: events(w.total) + " in the last " + lastSpan(seconds) +
			", above the limit of " + number(sp.limit),
		Observed: float64(w.total),
		Expected: sp.limit,
		Details: map[string]any{
			"window_seconds": seconds,
			"limit":          sp.limit,
			"count":          w.total,
		},
	}, true
}
