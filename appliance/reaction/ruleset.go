package reaction

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/causality-io/causality/appliance/reaction/detect"
	"github.com/causality-io/causality/appliance/reaction/expr"
	"github.com/causality-io/causality/appliance/store"
)

// filter is the part of a rule or detector that needs no CEL: app, category and type.
// Empty strings match anything.
type filter struct {
	app, category, typ string
	// needApp is an app the condition requires (event.app_id == "..."), checked before
	// running it.
	needApp string
}

// withRequirements narrows a filter by what a condition cannot be true without. When the
// condition asks for another category or type than the filter, nothing can match; the
// filter keeps its own value and the condition says no.
func (f filter) withRequirements(p *expr.Program) filter {
	if p == nil {
		return f
	}
	req := p.Requires()
	if f.category == "" {
		f.category = req.Category
	}
	if f.typ == "" {
		f.typ = req.Type
	}
	f.needApp = req.AppID
	return f
}

// admitsApp reports whether the app filters let an event of app through.
func (f filter) admitsApp(app string) bool {
	return (f.app == "" || f.app == app) && (f.needApp == "" || f.needApp == app)
}

func newFilter(app, category, typ *string) filter {
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	return filter{app: deref(app), category: deref(category), typ: deref(typ)}
}

// admitsKind reports whether the category and type filters let an event kind through.
func (f filter) admitsKind(category, typ string) bool {
	return (f.category == "" || f.category == category) && (f.typ == "" || f.typ == typ)
}

// rule is a compiled rule.
type rule struct {
	id       uuid.UUID
	name     string
	priority int
	filter   filter
	cond     *expr.Program // nil: every event through the filter matches
	webhooks []uuid.UUID   // enabled ones, at the time the rule set was built
	subject  string        // "" means alerts.<app>.<rule id>
}

// detector is a compiled detector.
type detector struct {
	id       uuid.UUID
	idText   string
	name     string
	kind     string
	filter   filter
	cond     *expr.Program
	value    *expr.Program // threshold only
	webhooks []uuid.UUID
	subject  string // "" means anomalies.<app>.<detector id>
}

// ruleSet is an immutable snapshot of the enabled rules and detectors, compiled. A new one
// replaces it when the configuration changes.
type ruleSet struct {
	rules     []*rule // highest priority first
	detectors []*detector
	specs     []detect.Detector
	// byKind caches, per event kind, the rules and detectors whose category and type filters
	// admit it; built on first sight of a kind. Only the engine's goroutine reads it.
	byKind map[kindKey]*kindMatch
}

type kindKey struct{ category, typ string }

type kindMatch struct {
	rules     []*rule
	detectors []*detector
}

// maxKinds bounds the kind cache: custom event names are chosen by apps and unbounded.
const maxKinds = 10_000

// compileRuleSet compiles what is enabled. A rule or detector that no longer compiles (the
// CEL environment changed under a stored expression) is skipped with an error in the log
// rather than stopping the others.
func compileRuleSet(env *expr.Env, rules []store.Rule, detectors []store.Detector, hooks []store.Webhook, log *slog.Logger) *ruleSet {
	enabledHooks := make(map[uuid.UUID]bool, len(hooks))
	for _, h := range hooks {
		if h.Enabled {
			enabledHooks[h.ID] = true
		}
	}
	liveHooks := func(ids []uuid.UUID) []uuid.UUID {
		var out []uuid.UUID
		for _, id := range ids {
			if enabledHooks[id] {
				out = append(out, id)
			}
		}
		return out
	}
	subject := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	rs := &ruleSet{byKind: make(map[kindKey]*kindMatch)}
	for _, r := range rules {
		if !r.Enabled {
			continue
		}
		cond, err := env.Condition(r.Condition)
		if err != nil {
			log.Error("rule skipped: its condition does not compile", "rule_id", r.ID, "rule", r.Name, "err", err)
			continue
		}
		rs.rules = append(rs.rules, &rule{
			id: r.ID, name: r.Name, priority: r.Priority, filter: newFilter(r.AppID, r.EventCategory, r.EventType).withRequirements(cond),
			cond: cond, webhooks: liveHooks(r.WebhookIDs), subject: subject(r.PublishSubject),
		})
	}
	for _, d := range detectors {
		if !d.Enabled {
			continue
		}
		cfg, err := detect.ParseConfig(d.Kind, d.Config)
		if err != nil {
			log.Error("detector skipped: its settings are invalid", "detector_id", d.ID, "detector", d.Name, "err", err)
			continue
		}
		cond, err := env.Condition(d.Condition)
		if err != nil {
			log.Error("detector skipped: its condition does not compile", "detector_id", d.ID, "detector", d.Name, "err", err)
			continue
		}
		cd := &detector{
			id: d.ID, idText: d.ID.String(), name: d.Name, kind: d.Kind, filter: newFilter(d.AppID, d.EventCategory, d.EventType).withRequirements(cond),
			cond: cond, webhooks: liveHooks(d.WebhookIDs), subject: subject(d.PublishSubject),
		}
		if cfg.Threshold != nil {
			if cd.value, err = env.Number(cfg.Threshold.Value); err != nil {
				log.Error("detector skipped: its value does not compile", "detector_id", d.ID, "detector", d.Name, "err", err)
				continue
			}
		}
		rs.detectors = append(rs.detectors, cd)
		rs.specs = append(rs.specs, detect.Detector{
			ID: cd.idText, Config: cfg, Cooldown: time.Duration(d.CooldownSeconds) * time.Second,
			Version: d.UpdatedAt.UTC().Format(time.RFC3339Nano),
		})
	}
	return rs
}

// forKind returns the rules and detectors an event of this kind may match.
func (rs *ruleSet) forKind(category, typ string) *kindMatch {
	k := kindKey{category, typ}
	if m, ok := rs.byKind[k]; ok {
		return m
	}
	m := &kindMatch{}
	for _, r := range rs.rules {
		if r.filter.admitsKind(category, typ) {
			m.rules = append(m.rules, r)
		}
	}
	for _, d := range rs.detectors {
		if d.filter.admitsKind(category, typ) {
			m.detectors = append(m.detectors, d)
		}
	}
	if len(rs.byKind) >= maxKinds {
		clear(rs.byKind)
	}
	rs.byKind[k] = m
	return m
}

// empty reports whether nothing is enabled, so that no event can match.
func (rs *ruleSet) empty() bool { return len(rs.rules) == 0 && len(rs.detectors) == 0 }

func (rs *ruleSet) String() string {
	return fmt.Sprintf("%d rules, %d detectors", len(rs.rules), len(rs.detectors))
}
