package reaction_test

import (
	"fmt"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/event"
	"github.com/causality-io/causality/appliance/store"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
	"google.golang.org/protobuf/proto"
)

// BenchmarkEngineDrain is what the reaction engine costs next to ingest: a stream filled
// beforehand is drained by a running engine (JetStream delivery, decode, evaluation, acks)
// with a few rules that match nothing, as most events match nothing. Reported as events/s
// and the cores the whole process (embedded NATS included) used.
//
//	go test -run '^$' -bench EngineDrain -benchtime 200000x ./appliance/reaction/
func BenchmarkEngineDrain(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(384 << 20))
	e := newEnv(b)
	e.rule(store.RuleInput{Condition: `event.purchase_complete.total_cents > 100000000`})
	e.rule(store.RuleInput{EventCategory: ptr("system"), EventType: ptr("app_crash")})
	const chunk = 1000
	for i := 0; i < b.N; i += chunk {
		msgs := make([]bus.Message, 0, chunk)
		for j := i; j < min(i+chunk, b.N); j++ {
			ev := &causalityv1.EventEnvelope{Id: fmt.Sprintf("0193a1b2-%04x-7000-8000-%012x", j>>16, j), AppId: "shop", DeviceId: "d",
				TimestampMs: time.Now().UnixMilli(), DeviceContext: &causalityv1.DeviceContext{OsVersion: "18.1", AppVersion: "4.2.0"},
				Payload: &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: "Product", Params: map[string]string{"ref": "tab"}}}}
			data, _ := proto.Marshal(ev)
			msgs = append(msgs, bus.Message{Subject: event.Subject(ev), Data: data, MsgID: ev.Id, ReceivedMs: time.Now().UnixMilli()})
		}
		if _, err := e.bus.Publish(e.ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	e.startEngine(nil)
	e.drained()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/b.Elapsed().Seconds(), "cores")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
