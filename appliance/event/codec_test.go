package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func TestDecodeSingleJSONNames(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"camelCase", `{"event":{"appId":"shop","deviceId":"d-1","timestampMs":"1795795200123","screenView":{"screenName":"Home","params":{"a":"b"}}}}`},
		{"snake_case", `{"event":{"app_id":"shop","device_id":"d-1","timestamp_ms":1795795200123,"screen_view":{"screen_name":"Home","params":{"a":"b"}}}}`},
		{"mixed", `{"event":{"appId":"shop","device_id":"d-1","timestampMs":1795795200123,"screen_view":{"screenName":"Home","params":{"a":"b"}}}}`},
	}
	want := &causalityv1.EventEnvelope{AppId: "shop", DeviceId: "d-1", TimestampMs: 1795795200123,
		Payload: &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: "Home", Params: map[string]string{"a": "b"}}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeSingle("application/json", []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(req.GetEvent(), want) {
				t.Errorf("decoded %v, want %v", req.GetEvent(), want)
			}
		})
	}
}

func TestDecodeSingleFixtures(t *testing.T) {
	req, err := DecodeSingle("application/json; charset=utf-8", fixture(t, "single_snake_case.json"))
	if err != nil {
		t.Fatal(err)
	}
	e := req.GetEvent()
	p := e.GetPurchaseComplete()
	if e.GetAppId() != "shop" || e.GetIdempotencyKey() != "order-2026-11-27-000913" ||
		e.GetDeviceContext().GetNetworkType() != causalityv1.NetworkType_NETWORK_TYPE_CELLULAR_5G ||
		p.GetOrderId() != "ord_913" || len(p.GetItems()) != 2 || p.GetItems()[1].GetPriceCents() != 749 {
		t.Errorf("decoded %v", e)
	}

	req, err = DecodeSingle("application/json", fixture(t, "single_screen_view.json"))
	if err != nil {
		t.Fatal(err)
	}
	if e := req.GetEvent(); e.GetTimestampMs() != 1795795200123 || e.GetDeviceContext().GetPlatform() != causalityv1.Platform_PLATFORM_IOS ||
		e.GetScreenView().GetParams()["product_id"] != "sku-1042" {
		t.Errorf("decoded %v", e)
	}

	// Fields this version does not know are dropped, not refused.
	req, err = DecodeSingle("application/json", fixture(t, "single_unknown_fields.json"))
	if err != nil {
		t.Fatalf("unknown fields: %v", err)
	}
	if req.GetEvent().GetScreenView().GetScreenName() != "Home" {
		t.Errorf("decoded %v", req.GetEvent())
	}
}

func TestDecodeSingleErrors(t *testing.T) {
	tests := []struct {
		name, contentType, body, want string
	}{
		{"no event", "application/json", `{}`, "event: required"},
		{"null event", "application/json", `{"event":null}`, "event: required"},
		{"empty body", "application/json", ``, "invalid JSON body: the body is empty"},
		{"truncated", "application/json", `{"event":{"appId":"shop"`, "invalid JSON body: "},
		{"garbage", "application/json", "\x00\x01garbage", "invalid JSON body: "},
		{"array", "application/json", `[1,2]`, "invalid JSON body: "},
		{"wrong type", "application/json", `{"event":{"appId":5}}`, "invalid JSON body: "},
		{"bad enum number type", "application/json", `{"event":{"deviceContext":{"platform":true}}}`, "invalid JSON body: "},
		{"two payloads", "application/json", `{"event":{"screenView":{},"buttonTap":{}}}`, "invalid JSON body: "},
		{"invalid UTF-8", "application/json", "{\"event\":{\"appId\":\"\xff\"}}", "invalid JSON body: "},
		{"protobuf garbage", "application/x-protobuf", "\xff\xff\xff\xff", "invalid protobuf body: "},
		{"protobuf truncated", "application/x-protobuf", "\x0a\x10\x12\x04shop", "invalid protobuf body: "},
		{"protobuf empty", "application/x-protobuf", "", "event: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeSingle(tt.contentType, []byte(tt.body))
			if err == nil {
				t.Fatalf("DecodeSingle = %v, want error %q", req, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) || errors.Is(err, ErrUnsupportedMediaType) {
				t.Fatalf("DecodeSingle error %q, want %q...", err, tt.want)
			}
			if strings.Contains(err.Error(), "proto:") {
				t.Errorf("error %q leaks the runtime's prefix", err)
			}
		})
	}
	for _, name := range []string{"invalid_truncated.json", "invalid_wrong_type.json", "invalid_two_payloads.json"} {
		if _, err := DecodeSingle("application/json", fixture(t, name)); err == nil || !strings.HasPrefix(err.Error(), "invalid JSON body: ") {
			t.Errorf("%s: DecodeSingle error %v, want invalid JSON body", name, err)
		}
	}
	if _, err := DecodeSingle("application/json", fixture(t, "invalid_no_event.json")); err == nil || err.Error() != "event: required" {
		t.Errorf("invalid_no_event.json: DecodeSingle error %v", err)
	}
}

