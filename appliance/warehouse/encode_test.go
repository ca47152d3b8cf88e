package warehouse

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// wantColumns is DESIGN.md's list of file columns, in order, with the
// physical type each must have for the classic Hive DDL (STRING, BIGINT,
// INT, BOOLEAN) and the added TIMESTAMP columns.
var wantColumns = []struct {
	name string
	kind parquet.Kind
}{
	{"id", parquet.ByteArray}, {"device_id", parquet.ByteArray}, {"timestamp_ms", parquet.Int64},
	{"correlation_id", parquet.ByteArray}, {"event_category", parquet.ByteArray}, {"event_type", parquet.ByteArray},
	{"platform", parquet.ByteArray}, {"os_version", parquet.ByteArray}, {"app_version", parquet.ByteArray},
	{"build_number", parquet.ByteArray}, {"device_model", parquet.ByteArray}, {"manufacturer", parquet.ByteArray},
	{"screen_width", parquet.Int32}, {"screen_height", parquet.Int32},
	{"locale", parquet.ByteArray}, {"timezone", parquet.ByteArray}, {"network_type", parquet.ByteArray},
	{"carrier", parquet.ByteArray}, {"is_jailbroken", parquet.Boolean}, {"is_emulator", parquet.Boolean},
	{"sdk_version", parquet.ByteArray}, {"payload_json", parquet.ByteArray},
	{"event_time", parquet.Int64}, {"received_at", parquet.Int64},
	{"event_name", parquet.ByteArray}, {"idempotency_key", parquet.ByteArray},
}

var dictColumns = map[string]bool{
	"event_category": true, "event_type": true, "platform": true, "os_version": true, "app_version": true,
	"build_number": true, "device_model": true, "manufacturer": true, "locale": true, "timezone": true,
	"network_type": true, "carrier": true, "sdk_version": true, "event_name": true,
}

func TestSchemaMatchesContract(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteParquet(&buf, sampleRows(10), EncodeOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	fields := f.Schema().Fields()
	if len(fields) != len(wantColumns) {
		t.Fatalf("file has %d columns, want %d: %v", len(fields), len(wantColumns), f.Schema())
	}
	for i, w := range wantColumns {
		fl := fields[i]
		if fl.Name() != w.name {
			t.Errorf("column %d is %q, want %q", i, fl.Name(), w.name)
		}
		if !fl.Leaf() || fl.Type().Kind() != w.kind {
			t.Errorf("column %q has type %v, want kind %v", fl.Name(), fl.Type(), w.kind)
		}
		if !fl.Required() {
			t.Errorf("column %q is not REQUIRED", fl.Name())
		}
		lt := fl.Type().LogicalType()
		switch {
		case w.name == "event_time" || w.name == "received_at":
			ts, ok := lt.Value.(*format.TimestampType)
			if !ok {
				t.Errorf("column %q logical type %v, want TIMESTAMP", w.name, lt)
				continue
			}
			if _, millis := ts.Unit.Value.(*format.MilliSeconds); !ts.IsAdjustedToUTC || !millis {
				t.Errorf("column %q is %v, want TIMESTAMP(MILLIS, isAdjustedToUTC=true)", w.name, ts)
			}
		case w.kind == parquet.ByteArray:
			if _, ok := lt.Value.(*format.StringType); !ok {
				t.Errorf("column %q logical type %v, want STRING", w.name, lt)
			}
		}
	}

	// Readers that predate logical types (older Hive) go by the converted
	// type: UTF8 for strings, TIMESTAMP_MILLIS for the two times.
	for _, se := range f.Metadata().Schema[1:] {
		var want deprecated.ConvertedType
		switch se.Name {
		case "event_time", "received_at":
			want = deprecated.TimestampMillis
		default:
			if typ, _ := se.Type.Get(); typ != format.ByteArray {
				continue
			}
			want = deprecated.UTF8
		}
		if got, ok := se.ConvertedType.Get(); !ok || got != want {
			t.Errorf("column %q converted type %v (set %v), want %v", se.Name, got, ok, want)
		}
	}

	// Column chunk metadata: zstd everywhere, dictionary pages exactly on
	// the low-cardinality strings.
	md := f.Metadata()
	if len(md.RowGroups) == 0 {
		t.Fatal("no row groups")
	}
	for _, cc := range md.RowGroups[0].Columns {
		name := cc.MetaData.PathInSchema[0]
		if cc.MetaData.Codec != format.Zstd {
			t.Errorf("column %q codec %v, want ZSTD", name, cc.MetaData.Codec)
		}
		hasDict := cc.MetaData.DictionaryPageOffset != 0
		if hasDict != dictColumns[name] {
			t.Errorf("column %q dictionary page = %v, want %v", name, hasDict, dictColumns[name])
		}
	}
}

func TestWriteParquetRoundTrip(t *testing.T) {
	rows := sampleRows(2500)
	var buf bytes.Buffer
	if err := WriteParquet(&buf, rows, EncodeOptions{RowGroupRows: 1000}); err != nil {
		t.Fatal(err)
	}
	got, err := parquet.Read[Row](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rows) {
		t.Fatalf("round trip differs: got %d rows, want %d", len(got), len(rows))
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.RowGroups()); n != 3 {
		t.Errorf("row groups = %d, want 3 for 2500 rows at 1000 per group", n)
	}
}

func TestWriteParquetEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteParquet(&buf, nil, EncodeOptions{Compression: &parquet.Snappy}); err != nil {
		t.Fatal(err)
	}
	got, err := parquet.Read[Row](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("got %d rows from an empty file", len(got))
	}
}

