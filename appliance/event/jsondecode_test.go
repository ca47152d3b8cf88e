package event

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// checkFastJSON decodes body with the fast path and with protojson into fresh
// messages of newMsg's type. Whenever the fast path succeeds, protojson must
// succeed too and produce the same message. It reports whether the fast path
// took the body.
func checkFastJSON(t testing.TB, body []byte, newMsg func() proto.Message) bool {
	t.Helper()
	fast := newMsg()
	if !unmarshalJSONFast(body, fast) {
		return false
	}
	ref := newMsg()
	if err := jsonIn.Unmarshal(body, ref); err != nil {
		t.Fatalf("fast path accepted a body protojson rejects (%v):\n%q", err, body)
	}
	det := proto.MarshalOptions{Deterministic: true}
	a, errA := det.Marshal(fast)
	b, errB := det.Marshal(ref)
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Fatalf("fast path and protojson differ on\n%q:\nfast:      %v\nprotojson: %v", body, fast, ref)
	}
	return true
}

func newSingle() proto.Message { return &causalityv1.IngestEventRequest{} }
func newBatch() proto.Message  { return &causalityv1.IngestEventBatchRequest{} }

func TestFastJSONMatchesProtojsonOnFixtures(t *testing.T) {
	for _, name := range fixtureNames(t, "*.json") {
		body := fixture(t, name)
		took := checkFastJSON(t, body, newSingle)
		took = checkFastJSON(t, body, newBatch) || took
		// Every valid fixture is plain enough for the fast path.
		if !took && !strings.HasPrefix(name, "invalid_") {
			t.Errorf("%s: the fast path gave up", name)
		}
	}
}

func TestFastJSONCases(t *testing.T) {
	ev := func(fields string) string { return `{"event":{` + fields + `}}` }
	tests := []struct {
		body string
		fast bool // whether the fast path should take it
	}{
		// Taken.
		{ev(`"appId":"shop","deviceId":"d","screenView":{"screenName":"Home"}`), true},
		{ev(`"app_id":"shop","device_id":"d","screen_view":{"screen_name":"Home"}`), true},
		{" \n\t" + ev(`"appId" : "a" , "timestampMs" : 17 `) + "\r\n ", true},
		{ev(`"timestampMs":"1795795200123"`), true},
		{ev(`"timestampMs":-9223372036854775808`), true},
		{ev(`"timestampMs":"-0"`), true},
		{ev(`"deviceContext":{"screenWidth":-2147483648,"platform":2,"networkType":"NETWORK_TYPE_WIFI"}`), true},
		{ev(`"deviceContext":{"platform":"PLATFORM_MARS"}`), true}, // unknown enum name: dropped
		{ev(`"deviceContext":{"platform":"1"}`), true},             // a quoted number is a name: dropped
		{ev(`"deviceContext":{"platform":99}`), true},              // unknown enum number: kept
		{ev(`"buttonTap":{"buttonId":"b","coordinates":{"x":1.5e2,"y":-0.25}}`), true},
		{ev(`"customEvent":{"eventName":"e","floatParams":{"a":1,"b":-0,"c":1E-7},"intParams":{"n":"5","m":-3},"boolParams":{"t":true,"f":false},"stringParams":{"":""}}`), true},
		{ev(`"userProfileUpdate":{"fieldsUpdated":["a","b"]}`), true},
		{ev(`"purchaseComplete":{"items":[{"productId":"p"},{}]}`), true},
		{ev(`"purchaseComplete":{"items":[]}`), true},
		{ev(`"screenView":null,"buttonTap":{"buttonId":"b"}`), true},
		{ev(`"appId":null`), true},
		{ev(`"unknown":{"a":[1,{"b":null},"\u00e9",true,false,-1.5e3]},"x":"y"`), true},
		{ev(`"appId":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t"`), true},
		{ev(`"appId":"café 😀"`), true},
		{`{"events":[{"appId":"a"}]}`, true}, // a batch read as a single request: an unknown field
		{`{}`, true},
		// Left to protojson.
		{ev(`"appId":"a","app_id":"b"`), false},                                // duplicate field
		{ev(`"screenView":{},"buttonTap":{}`), false},                          // two payloads
		{ev(`"timestampMs":1e3`), false},                                       // exponent in an integer
		{ev(`"timestampMs":"01"`), false},                                      // leading zero
		{ev(`"timestampMs":" 1"`), false},                                      // space in quotes
		{ev(`"timestampMs":9223372036854775808`), false},                       // overflow
		{ev(`"deviceContext":{"screenWidth":2147483648}`), false},              // int32 overflow
		{ev(`"buttonTap":{"coordinates":{"x":"NaN"}}`), false},                 // quoted float
		{ev(`"buttonTap":{"coordinates":{"x":1e39}}`), false},                  // float32 overflow
		{ev(`"appId":"\ud83d"`), false},                                        // lone surrogate
		{ev(`"appId":"\x"`), false},                                            // bad escape
		{ev("\"appId\":\"\xff\""), false},                                      // invalid UTF-8
		{ev("\"appId\":\"a\tb\""), false},                                      // control character
		{ev(`"app\u0049d":"a"`), false},                                        // escaped name
		{ev(`"[causality.v1.x]":1`), false},                                    // extension name
		{ev(`"customEvent":{"stringParams":{"a":"1","a":"2"}}`), false},        // duplicate map key
		{ev(`"customEvent":{"stringParams":{"a":null}}`), false},               // null map value
		{ev(`"userProfileUpdate":{"fieldsUpdated":[null]}`), false},            // null element
		{ev(`"appId":"a",`), false},                                            // trailing comma
		{ev(`"appId":"a"`) + `x`, false},                                       // trailing data
		{ev(`"appId":tru`), false},                                             // bad literal
		{ev(`"x":01`), false},                                                  // bad number in an unknown field
		{ev(`"x":[1,]`), false},                                                // bad array in an unknown field
		{strings.Repeat(`{"x":`, 100) + "1" + strings.Repeat("}", 100), false}, // deep unknown value
		{``, false},
		{`null`, false},
		{`[]`, false},
	}
	for _, tt := range tests {
		took := checkFastJSON(t, []byte(tt.body), newSingle)
		if took != tt.fast {
			t.Errorf("fast path took %v, want %v: %s", took, tt.fast, tt.body)
		}
		// Either way, the result of decode is protojson's.
		req, err := DecodeSingle("application/json", []byte(tt.body))
		ref := &causalityv1.IngestEventRequest{}
		refErr := jsonIn.Unmarshal([]byte(tt.body), ref)
		if (err == nil) != (refErr == nil && ref.GetEvent() != nil) || (err == nil && !proto.Equal(req, ref)) {
			t.Errorf("DecodeSingle = %v, %v; protojson %v, %v: %s", req, err, ref, refErr, tt.body)
		}
	}
}

// TestFastJSONOnRealisticBatch: the benchmark's batch takes the fast path.
func TestFastJSONOnRealisticBatch(t *testing.T) {
	body, err := jsonOut.Marshal(realisticBatch(t, 100))
	if err != nil {
		t.Fatal(err)
	}
	if !checkFastJSON(t, body, newBatch) {
		t.Fatal("the fast path gave up on protojson's own output")
	}
}
