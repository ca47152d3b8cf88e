package ingest

import (
	"net/http"

	"google.golang.org/protobuf/proto"

	"github.com/causality-io/causality/appliance/event"
	"github.com/causality-io/causality/appliance/httpjson"
)

// writeMessage answers in the client's format: binary protobuf for protobuf requests,
// protojson otherwise.
func writeMessage(w http.ResponseWriter, reqType string, code int, m proto.Message) {
	body, ctype, err := event.EncodeResponse(reqType, m)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// writeError answers {"error": msg} in JSON, whatever the request's format: errors are for
// people and logs.
func writeError(w http.ResponseWriter, code int, msg string) { httpjson.Error(w, code, msg) }
