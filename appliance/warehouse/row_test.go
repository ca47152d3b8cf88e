package warehouse

import (
	"encoding/json"
	"reflect"
	"testing"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

const recvMs int64 = 1795143600000 // 2026-11-21T00:00:00Z

func testDevice() *causalityv1.DeviceContext {
	return &causalityv1.DeviceContext{
		Platform:     causalityv1.Platform_PLATFORM_IOS,
		OsVersion:    "18.1",
		AppVersion:   "4.2.0",
		BuildNumber:  "420",
		DeviceModel:  "iPhone16,2",
		Manufacturer: "Apple",
		ScreenWidth:  1290,
		ScreenHeight: 2796,
		Locale:       "en_US",
		Timezone:     "America/New_York",
		NetworkType:  causalityv1.NetworkType_NETWORK_TYPE_CELLULAR_5G,
		Carrier:      "Verizon",
		IsJailbroken: true,
		IsEmulator:   false,
		SdkVersion:   "1.8.0",
	}
}

func TestFromEnvelope(t *testing.T) {
	ts := recvMs - 1500
	tests := []struct {
		name    string
		env     *causalityv1.EventEnvelope
		want    Row    // PayloadJSON compared separately, as JSON
		payload string // expected payload_json, compared semantically
	}{
		{
			name: "custom event with device context",
			env: &causalityv1.EventEnvelope{
				Id: "e1", AppId: "shop", DeviceId: "d1", TimestampMs: ts, CorrelationId: "c1",
				IdempotencyKey: "k1", DeviceContext: testDevice(),
				Payload: &causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{
					EventName:    "level_up",
					StringParams: map[string]string{"world": "w-3"},
					IntParams:    map[string]int64{"level": 7},
					FloatParams:  map[string]float64{"score": 1.5},
					BoolParams:   map[string]bool{"first_try": true},
				}},
			},
			want: Row{
				ID: "e1", DeviceID: "d1", TimestampMs: ts, CorrelationID: "c1",
				EventCategory: "custom", EventType: "level_up",
				Platform: "ios", OSVersion: "18.1", AppVersion: "4.2.0", BuildNumber: "420",
				DeviceModel: "iPhone16,2", Manufacturer: "Apple", ScreenWidth: 1290, ScreenHeight: 2796,
				Locale: "en_US", Timezone: "America/New_York", NetworkType: "cellular_5g", Carrier: "Verizon",
				IsJailbroken: true, SDKVersion: "1.8.0",
				EventTime: ts, ReceivedAt: recvMs, EventName: "level_up", IdempotencyKey: "k1",
			},
			payload: `{"event_name":"level_up","string_params":{"world":"w-3"},"int_params":{"level":"7"},
				"float_params":{"score":1.5},"bool_params":{"first_try":true}}`,
		},
		{
			name: "purchase_complete with items, no device context",
			env: &causalityv1.EventEnvelope{
				Id: "e2", AppId: "shop", DeviceId: "d2", TimestampMs: ts,
				Payload: &causalityv1.EventEnvelope_PurchaseComplete{PurchaseComplete: &causalityv1.PurchaseComplete{
					OrderId: "o-1", CartId: "c-9", ItemCount: 2, TotalCents: 4598, Currency: "EUR", PaymentMethod: "card",
					Items: []*causalityv1.PurchaseItem{
						{ProductId: "p1", ProductName: "Mug", Quantity: 1, PriceCents: 1299},
						{ProductId: "p2", ProductName: "Tee", Quantity: 1, PriceCents: 3299},
					},
				}},
			},
			want: Row{
				ID: "e2", DeviceID: "d2", TimestampMs: ts,
				EventCategory: "commerce", EventType: "purchase_complete",
				EventTime: ts, ReceivedAt: recvMs, EventName: "commerce.purchase_complete",
			},
			payload: `{"order_id":"o-1","cart_id":"c-9","item_count":2,"total_cents":"4598","currency":"EUR",
				"payment_method":"card","items":[
				{"product_id":"p1","product_name":"Mug","quantity":1,"price_cents":"1299"},
				{"product_id":"p2","product_name":"Tee","quantity":1,"price_cents":"3299"}]}`,
		},
		{
			name: "screen_view with params, android wifi",
			env: &causalityv1.EventEnvelope{
				Id: "e3", AppId: "news", DeviceId: "d3", TimestampMs: ts,
				DeviceContext: &causalityv1.DeviceContext{
					Platform:    causalityv1.Platform_PLATFORM_ANDROID,
					NetworkType: causalityv1.NetworkType_NETWORK_TYPE_WIFI,
					IsEmulator:  true,
				},
				Payload: &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{
					ScreenName: "Article", PreviousScreen: "Home",
					Params: map[string]string{"article_id": "a-77", "source": "push"},
				}},
			},
			want: Row{
				ID: "e3", DeviceID: "d3", TimestampMs: ts,
				EventCategory: "screen", EventType: "view", Platform: "android", NetworkType: "wifi",
				IsEmulator: true, EventTime: ts, ReceivedAt: recvMs, EventName: "screen.view",
			},
			payload: `{"screen_name":"Article","previous_screen":"Home","params":{"article_id":"a-77","source":"push"}}`,
		},
		{
			name: "network_change, enums inside payload keep proto names; absurd clock",
			env: &causalityv1.EventEnvelope{
				Id: "e4", AppId: "news", DeviceId: "d4", TimestampMs: 0,
				DeviceContext: &causalityv1.DeviceContext{Platform: causalityv1.Platform_PLATFORM_WEB},
				Payload: &causalityv1.EventEnvelope_NetworkChange{NetworkChange: &causalityv1.NetworkChange{
					PreviousType: causalityv1.NetworkType_NETWORK_TYPE_OFFLINE,
					CurrentType:  causalityv1.NetworkType_NETWORK_TYPE_ETHERNET,
				}},
			},
			want: Row{
				ID: "e4", DeviceID: "d4", TimestampMs: 0,
				EventCategory: "system", EventType: "network_change", Platform: "web",
				EventTime: recvMs, ReceivedAt: recvMs, EventName: "system.network_change",
			},
			payload: `{"previous_type":"NETWORK_TYPE_OFFLINE","current_type":"NETWORK_TYPE_ETHERNET"}`,
		},
		{
			name: "empty payload message renders as {}",
			env: &causalityv1.EventEnvelope{
				Id: "e5", AppId: "a", DeviceId: "d5", TimestampMs: ts,
				Payload: &causalityv1.EventEnvelope_AppForeground{AppForeground: &causalityv1.AppForeground{}},
			},
			want: Row{
				ID: "e5", DeviceID: "d5", TimestampMs: ts, EventCategory: "system", EventType: "app_foreground",
				EventTime: ts, ReceivedAt: recvMs, EventName: "system.app_foreground",
			},
			payload: `{}`,
		},
		{
			name: "no payload",
			env:  &causalityv1.EventEnvelope{Id: "e6", AppId: "a", DeviceId: "d6", TimestampMs: ts},
			want: Row{ID: "e6", DeviceID: "d6", TimestampMs: ts, EventTime: ts, ReceivedAt: recvMs},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromEnvelope(tt.env, recvMs)
			gotPayload := got.PayloadJSON
			got.PayloadJSON = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("row\n got  %+v\n want %+v", got, tt.want)
			}
			if tt.payload == "" {
				if gotPayload != "" {
					t.Errorf("payload_json = %q, want empty", gotPayload)
				}
				return
			}
			var g, w any
			if err := json.Unmarshal([]byte(gotPayload), &g); err != nil {
				t.Fatalf("payload_json %q: %v", gotPayload, err)
			}
			if err := json.Unmarshal([]byte(tt.payload), &w); err != nil {
				t.Fatalf("test payload: %v", err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("payload_json\n got  %s\n want %s", gotPayload, tt.payload)
			}
		})
	}
}