func TestDecodeProtobuf(t *testing.T) {
	want := allKinds[17].valid() // purchase_complete, with a repeated message
	want.DeviceContext = &causalityv1.DeviceContext{Platform: causalityv1.Platform_PLATFORM_ANDROID, ScreenWidth: 1080}
	single, err := proto.Marshal(&causalityv1.IngestEventRequest{Event: want})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range []string{"application/x-protobuf", "application/protobuf", "application/proto",
		"application/vnd.google.protobuf", "application/octet-stream", "Application/X-Protobuf; proto=causality.v1.IngestEventRequest"} {
		req, err := DecodeSingle(ct, single)
		if err != nil {
			t.Fatalf("%s: %v", ct, err)
		}
		if !proto.Equal(req.GetEvent(), want) {
			t.Errorf("%s: decoded %v, want %v", ct, req.GetEvent(), want)
		}
	}

	events := make([]*causalityv1.EventEnvelope, len(allKinds))
	for i, k := range allKinds {
		events[i] = k.valid()
	}
	batch, err := proto.Marshal(&causalityv1.IngestEventBatchRequest{Events: events})
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeBatch("application/x-protobuf", batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range req.GetEvents() {
		if !proto.Equal(e, events[i]) {
			t.Errorf("event %d: decoded %v, want %v", i, e, events[i])
		}
	}
}

// TestDecodeProtobufDropsUnknownFields: a newer client's fields are dropped in
// binary too, so they are not carried into the stream.
func TestDecodeProtobufDropsUnknownFields(t *testing.T) {
	b, err := proto.Marshal(&causalityv1.IngestEventRequest{Event: allKinds[4].valid()})
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, 0xa0, 0x06, 0x01) // field 100, varint 1: unknown to IngestEventRequest
	req, err := DecodeSingle("application/x-protobuf", b)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(req.ProtoReflect().GetUnknown()); n != 0 {
		t.Errorf("%d unknown bytes kept", n)
	}
}

