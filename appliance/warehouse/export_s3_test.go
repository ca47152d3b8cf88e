package warehouse

// Internals the S3 sink tests (package warehouse_test) reach through these.

// ModeUnreachable is the flush error label of a destination that cannot be
// reached (connection refused, reset, timeout).
const ModeUnreachable = modeUnreachable

// FailureMode is how the sink labels a write error in the flush error metric.
var FailureMode = failureMode