// sampleRows builds a realistic mix: a few apps' worth of devices, the
// common event kinds, real payloads, ids that never repeat.
func sampleRows(n int) []Row {
	base := recvMs - 3_600_000
	models := []string{"iPhone16,2", "iPhone15,3", "SM-S918B", "Pixel 8", "Chrome 131"}
	platforms := []causalityv1.Platform{causalityv1.Platform_PLATFORM_IOS, causalityv1.Platform_PLATFORM_IOS,
		causalityv1.Platform_PLATFORM_ANDROID, causalityv1.Platform_PLATFORM_ANDROID, causalityv1.Platform_PLATFORM_WEB}
	screens := []string{"Home", "Search", "Product", "Cart", "Checkout", "Profile"}
	// Ids are UUIDv7-shaped with 74 random bits, as the server assigns
	// them, so they compress no better than real ones.
	rnd := rand.New(rand.NewPCG(1, 2))
	rows := make([]Row, n)
	for i := range rows {
		d := i % 500
		m := d % len(models)
		e := &causalityv1.EventEnvelope{
			Id: fmt.Sprintf("%08x-%04x-7%03x-%04x-%012x", (base+int64(i)*37)>>16, (base+int64(i)*37)&0xffff,
				rnd.IntN(0x1000), 0x8000|rnd.IntN(0x4000), rnd.Int64N(1<<48)),
			AppId:         "shop",
			DeviceId:      fmt.Sprintf("device-%06d", d),
			TimestampMs:   base + int64(i)*37,
			CorrelationId: fmt.Sprintf("sess-%06d-%d", d, i/50),
			DeviceContext: &causalityv1.DeviceContext{
				Platform: platforms[m], OsVersion: []string{"18.1", "17.6", "14", "15", "131"}[m],
				AppVersion: "4.2.0", BuildNumber: "420", DeviceModel: models[m],
				Manufacturer: []string{"Apple", "Apple", "samsung", "Google", ""}[m],
				ScreenWidth:  1080, ScreenHeight: 2400, Locale: "en_US", Timezone: "Europe/Berlin",
				NetworkType: causalityv1.NetworkType(1 + d%6), Carrier: []string{"", "Vodafone", "T-Mobile"}[d%3],
				SdkVersion: "1.8.0",
			},
		}
		switch i % 5 {
		case 0, 1:
			e.Payload = &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{
				ScreenName: screens[i%len(screens)], PreviousScreen: screens[(i+1)%len(screens)],
				Params: map[string]string{"ref": "tab_bar"},
			}}
		case 2:
			e.Payload = &causalityv1.EventEnvelope_ButtonTap{ButtonTap: &causalityv1.ButtonTap{
				ButtonId: "add_to_cart", ButtonText: "Add to cart", ScreenName: "Product",
				Coordinates: &causalityv1.Coordinates{X: float32(i % 390), Y: 612},
			}}
		case 3:
			e.Payload = &causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{
				EventName: "recommendation_shown", StringParams: map[string]string{"slot": "home_top"},
				IntParams: map[string]int64{"position": int64(i % 10)},
			}}
		case 4:
			e.Payload = &causalityv1.EventEnvelope_PurchaseComplete{PurchaseComplete: &causalityv1.PurchaseComplete{
				OrderId: fmt.Sprintf("ord-%08d", i), CartId: fmt.Sprintf("cart-%06d", d), ItemCount: 2,
				TotalCents: 4598, Currency: "EUR", PaymentMethod: "card",
				Items: []*causalityv1.PurchaseItem{
					{ProductId: "sku-1", ProductName: "Mug", Quantity: 1, PriceCents: 1299},
					{ProductId: "sku-2", ProductName: "Tee", Quantity: 1, PriceCents: 3299},
				},
			}}
		}
		rows[i] = FromEnvelope(e, base+int64(i)*37+120)
	}
	return rows
}