func TestEnumRendering(t *testing.T) {
	for p, want := range map[causalityv1.Platform]string{
		causalityv1.Platform_PLATFORM_UNSPECIFIED: "",
		causalityv1.Platform_PLATFORM_IOS:         "ios",
		causalityv1.Platform_PLATFORM_ANDROID:     "android",
		causalityv1.Platform_PLATFORM_WEB:         "web",
		causalityv1.Platform(42):                  "42",
	} {
		if got := platformName(p); got != want {
			t.Errorf("platformName(%v) = %q, want %q", p, got, want)
		}
	}
	for n, want := range map[causalityv1.NetworkType]string{
		causalityv1.NetworkType_NETWORK_TYPE_UNSPECIFIED: "",
		causalityv1.NetworkType_NETWORK_TYPE_WIFI:        "wifi",
		causalityv1.NetworkType_NETWORK_TYPE_CELLULAR_2G: "cellular_2g",
		causalityv1.NetworkType_NETWORK_TYPE_CELLULAR_4G: "cellular_4g",
		causalityv1.NetworkType_NETWORK_TYPE_ETHERNET:    "ethernet",
		causalityv1.NetworkType_NETWORK_TYPE_OFFLINE:     "offline",
	} {
		if got := networkTypeName(n); got != want {
			t.Errorf("networkTypeName(%v) = %q, want %q", n, got, want)
		}
	}
}

func benchEnvelope() *causalityv1.EventEnvelope {
	return &causalityv1.EventEnvelope{
		Id: "0193a1b2-0000-7000-8000-000000000001", AppId: "shop", DeviceId: "device-000001",
		TimestampMs: recvMs - 500, DeviceContext: testDevice(),
		Payload: &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{
			ScreenName: "Product", PreviousScreen: "Home", Params: map[string]string{"ref": "tab_bar"},
		}},
	}
}
