package appliance

import (
	"log/slog"

	"github.com/causality-io/causality/appliance/warehouse"
)

// startHousekeeping is completed when compaction and retention land.
func (a *Appliance) startHousekeeping(warehouse.Destination, *warehouse.Metrics, *slog.Logger) {}
