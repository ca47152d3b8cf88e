package warehouse

import (
	"strings"

	"github.com/causality-io/causality/appliance/event"
	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Row is one event as a Parquet file row. The columns, by name, order and
// physical type, are the ones the classic Causality Hive DDL declares
// (DESIGN.md), followed by the columns this appliance adds. Partition columns
// (app_id, year, month, day, hour) are deliberately absent: Hive, Trino and
// DuckDB take them from the path, and a file column of the same name would
// clash with the partition key.
//
// Every column is REQUIRED and follows proto3 semantics: a field the client
// did not send is the zero value ("" / 0 / false), exactly what the envelope
// itself reports. Low-cardinality strings are dictionary encoded ("dict"),
// which is what makes them nearly free on disk; high-cardinality ones (ids,
// payload_json) are not, because a dictionary that never repeats only costs.
// Compression is chosen per file by EncodeOptions (zstd by default).
type Row struct {
	ID            string `parquet:"id"`
	DeviceID      string `parquet:"device_id"`
	TimestampMs   int64  `parquet:"timestamp_ms"`
	CorrelationID string `parquet:"correlation_id"`
	EventCategory string `parquet:"event_category,dict"`
	EventType     string `parquet:"event_type,dict"`
	Platform      string `parquet:"platform,dict"`
	OSVersion     string `parquet:"os_version,dict"`
	AppVersion    string `parquet:"app_version,dict"`
	BuildNumber   string `parquet:"build_number,dict"`
	DeviceModel   string `parquet:"device_model,dict"`
	Manufacturer  string `parquet:"manufacturer,dict"`
	ScreenWidth   int32  `parquet:"screen_width"`
	ScreenHeight  int32  `parquet:"screen_height"`
	Locale        string `parquet:"locale,dict"`
	Timezone      string `parquet:"timezone,dict"`
	NetworkType   string `parquet:"network_type,dict"`
	Carrier       string `parquet:"carrier,dict"`
	IsJailbroken  bool   `parquet:"is_jailbroken"`
	IsEmulator    bool   `parquet:"is_emulator"`
	SDKVersion    string `parquet:"sdk_version,dict"`
	PayloadJSON   string `parquet:"payload_json"`

	// Added columns. The two times are real TIMESTAMP(MILLIS, isAdjustedToUTC)
	// columns so engines type them as timestamps without a cast; they are
	// stored as int64 milliseconds, which is what the logical type encodes
	// and avoids a time.Time conversion per row.
	EventTime      int64  `parquet:"event_time,timestamp(millisecond:utc)"`
	ReceivedAt     int64  `parquet:"received_at,timestamp(millisecond:utc)"`
	EventName      string `parquet:"event_name,dict"`
	IdempotencyKey string `parquet:"idempotency_key"`
}

// payloadJSON renders only the payload message (not the envelope), so SQL can
// reach its fields at the top level: json_extract(payload_json, '$.screen_name').
// Field names are the proto (snake_case) names, matching the column naming of
// the rest of the table and the classic queries written against it; enums are
// their full proto names and 64-bit integers are JSON strings (protojson's
// canonical form, which keeps them exact for readers that parse numbers as
// doubles). Zero-valued fields are omitted, as protojson does by default.
// event.AppendJSON writes the same; protojson is kept for what it does not render.
var payloadJSON = protojson.MarshalOptions{UseProtoNames: true}

// FromEnvelope maps an envelope and the time the appliance received it (Unix
// milliseconds, the Causality-Received-Ms header) to its file row.
//
// timestamp_ms is kept exactly as the client sent it; event_time is the
// effective event time, the same instant that chose the partition (see
// EventTimeMs), so that a filter on event_time agrees with the partition the
// row sits in.
func FromEnvelope(e *causalityv1.EventEnvelope, receivedMs int64) Row {
	return fromEnvelope(e, receivedMs, nil)
}

// fromEnvelope is FromEnvelope with a buffer to render the payload in, reused from row to
// row by the sink.
func fromEnvelope(e *causalityv1.EventEnvelope, receivedMs int64, scratch *[]byte) Row {
	category, typ, _ := event.Kind(e)
	dc := e.GetDeviceContext()
	r := Row{
		ID:             e.GetId(),
		DeviceID:       e.GetDeviceId(),
		TimestampMs:    e.GetTimestampMs(),
		CorrelationID:  e.GetCorrelationId(),
		EventCategory:  category,
		EventType:      typ,
		Platform:       platformName(dc.GetPlatform()),
		OSVersion:      dc.GetOsVersion(),
		AppVersion:     dc.GetAppVersion(),
		BuildNumber:    dc.GetBuildNumber(),
		DeviceModel:    dc.GetDeviceModel(),
		Manufacturer:   dc.GetManufacturer(),
		ScreenWidth:    dc.GetScreenWidth(),
		ScreenHeight:   dc.GetScreenHeight(),
		Locale:         dc.GetLocale(),
		Timezone:       dc.GetTimezone(),
		NetworkType:    networkTypeName(dc.GetNetworkType()),
		Carrier:        dc.GetCarrier(),
		IsJailbroken:   dc.GetIsJailbroken(),
		IsEmulator:     dc.GetIsEmulator(),
		SDKVersion:     dc.GetSdkVersion(),
		PayloadJSON:    payloadJSONOf(e, scratch),
		EventTime:      EventTimeMs(e.GetTimestampMs(), receivedMs),
		ReceivedAt:     receivedMs,
		EventName:      eventName(category, typ),
		IdempotencyKey: e.GetIdempotencyKey(),
	}
	return r
}

// eventName is one flat name per kind of event, for GROUP BY without
// juggling two columns: a custom event is named by the name its app gave it
// ("checkout_abandoned"); every built-in event is "<category>.<type>"
// ("screen.view", "commerce.purchase_complete"). The dot cannot collide with
// a built-in name and keeps custom names unprefixed, which is how the apps'
// own dashboards refer to them. An envelope without a payload (rejected at
// ingest, so only seen in hand-made data) gets "".
func eventName(category, typ string) string {
	switch {
	case category == "":
		return ""
	case category == event.CategoryCustom:
		return typ
	default:
		return category + "." + typ
	}
}

// payloadJSONOf renders the message set in the envelope's oneof payload as payloadJSON
// describes, through event.AppendJSON: the same output as protojson without its random
// spacing, at a fraction of the cost (this runs for every event the sink writes). scratch,
// when not nil, is a buffer kept between calls.
func payloadJSONOf(e *causalityv1.EventEnvelope, scratch *[]byte) string {
	m := e.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("payload")
	if od == nil {
		return ""
	}
	fd := m.WhichOneof(od)
	if fd == nil || fd.Kind() != protoreflect.MessageKind {
		return ""
	}
	if scratch == nil {
		scratch = new([]byte)
	}
	b, err := event.AppendJSON((*scratch)[:0], m.Get(fd).Message())
	*scratch = b
	if err == nil {
		return string(b)
	}
	b, err = payloadJSON.Marshal(m.Get(fd).Message().Interface())
	if err != nil {
		// Marshalling a valid in-memory message only fails on invalid
		// UTF-8 in a string field, which ingest already rejects; keep the
		// row rather than lose the event.
		return ""
	}
	return string(b)
}

// platformName renders the Platform enum the way the classic Causality
// table stored it and documents it ("ios", "android", "web"): the enum name
// without its PLATFORM_ prefix, lower-cased. Short lower-case values are what
// people type in WHERE clauses; UNSPECIFIED (no device context, or the SDK
// did not say) becomes "" so it never masquerades as a platform.
func platformName(p causalityv1.Platform) string {
	return enumSuffix(p.String(), "PLATFORM_", int32(p))
}

// networkTypeName renders NetworkType the same way as platformName:
// "wifi", "cellular_4g", "ethernet", "offline", "" when unspecified.
func networkTypeName(n causalityv1.NetworkType) string {
	return enumSuffix(n.String(), "NETWORK_TYPE_", int32(n))
}

// enumSuffix lower-cases an enum value name without its prefix. Zero (the
// UNSPECIFIED value) is "". A number this build does not know (a newer SDK)
// comes out as its decimal number, which is what String() returns for it,
// so the information is kept rather than dropped.
func enumSuffix(name, prefix string, number int32) string {
	if number == 0 {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}
