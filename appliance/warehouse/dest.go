package warehouse

import "github.com/causality-io/causality/appliance/warehouse/lake"

// The destination contract lives in package lake, a leaf that destinations
// import without importing the sink; these aliases keep the sink's code
// reading naturally.
type (
	// Destination is where the lake lives; see lake.Destination.
	Destination = lake.Destination
	// Object is one listed object.
	Object = lake.Object
	// File is a named object body for Replace.
	File = lake.File
)

// ErrNotFound is returned by Get for an object that does not exist.
var ErrNotFound = lake.ErrNotFound
