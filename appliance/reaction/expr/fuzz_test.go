package expr_test

import (
	"testing"

	"github.com/causality-io/causality/appliance/reaction/expr"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// FuzzCondition: any text an admin saves as a condition compiles or is refused with an
// error; what compiles runs on an event without panicking.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{
		`event.purchase_complete.total_cents > 100000`,
		`type == "level_up" && event.custom_event.int_params["level"] >= 10`,
		`event.custom_event.string_params.exists(k, k.startsWith("utm_"))`,
		`event.screen_view.screen_name.split("/").size() > 2`,
		`has(event.custom_event.string_params.coupon) || category in ["commerce", "user"]`,
		`(`, `event.`, `"\xff"`, `1/0 == 1`,
	} {
		f.Add(s)
	}
	env, err := expr.NewEnv()
	if err != nil {
		f.Fatal(err)
	}
	ev := &causalityv1.EventEnvelope{AppId: "shop", DeviceId: "d", Payload: &causalityv1.EventEnvelope_CustomEvent{
		CustomEvent: &causalityv1.CustomEvent{EventName: "level_up", IntParams: map[string]int64{"level": 12}, StringParams: map[string]string{"utm_source": "x"}}}}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := env.Condition(src)
		if err != nil || p == nil {
			return
		}
		_, _ = p.Match(env.NewInput(ev, "custom", "level_up"))
		_ = p.Requires()
	})
}
