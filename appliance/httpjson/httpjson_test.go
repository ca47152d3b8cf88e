package httpjson

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type inner struct {
	N int `json:"n"`
}

type target struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Rate  *float64 `json:"rate"`
	Inner inner    `json:"inner"`
}

func TestDecode(t *testing.T) {
	const limit = 64
	tests := []struct {
		name    string
		body    string
		want    target // checked when wantErr is empty
		wantErr string // substring of the error; empty means success
	}{
		{name: "valid", body: `{"name":"a","count":2,"inner":{"n":3}}`, want: target{Name: "a", Count: 2, Inner: inner{N: 3}}},
		{name: "trailing whitespace is fine", body: "{\"name\":\"a\"}\n  \n", want: target{Name: "a"}},
		{name: "empty body", body: "", wantErr: "request body is empty; send a JSON object"},
		{name: "only whitespace", body: " \n\t", wantErr: "request body is empty"},
		{name: "syntax error", body: `{"name": x}`, wantErr: "request body is not valid JSON (at byte 10)"},
		{name: "wrong type names the field", body: `{"count":"two"}`, wantErr: `field "count" must be an integer`},
		{name: "wrong type of a pointer field", body: `{"rate":"fast"}`, wantErr: `field "rate" must be a number`},
		{name: "wrong type names the nested field", body: `{"inner":{"n":true}}`, wantErr: `field "inner.n" must be an integer`},
		{name: "unknown field", body: `{"nmae":"a"}`, wantErr: `unknown field "nmae"`},
		{name: "too large", body: `{"name":"` + strings.Repeat("x", 100) + `"}`, wantErr: "request body larger than 64 bytes"},
		{name: "second object after the first", body: `{"name":"a"}{"name":"b"}`, wantErr: "request body has data after the JSON object"},
		{name: "junk after the object", body: `{"name":"a"} x`, wantErr: "request body has data after the JSON object"},
		{name: "truncated object", body: `{"name":`, wantErr: "request body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			var got target
			err := Decode(r, limit, &got)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode(%q) = %v, want success", tt.body, err)
				}
				if got.Name != tt.want.Name || got.Count != tt.want.Count || got.Inner != tt.want.Inner || got.Rate != nil {
					t.Fatalf("Decode(%q) gave %+v, want %+v", tt.body, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode(%q) succeeded with %+v, want an error containing %q", tt.body, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode(%q) = %q, want it to contain %q", tt.body, err, tt.wantErr)
			}
		})
	}
}

// A body exactly at the limit is read; the limit is not off by one.
func TestDecodeAtLimit(t *testing.T) {
	body := `{"name":"` + strings.Repeat("x", 20) + `"}`
	var got target
	if err := Decode(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), int64(len(body)), &got); err != nil {
		t.Fatalf("body of exactly the limit (%d bytes): %v", len(body), err)
	}
	if got.Name != strings.Repeat("x", 20) {
		t.Fatalf("Name = %q", got.Name)
	}
	err := Decode(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), int64(len(body)-1), &got)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("body one byte over the limit: %v, want a too-large error", err)
	}
}

// A top-level value that is not an object gets a message a person can act on, not a Go type
// name and an empty field.
func TestDecodeNotAnObject(t *testing.T) {
	for _, body := range []string{`[1]`, `"text"`, `42`} {
		var got target
		err := Decode(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), 64, &got)
		if err == nil || strings.Contains(err.Error(), `field ""`) || strings.Contains(err.Error(), "httpjson.") {
			t.Errorf("Decode(%s) = %v, want an error saying a JSON object is expected", body, err)
		}
	}
}

func TestWriteAndError(t *testing.T) {
	tests := []struct {
		name     string
		write    func(w http.ResponseWriter)
		wantCode int
		wantBody map[string]any
	}{
		{
			name:     "Write",
			write:    func(w http.ResponseWriter) { Write(w, http.StatusCreated, map[string]any{"id": "k1", "n": 2}) },
			wantCode: http.StatusCreated,
			wantBody: map[string]any{"id": "k1", "n": 2.0},
		},
		{
			name:     "Error",
			write:    func(w http.ResponseWriter) { Error(w, http.StatusTeapot, `no "coffee" here`) },
			wantCode: http.StatusTeapot,
			wantBody: map[string]any{"error": `no "coffee" here`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.write(rec)
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if v := rec.Header().Get("X-Content-Type-Options"); v != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", v)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q is not JSON: %v", rec.Body, err)
			}
			if len(got) != len(tt.wantBody) {
				t.Fatalf("body = %v, want %v", got, tt.wantBody)
			}
			for k, v := range tt.wantBody {
				if got[k] != v {
					t.Errorf("body[%q] = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

// Write's answer reads back through Decode: the two agree on the format.
func TestWriteDecodeRoundTrip(t *testing.T) {
	rate := 2.5
	in := target{Name: "app", Count: 7, Rate: &rate, Inner: inner{N: 1}}
	rec := httptest.NewRecorder()
	Write(rec, http.StatusOK, in)
	var out target
	if err := Decode(httptest.NewRequest(http.MethodPost, "/", rec.Body), 1<<10, &out); err != nil {
		t.Fatal(err)
	}
	if out.Name != in.Name || out.Count != in.Count || out.Inner != in.Inner || out.Rate == nil || *out.Rate != rate {
		t.Fatalf("round trip gave %+v, want %+v", out, in)
	}
}
