package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Cursor is where a page of a newest-first list starts: after the item created at At with
// the given ID. Items written by one transaction share their timestamp (the reaction
// engine records up to 500 events' deliveries at once), so the time alone would skip the
// rest of such a group at a page boundary; the ID orders items within it. A Cursor with a
// zero ID means everything strictly older than At.
type Cursor struct {
	At time.Time
	ID uuid.UUID
}

// String is the cursor as lists and pages pass it around: "<RFC 3339 time>,<id>".
func (c Cursor) String() string {
	s := c.At.UTC().Format(time.RFC3339Nano)
	if c.ID != uuid.Nil {
		s += "," + c.ID.String()
	}
	return s
}

// errCursor describes the form in every parse error.
var errCursor = errors.New("want the RFC 3339 time of the last item seen, such as 2026-11-07T03:00:00Z, optionally followed by a comma and its id")

// ParseCursor reads a Cursor's String form, or a time alone.
func ParseCursor(s string) (Cursor, error) {
	at, id, hasID := strings.Cut(s, ",")
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return Cursor{}, fmt.Errorf("%q: %w", s, errCursor)
	}
	c := Cursor{At: t}
	if hasID {
		if c.ID, err = uuid.Parse(id); err != nil {
			return Cursor{}, fmt.Errorf("%q: %w", s, errCursor)
		}
	}
	return c, nil
}

// cursorArgs are the query arguments of a cursor: the time (NULL without a cursor) and
// the id, uuid.Nil when the cursor has none, which no id sorts below.
func cursorArgs(c *Cursor) (*time.Time, uuid.UUID) {
	if c == nil {
		return nil, uuid.Nil
	}
	return &c.At, c.ID
}
