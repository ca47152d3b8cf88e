package reaction

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/reaction/expr"
	"github.com/causality-io/causality/appliance/store"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// benchRules are 100 enabled rules of the kinds people write: per-app rules on one event
// type with a condition, category-wide conditions, plain type filters for rare events, and
// conditions with no filter at all (evaluated on every event). About 2% of events match.
func benchRules(hook uuid.UUID) []store.Rule {
	s := func(v string) *string { return &v }
	var rules []store.Rule
	add := func(r store.Rule) {
		r.ID, r.Enabled, r.Name, r.WebhookIDs = uuid.Must(uuid.NewV7()), true, fmt.Sprintf("rule %d", len(rules)), []uuid.UUID{hook}
		rules = append(rules, r)
	}
	for i := range 30 {
		add(store.Rule{AppID: s(fmt.Sprintf("app-%d", i%10)), EventCategory: s("commerce"), EventType: s("purchase_complete"),
			Condition: fmt.Sprintf(`event.purchase_complete.total_cents > %d`, 50_000+i*1000)})
	}
	for i := range 30 {
		add(store.Rule{EventCategory: s("custom"),
			Condition: fmt.Sprintf(`type == "level_up" && event.custom_event.int_params["level"] >= %d`, 90+i)})
	}
	for i := range 20 {
		add(store.Rule{AppID: s(fmt.Sprintf("app-%d", i%10)), EventCategory: s("system"), EventType: s("app_crash")})
	}
	for i := range 20 {
		add(store.Rule{Condition: fmt.Sprintf(`event.app_id == "app-%d" && event.device_id.startsWith("vip-")`, i%10)})
	}
	return rules
}

// benchEvents is a mix of stored events: screen views, taps, purchases, custom events and
// app starts, over 10 apps.
func benchEvents(b *testing.B) [][]byte {
	var out [][]byte
	for i := range 1000 {
		ev := &causalityv1.EventEnvelope{
			Id: uuid.Must(uuid.NewV7()).String(), AppId: fmt.Sprintf("app-%d", i%10), DeviceId: fmt.Sprintf("device-%d", i%97),
			TimestampMs: time.Now().UnixMilli(), DeviceContext: &causalityv1.DeviceContext{Platform: causalityv1.Platform_PLATFORM_IOS, OsVersion: "18.1", AppVersion: "3.2.0"},
		}
		switch r := i % 20; {
		case r < 8:
			ev.Payload = &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: "home", ScreenClass: "HomeViewController"}}
		case r < 13:
			ev.Payload = &causalityv1.EventEnvelope_ButtonTap{ButtonTap: &causalityv1.ButtonTap{ButtonId: "buy", ScreenName: "product"}}
		case r < 14:
			ev.Payload = &causalityv1.EventEnvelope_PurchaseComplete{PurchaseComplete: &causalityv1.PurchaseComplete{
				OrderId: "o", TotalCents: int64(i * 97 % 100_000), Currency: "EUR", ItemCount: 2}}
		case r < 18:
			ev.Payload = &causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{
				EventName: "level_up", IntParams: map[string]int64{"level": int64(i % 100)}, StringParams: map[string]string{"world": "w1"}}}
		default:
			ev.Payload = &causalityv1.EventEnvelope_AppStart{AppStart: &causalityv1.AppStart{IsColdStart: true, LaunchDurationMs: 800}}
		}
		data, err := proto.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// BenchmarkEvaluate100Rules is the engine's work per event on one core: decode the stored
// event, pick the rules its kind can match, run their filters and CEL conditions, and
// render the webhook body of each match. Recording is batched elsewhere and not included.
//
//	go test -run '^$' -bench Evaluate100Rules -cpu 1 ./appliance/reaction/
func BenchmarkEvaluate100Rules(b *testing.B) {
	env, err := expr.NewEnv()
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	hook := uuid.Must(uuid.NewV7())
	e := NewEngine(nil, nil, nil, env, Options{}, NewMetrics(prometheus.NewRegistry()), nil, log)
	e.rules = compileRuleSet(env, benchRules(hook), nil, []store.Webhook{{ID: hook, Enabled: true}}, log)
	if len(e.rules.rules) != 100 {
		b.Fatalf("%d rules compiled, want 100", len(e.rules.rules))
	}
	events := benchEvents(b)
	now := func() time.Time { return time.Now() }
	matched := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rec, err := e.evaluate(events[i%len(events)], now)
		if err != nil {
			b.Fatal(err)
		}
		if rec {
			matched++
			e.resetBatch()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(100*float64(matched)/float64(b.N), "%matched")
}

// The hand-written rule match body is the JSON encoding/json gives for the same data.
func TestRuleMatchedBodyMatchesEncodingJSON(t *testing.T) {
	r := &rule{id: uuid.Must(uuid.NewV7()), name: "big \"purchase\" <€>\n", priority: -7}
	at := time.Date(2026, 11, 27, 10, 4, 5, 123_000_000, time.FixedZone("x", 3600))
	event := eventJSON(&causalityv1.EventEnvelope{Id: "e1", AppId: "shop", DeviceId: "d",
		Payload: &causalityv1.EventEnvelope_PurchaseComplete{PurchaseComplete: &causalityv1.PurchaseComplete{TotalCents: 250000}}})
	got := appendRuleMatched(nil, r, "shop", at, event)
	want, err := json.Marshal(map[string]any{"type": TypeRuleMatched, "timestamp": at.UTC(), "data": map[string]any{
		"rule":   map[string]any{"id": r.id, "name": r.name, "priority": r.priority},
		"app_id": "shop", "event": event}})
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
