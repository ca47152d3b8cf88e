package appliance_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// minimalBatch is n valid events for app with ids prefix-0..n-1.
func minimalBatch(app, prefix string, n int) []byte {
	var b strings.Builder
	b.WriteString(`{"events":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%s-%d","appId":%q,"deviceId":"d-1","screenView":{"screenName":"Home"}}`, prefix, i, app)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// TestIngest boots one appliance with real embedded NATS and Postgres and walks the ingest
// and key API through every answer a client can get.
func TestIngest(t *testing.T) {
	s := start(t, testConfig(t, dataDir(t)))
	key := s.createKey("shop", "")
	const json = "application/json"

	t.Run("single event is stored with server time and id", func(t *testing.T) {
		r := s.ingest("/v1/events/ingest", key, json, []byte(`{"event":{"appId":"shop","deviceId":"d-9","screenView":{"screenName":"Cart"}}}`))
		if r.code != http.StatusAccepted {
			t.Fatalf("got %s", r)
		}
		m := r.json(t)
		id, _ := m["eventId"].(string)
		if m["status"] != "accepted" || len(id) != 36 || id[14] != '7' {
			t.Fatalf("want accepted with a UUIDv7 id, got %s", r)
		}
		var found *causalityv1.EventEnvelope
		for _, ev := range s.stored() {
			if ev.GetId() == id {
				found = ev
			}
		}
		if found == nil {
			t.Fatalf("event %s not in the stream", id)
		}
		if found.GetTimestampMs() == 0 || found.GetScreenView().GetScreenName() != "Cart" || found.GetDeviceId() != "d-9" {
			t.Fatalf("stored event differs: %v", found)
		}
	})

	t.Run("snake_case JSON, Bearer key, curl's default content type", func(t *testing.T) {
		r := s.do("POST", "/v1/events/ingest", readFile(t, "single_snake_case.json"), map[string]string{
			"Authorization": "Bearer " + key, "Content-Type": "application/x-www-form-urlencoded"})
		if r.code != http.StatusAccepted {
			t.Fatalf("got %s", r)
		}
	})

	t.Run("batch, then the same batch again is all duplicate", func(t *testing.T) {
		before := len(s.stored())
		body := readFile(t, "batch_mixed.json")
		r := s.ingest("/v1/events/batch", key, json, body)
		m := r.json(t)
		if r.code != http.StatusOK || m["acceptedCount"] != 10.0 || m["rejectedCount"] != 0.0 {
			t.Fatalf("got %s", r)
		}
		r = s.ingest("/v1/events/batch", key, json, body)
		if r.code != http.StatusOK {
			t.Fatalf("got %s", r)
		}
		for _, res := range r.json(t)["results"].([]any) {
			if st := res.(map[string]any)["status"]; st != "duplicate" {
				t.Fatalf("repeat should be duplicate, got %v in %s", st, r)
			}
		}
		if after := len(s.stored()); after != before+10 {
			t.Fatalf("stream grew by %d, want 10", after-before)
		}
	})

	t.Run("idempotency key dedups events with different ids", func(t *testing.T) {
		ev := `{"event":{"id":"%s","idempotencyKey":"order-77","appId":"shop","deviceId":"d","purchaseComplete":{"orderId":"o-77","totalCents":"1200"}}}`
		first := s.ingest("/v1/events/ingest", key, json, fmt.Appendf(nil, ev, "a-1"))
		second := s.ingest("/v1/events/ingest", key, json, fmt.Appendf(nil, ev, "a-2"))
		if first.json(t)["status"] != "accepted" || second.json(t)["status"] != "duplicate" {
			t.Fatalf("first %s, second %s", first, second)
		}
	})

	t.Run("partly invalid batch stores the valid events and names the bad fields", func(t *testing.T) {
		r := s.ingest("/v1/events/batch", key, json, readFile(t, "batch_partly_invalid.json"))
		if r.code != http.StatusOK {
			t.Fatalf("got %s", r)
		}
		m := r.json(t)
		if m["rejectedCount"] == 0.0 || m["acceptedCount"] == 0.0 {
			t.Fatalf("want both accepted and rejected events, got %s", r)
		}
		for _, res := range m["results"].([]any) {
			res := res.(map[string]any)
			if res["status"] == "rejected" && !strings.Contains(fmt.Sprint(res["error"]), "_") && !strings.Contains(fmt.Sprint(res["error"]), "payload") {
				t.Errorf("rejection should name the field: %v", res)
			}
		}
	})

	t.Run("gzip body", func(t *testing.T) {
		r := s.do("POST", "/v1/events/batch", gz(t, minimalBatch("shop", "gz", 50)), map[string]string{
			"X-API-Key": key, "Content-Type": json, "Content-Encoding": "gzip"})
		if r.code != http.StatusOK || r.json(t)["acceptedCount"] != 50.0 {
			t.Fatalf("got %s", r)
		}
	})

	t.Run("protobuf body gets a protobuf answer", func(t *testing.T) {
		req := &causalityv1.IngestEventBatchRequest{Events: []*causalityv1.EventEnvelope{{
			Id: "pb-1", AppId: "shop", DeviceId: "d-pb",
			Payload: &causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{
				EventName: "level_up", IntParams: map[string]int64{"level": 12}}},
		}}}
		body, _ := proto.Marshal(req)
		r := s.ingest("/v1/events/batch", key, "application/x-protobuf", body)
		if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/x-protobuf" {
			t.Fatalf("got %d %s", r.code, r.header.Get("Content-Type"))
		}
		var resp causalityv1.IngestEventBatchResponse
		if err := proto.Unmarshal(r.body, &resp); err != nil || resp.GetAcceptedCount() != 1 {
			t.Fatalf("answer %v, err %v", &resp, err)
		}
	})

	errorCases := []struct {
		name    string
		path    string
		header  map[string]string
		body    []byte
		code    int
		message string
	}{
		{"no key", "/v1/events/ingest", map[string]string{"Content-Type": json}, readFile(t, "single_minimal.json"), 401, "missing API key"},
		{"unknown key", "/v1/events/ingest", map[string]string{"X-API-Key": "cz_nope", "Content-Type": json}, readFile(t, "single_minimal.json"), 401, "unknown"},
		{"malformed JSON", "/v1/events/batch", map[string]string{"X-API-Key": key, "Content-Type": json}, []byte(`{"events":[{"appId":`), 400, "JSON"},
		{"empty batch", "/v1/events/batch", map[string]string{"X-API-Key": key, "Content-Type": json}, []byte(`{"events":[]}`), 400, "events"},
		{"too many events", "/v1/events/batch", map[string]string{"X-API-Key": key, "Content-Type": json}, minimalBatch("shop", "big", 1001), 400, "events"},
		{"invalid single event", "/v1/events/ingest", map[string]string{"X-API-Key": key, "Content-Type": json}, []byte(`{"event":{"appId":"shop","screenView":{"screenName":"x"}}}`), 400, "device_id"},
		{"no payload", "/v1/events/ingest", map[string]string{"X-API-Key": key, "Content-Type": json}, []byte(`{"event":{"appId":"shop","deviceId":"d"}}`), 400, "payload"},
		{"other app", "/v1/events/batch", map[string]string{"X-API-Key": key, "Content-Type": json}, minimalBatch("bank", "x", 2), 403, "does not match"},
		{"unsupported type", "/v1/events/batch", map[string]string{"X-API-Key": key, "Content-Type": "application/xml"}, []byte(`<events/>`), 415, "application/json"},
		{"unsupported encoding", "/v1/events/batch", map[string]string{"X-API-Key": key, "Content-Type": json, "Content-Encoding": "br"}, []byte(`x`), 415, "gzip"},
		{"broken gzip", "/v1/events/batch", map[string]string{"X-API-Key": key, "Content-Type": json, "Content-Encoding": "gzip"}, []byte(`not gzip at all`), 400, "gzip"},
		{"too large", "/v1/events/batch", map[string]string{"X-API-Key": key, "Content-Type": json}, bytes.Repeat([]byte(" "), 6<<20), 413, "larger"},
		{"gzip bomb", "/v1/events/batch", map[string]string{"X-API-Key": key, "Content-Type": json, "Content-Encoding": "gzip"}, gz(t, bytes.Repeat([]byte(" "), 64<<20)), 413, "larger"},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.stored())
			r := s.do("POST", tc.path, tc.body, tc.header)
			if r.code != tc.code {
				t.Fatalf("got %s, want %d", r, tc.code)
			}
			if msg, _ := r.json(t)["error"].(string); !strings.Contains(msg, tc.message) {
				t.Fatalf("error %q should mention %q", msg, tc.message)
			}
			if after := len(s.stored()); after != before {
				t.Fatalf("a refused request stored %d events", after-before)
			}
		})
	}

	t.Run("rate limit answers 429 with Retry-After", func(t *testing.T) {
		slow := s.createKey("shop", `,"rate_limit":1`)
		// The burst is one full batch; the next event has to wait about a second.
		if r := s.ingest("/v1/events/batch", slow, json, minimalBatch("shop", "rl", 1000)); r.code != http.StatusOK {
			t.Fatalf("first batch: %s", r)
		}
		r := s.ingest("/v1/events/batch", slow, json, minimalBatch("shop", "rl2", 10))
		if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("got %s (Retry-After %q)", r, r.header.Get("Retry-After"))
		}
	})

	t.Run("CORS preflight from a browser app", func(t *testing.T) {
		r := s.do("OPTIONS", "/v1/events/batch", nil, map[string]string{
			"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "content-type,x-api-key"})
		if r.code/100 != 2 || r.header.Get("Access-Control-Allow-Origin") == "" ||
			!strings.Contains(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), "x-api-key") {
			t.Fatalf("preflight: %d %v", r.code, r.header)
		}
	})

	t.Run("revoked key is refused at once", func(t *testing.T) {
		r := s.admin("POST", "/api/v1/admin/keys", `{"app_id":"shop","name":"temp"}`)
		m := r.json(t)
		temp, id := m["key"].(string), m["id"].(string)
		if r := s.ingest("/v1/events/ingest", temp, json, readFile(t, "single_minimal.json")); r.code != http.StatusAccepted {
			t.Fatalf("before revoke: %s", r)
		}
		if r := s.admin("DELETE", "/api/v1/admin/keys/"+id, ""); r.code != http.StatusNoContent {
			t.Fatalf("revoke: %s", r)
		}
		if r := s.ingest("/v1/events/ingest", temp, json, readFile(t, "single_minimal.json")); r.code != http.StatusUnauthorized {
			t.Fatalf("after revoke: %s", r)
		}
	})

	t.Run("operations endpoints", func(t *testing.T) {
		if r := s.do("GET", "/healthz", nil, nil); r.code != 200 {
			t.Fatalf("healthz %s", r)
		}
		if r := s.do("GET", "/readyz", nil, nil); r.code != 200 || r.json(t)["status"] != "ok" {
			t.Fatalf("readyz %s", r)
		}
		r := s.do("GET", "/metrics", nil, nil)
		for _, want := range []string{
			`causality_events_total{result="accepted"}`, `causality_events_total{result="duplicate"}`,
			`causality_events_total{result="rejected"}`, "causality_stream_messages", "causality_stream_bytes",
			`causality_http_request_duration_seconds_bucket{route="/v1/events/batch"`, "process_resident_memory_bytes",
		} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// TestAdminKeysAPI covers the key API's answers and its access control.
func TestAdminKeysAPI(t *testing.T) {
	s := start(t, testConfig(t, dataDir(t)))

	r := s.admin("POST", "/api/v1/admin/keys", `{"app_id":"shop","name":"web"}`)
	if r.code != http.StatusCreated {
		t.Fatalf("create: %s", r)
	}
	created := r.json(t)
	for _, f := range []string{"id", "app_id", "name", "key"} {
		if created[f] == "" || created[f] == nil {
			t.Errorf("create answer lacks %s: %s", f, r)
		}
	}
	list := s.admin("GET", "/api/v1/admin/keys", "")
	if list.code != 200 || strings.Contains(string(list.body), created["key"].(string)) {
		t.Fatalf("list must answer 200 and never show a key: %s", list)
	}
	if !strings.Contains(string(list.body), created["id"].(string)) {
		t.Fatalf("list lacks the new key: %s", list)
	}

	cases := []struct {
		name, method, path, body string
		auth                     bool
		code                     int
		message                  string
	}{
		{"no credentials", "GET", "/api/v1/admin/keys", "", false, 401, "admin credentials"},
		{"missing app_id", "POST", "/api/v1/admin/keys", `{"name":"x"}`, true, 400, "app_id"},
		{"bad app_id", "POST", "/api/v1/admin/keys", `{"app_id":"a b/c","name":"x"}`, true, 400, "app_id"},
		{"missing name", "POST", "/api/v1/admin/keys", `{"app_id":"shop"}`, true, 400, "name"},
		{"unknown field", "POST", "/api/v1/admin/keys", `{"app_id":"shop","name":"x","admin":true}`, true, 400, "admin"},
		{"not JSON", "POST", "/api/v1/admin/keys", `app_id=shop`, true, 400, "JSON"},
		{"revoke bad id", "DELETE", "/api/v1/admin/keys/42", "", true, 400, "UUID"},
		{"revoke unknown", "DELETE", "/api/v1/admin/keys/0193a5b2-7c4e-7d2a-9f10-3b6c2e8a4d10", "", true, 404, "no api key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.auth {
				r = s.admin(tc.method, tc.path, tc.body)
			} else {
				r = s.do(tc.method, tc.path, []byte(tc.body), nil)
			}
			if r.code != tc.code || !strings.Contains(r.json(t)["error"].(string), tc.message) {
				t.Fatalf("got %s, want %d mentioning %q", r, tc.code, tc.message)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.base+"/api/v1/admin/keys", nil)
		req.SetBasicAuth("admin", "wrong password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
}
