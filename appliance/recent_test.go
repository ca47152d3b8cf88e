package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/bus"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func TestRecentReadsTheNewestEventsNewestFirst(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := bus.Open(ctx, bus.Options{
		StoreDir: t.TempDir(), DedupWindow: time.Minute, MaxAge: time.Hour, MaxBytes: 1 << 30,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	a := &Appliance{bus: b, log: slog.New(slog.DiscardHandler)}

	if got, err := a.Recent(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("empty stream: %d events, %v", len(got), err)
	}

	// 1,200 events, then one that does not decode, then one more.
	publish := func(id string, data []byte) uint64 {
		t.Helper()
		res, err := b.Publish(ctx, []bus.Message{{Subject: "events.shop.screen.view", Data: data, MsgID: id, ReceivedMs: 1}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("publish %s: %v %v", id, err, res[0].Err)
		}
		return res[0].Sequence
	}
	envelope := func(id string) []byte {
		data, err := proto.Marshal(&causalityv1.EventEnvelope{Id: id, AppId: "shop", DeviceId: "d-1",
			Payload: &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: "Home"}}})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	var ids []string
	seqs := map[string]uint64{}
	const total = 1200
	msgs := make([]bus.Message, total)
	for i := range msgs {
		id := fmt.Sprintf("ev-%04d", i)
		ids = append(ids, id)
		msgs[i] = bus.Message{Subject: "events.shop.screen.view", Data: envelope(id), MsgID: id, ReceivedMs: 1}
	}
	res, err := b.Publish(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		seqs[ids[i]] = r.Sequence
	}
	publish("broken", []byte{0x0a, 0x05}) // a field that claims 5 bytes it does not have
	ids = append(ids, "ev-last")
	publish("ev-last", envelope("ev-last"))

	// want is the n newest ids, newest first, skipping those in gone.
	want := func(n int, gone map[string]bool) []string {
		var out []string
		for i := len(ids) - 1; i >= 0 && len(out) < n; i-- {
			if !gone[ids[i]] {
				out = append(out, ids[i])
			}
		}
		return out
	}
	check := func(n int, gone map[string]bool, wantLen int) {
		t.Helper()
		got, err := a.Recent(ctx, n)
		if err != nil {
			t.Fatalf("Recent(%d): %v", n, err)
		}
		w := want(wantLen, gone)
		if len(got) != len(w) {
			t.Fatalf("Recent(%d): %d events, want %d", n, len(got), len(w))
		}
		for i := range w {
			if got[i].GetId() != w[i] {
				t.Fatalf("Recent(%d)[%d] = %q, want %q", n, i, got[i].GetId(), w[i])
			}
		}
	}
	check(1, nil, 1)
	check(50, nil, 49)    // the 50 newest messages, one of them undecodable
	check(5000, nil, 999) // bounded to 1000 messages, less the undecodable one
	check(0, nil, 0)

	// Events deleted inside the stream widen the window, so they do not count against n
	// (the undecodable one still does).
	stream, err := b.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{}
	for _, id := range []string{"ev-1199", "ev-1190", "ev-1150"} {
		if err := stream.DeleteMsg(ctx, seqs[id]); err != nil {
			t.Fatal(err)
		}
		gone[id] = true
	}
	check(50, gone, 49)

	// The consumers it read through are gone.
	for name := range stream.ConsumerNames(ctx).Name() {
		if name != bus.WarehouseConsumer && name != bus.ReactionConsumer {
			t.Errorf("consumer %q left behind", name)
		}
	}
}