func TestDecodeContentTypes(t *testing.T) {
	body := fixture(t, "single_minimal.json")
	tests := []struct {
		contentType string
		ok          bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"application/json;charset=UTF-8", true},
		{"APPLICATION/JSON", true},
		{"application/json; charset=us-ascii", true},
		{"application/json; charset=iso-8859-1", false},
		{"application/json; charset=utf-16", false},
		{"", true},
		{"  ", true},
		{"text/plain", true},
		{"text/plain; charset=UTF-8", true},
		{"text/json", false},
		{"application/x-www-form-urlencoded", true},
		{"application/xml", false},
		{"multipart/form-data; boundary=x", false},
		{"application/jsonx", false},
		{"application/json; charset", false},
		{"application/*", false},
		{"json", false},
	}
	for _, tt := range tests {
		_, err := DecodeSingle(tt.contentType, body)
		if tt.ok && err != nil {
			t.Errorf("%q: %v", tt.contentType, err)
		}
		if !tt.ok && !errors.Is(err, ErrUnsupportedMediaType) {
			t.Errorf("%q: error %v, want ErrUnsupportedMediaType", tt.contentType, err)
		}
		_, err = DecodeBatch(tt.contentType, body)
		if !tt.ok && !errors.Is(err, ErrUnsupportedMediaType) {
			t.Errorf("batch %q: error %v, want ErrUnsupportedMediaType", tt.contentType, err)
		}
	}
	_, err := DecodeSingle("text/csv", body)
	if want := `unsupported media type "text/csv": send application/json or application/x-protobuf`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestDecodeBatchSizes(t *testing.T) {
	event := `{"appId":"shop","deviceId":"d-1","screenView":{"screenName":"Home"}}`
	jsonBatch := func(n int) []byte {
		return []byte(`{"events":[` + strings.Join(slices.Repeat([]string{event}, n), ",") + `]}`)
	}
	protoBatch := func(n int) []byte {
		b, err := proto.Marshal(&causalityv1.IngestEventBatchRequest{Events: slices.Repeat([]*causalityv1.EventEnvelope{allKinds[4].valid()}, n)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, n := range []int{0, 1, 2, 999, 1000, 1001, 5000} {
		for ct, body := range map[string][]byte{"application/json": jsonBatch(n), "application/x-protobuf": protoBatch(n)} {
			req, err := DecodeBatch(ct, body)
			if n >= 1 && n <= 1000 {
				if err != nil || len(req.GetEvents()) != n {
					t.Errorf("%s, %d events: %v", ct, n, err)
				}
				continue
			}
			want := fmt.Sprintf("events: a batch holds 1 to 1000 events, got %d", n)
			if err == nil || err.Error() != want {
				t.Errorf("%s, %d events: error %v, want %q", ct, n, err, want)
			}
		}
	}
	for _, body := range []string{`{}`, `{"events":null}`} {
		if _, err := DecodeBatch("application/json", []byte(body)); err == nil || !strings.HasPrefix(err.Error(), "events: ") {
			t.Errorf("%s: error %v", body, err)
		}
	}
}

func TestDecodeBatchDoesNotValidateEvents(t *testing.T) {
	req, err := DecodeBatch("application/json", fixture(t, "batch_partly_invalid.json"))
	if err != nil || len(req.GetEvents()) != 6 {
		t.Fatalf("DecodeBatch = %d events, %v", len(req.GetEvents()), err)
	}
	if _, err := DecodeBatch("application/json", fixture(t, "invalid_batch_empty.json")); err == nil {
		t.Error("invalid_batch_empty.json decoded")
	}
}

func TestDecodeBatchFixtures(t *testing.T) {
	v := newValidator(t)
	for _, name := range []string{"batch_mixed.json", "batch_all_kinds.json"} {
		req, err := DecodeBatch("application/json", fixture(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, e := range req.GetEvents() {
			if err := v.Validate(e); err != nil {
				t.Errorf("%s event %d: %v", name, i, err)
			}
		}
	}
	// batch_all_kinds.json holds every kind once, in field order.
	req, _ := DecodeBatch("application/json", fixture(t, "batch_all_kinds.json"))
	if len(req.GetEvents()) != len(allKinds) {
		t.Fatalf("batch_all_kinds.json: %d events, want %d", len(req.GetEvents()), len(allKinds))
	}
	for i, e := range req.GetEvents() {
		m := e.ProtoReflect()
		if set := m.WhichOneof(m.Descriptor().Oneofs().ByName("payload")); set == nil || string(set.Name()) != allKinds[i].field {
			t.Errorf("batch_all_kinds.json event %d is not %s", i, allKinds[i].field)
		}
	}
}

func TestEncodeResponse(t *testing.T) {
	resp := &causalityv1.IngestEventBatchResponse{AcceptedCount: 1, Results: []*causalityv1.EventResult{
		{Index: 0, EventId: "e-1", Status: "accepted"},
	}}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "", "text/plain", "garbage;;"} {
		body, rct, err := EncodeResponse(ct, resp)
		if err != nil {
			t.Fatal(err)
		}
		if rct != "application/json" {
			t.Errorf("%q: response type %q", ct, rct)
		}
		want := `{"acceptedCount":1,"rejectedCount":0,"results":[{"index":0,"eventId":"e-1","status":"accepted","error":""}]}`
		if got := compactJSON(t, body); got != want {
			t.Errorf("%q: body %s, want %s", ct, got, want)
		}
	}
	for _, ct := range []string{"application/x-protobuf", "application/protobuf", "application/proto", "application/octet-stream; x=y"} {
		body, rct, err := EncodeResponse(ct, resp)
		if err != nil {
			t.Fatal(err)
		}
		if want, _, _ := strings.Cut(ct, ";"); rct != want {
			t.Errorf("%q: response type %q, want %q", ct, rct, want)
		}
		got := &causalityv1.IngestEventBatchResponse{}
		if err := proto.Unmarshal(body, got); err != nil || !proto.Equal(got, resp) {
			t.Errorf("%q: body decodes to %v, %v", ct, got, err)
		}
	}
}

// compactJSON drops the white space of JSON output (protojson's spacing is
// deliberately unstable).
func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return out.String()
}
