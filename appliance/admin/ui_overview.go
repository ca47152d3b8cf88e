package admin

import (
	"context"
	"net/http"

	"github.com/causality-io/causality/web"
)

// OverviewSource gathers the overview's numbers from the running appliance.
type OverviewSource interface {
	Overview(ctx context.Context) (web.OverviewStats, error)
}

func (u *UI) stats(r *http.Request) web.OverviewStats {
	if u.opts.Overview == nil {
		return web.OverviewStats{EventsToday: -1, WarehouseLag: -1, ReactionLag: -1}
	}
	s, err := u.opts.Overview.Overview(r.Context())
	if err != nil {
		u.log.Warn("overview numbers", "err", err)
		s.Warnings = append(s.Warnings, "Some numbers could not be read: "+err.Error())
	}
	return s
}

func (u *UI) overview(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, web.OverviewPage(u.page(r, "Overview", web.NavOverview), u.stats(r)))
}

func (u *UI) overviewStats(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, web.OverviewStatsFragment(u.stats(r)))
}
