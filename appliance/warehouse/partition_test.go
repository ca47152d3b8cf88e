package warehouse

import (
	"testing"
	"time"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func TestPartitionOf(t *testing.T) {
	recv := ms("2026-11-07T03:30:00Z")
	tests := []struct {
		name string
		ts   int64
		recv int64
		want Partition
	}{
		{"event time used", ms("2026-11-07T02:59:59.999Z"), recv, Partition{"shop", 2026, 11, 7, 2}},
		{"hour starts inclusive", ms("2026-11-07T03:00:00Z"), recv, Partition{"shop", 2026, 11, 7, 3}},
		{"day boundary", ms("2026-11-06T23:59:59.999Z"), recv, Partition{"shop", 2026, 11, 6, 23}},
		{"year boundary", ms("2026-01-01T00:00:00Z"), ms("2026-01-01T00:00:05Z"), Partition{"shop", 2026, 1, 1, 0}},
		{"zero clock falls back", 0, recv, Partition{"shop", 2026, 11, 7, 3}},
		{"1970 falls back", ms("1970-01-01T00:00:01Z"), recv, Partition{"shop", 2026, 11, 7, 3}},
		{"1999 falls back", ms("1999-12-31T23:59:59Z"), recv, Partition{"shop", 2026, 11, 7, 3}},
		{"negative falls back", -5, recv, Partition{"shop", 2026, 11, 7, 3}},
		{"2099 falls back", ms("2099-06-01T12:00:00Z"), recv, Partition{"shop", 2026, 11, 7, 3}},
		{"skew 23h ahead kept", recv + 23*3600*1000, recv, Partition{"shop", 2026, 11, 8, 2}},
		{"25h ahead falls back", recv + 25*3600*1000, recv, Partition{"shop", 2026, 11, 7, 3}},
		{"offline 29 days kept", recv - 29*24*3600*1000, recv, Partition{"shop", 2026, 10, 9, 3}},
		{"31 days old falls back", recv - 31*24*3600*1000, recv, Partition{"shop", 2026, 11, 7, 3}},
		{"unset receive time trusts a sane clock", ms("2026-11-07T05:00:00Z"), 0, Partition{"shop", 2026, 11, 7, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &causalityv1.EventEnvelope{AppId: "shop", TimestampMs: tt.ts}
			if got := PartitionOf(e, tt.recv); got != tt.want {
				t.Errorf("PartitionOf(ts=%d, recv=%d) = %+v, want %+v", tt.ts, tt.recv, got, tt.want)
			}
		})
	}
}

func TestPartitionPath(t *testing.T) {
	tests := []struct {
		p    Partition
		want string
	}{
		{Partition{"shop", 2026, 11, 7, 3}, "events/app_id=shop/year=2026/month=11/day=7/hour=3"},
		{Partition{"shop", 2026, 1, 1, 0}, "events/app_id=shop/year=2026/month=1/day=1/hour=0"},
		{Partition{"a/b=c", 2026, 12, 31, 23}, "events/app_id=a%2Fb%3Dc/year=2026/month=12/day=31/hour=23"},
		{Partition{"", 2026, 5, 9, 10}, "events/app_id=__HIVE_DEFAULT_PARTITION__/year=2026/month=5/day=9/hour=10"},
	}
	for _, tt := range tests {
		if got := tt.p.Path(); got != tt.want {
			t.Errorf("%+v.Path() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestEscapePartitionValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"shop", "shop"},
		{"my-app_1.0 beta", "my-app_1.0 beta"}, // space, '-', '_', '.' are kept (Hive escapes space only on Windows)
		{"a/b", "a%2Fb"},
		{"k=v", "k%3Dv"},
		{"100%", "100%25"},
		{"ns:app", "ns%3Aapp"},
		{`"#'*?\{[]^`, "%22%23%27%2A%3F%5C%7B%5B%5D%5E"},
		{"tab\there\nnl", "tab%09here%0Anl"},
		{"\x01\x1f\x7f\x00", "%01%1F%7F%00"},
		{"café/東京", "café%2F東京"},     // non-ASCII kept as UTF-8
		{"<a>|b&c+d}", "<a>|b&c+d}"}, // not in Hive's set
		{"", "__HIVE_DEFAULT_PARTITION__"},
	}
	for _, tt := range tests {
		if got := EscapePartitionValue(tt.in); got != tt.want {
			t.Errorf("EscapePartitionValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
