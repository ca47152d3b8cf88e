// Package detect finds anomalies in the matching events of the reaction engine's
// detectors: a value out of its bounds (threshold), too many events in a sliding window
// (rate, count), or a count per interval that departs from its own history (baseline).
//
// It is pure logic. The engine evaluates filters and CEL itself, passes every matching
// event to Set.Observe and calls Set.Tick on a timer; time always comes in as an
// argument, so a test drives it with any clock and a replay from saved state gives the
// same firings with the same dedup keys.
//
// Memory and CPU per app are constant, whatever the event rate, at the price of these
// approximations, each chosen on purpose:
//
//   - A sliding window is a ring of 60 sub-buckets of window/60 each. The count covers
//     the sub-bucket of the newest event and the 59 before it, so it may miss events from
//     up to 1/60 of the window at its old end (one second of a rate detector's minute): it
//     never over-counts. An event older than the ring is ignored; one slightly out of
//     order counts in its own sub-bucket.
//   - A baseline's deviation is at least sqrt(mean), the spread of a Poisson count with
//     that mean, and at least 1. A very steady series has an EWMA variance near zero, and
//     without the floor a change from 100 to 104 events would count as many deviations.
//   - The first interval an app is seen in is not learned by a baseline: the app or the
//     detector started somewhere inside it, so its count is partial and would look like
//     a drop once the history is warm.
//   - One call closes every interval that time has passed, but reports at most one
//     firing per detector and app (the first anomaly not suppressed by the cooldown):
//     the intervals after it are the same episode, and the mean still learns from all.
//   - After a jump far ahead (the process was down for hours), at most HistoryIntervals+1
//     intervals are closed: the open one and the empty ones after it, which is as much
//     history as the mean remembers. The rest are skipped and the interval of the new
//     time is opened, so the CPU spent is bounded and the jump fires at most once.
//
// An app that went quiet is forgotten, so that memory follows the apps that are active.
// Tick forgets it, unless it fired within the cooldown (forgetting would lift the
// cooldown), when a threshold detector has seen no event of it for a day, a rate or count
// detector for two windows (its window is empty), or a baseline detector for more than
// HistoryIntervals intervals while its mean is below 0.01 (nothing left to fire on).
package detect
