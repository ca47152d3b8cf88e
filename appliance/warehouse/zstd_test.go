package warehouse

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

func TestZstdCodecRoundTrip(t *testing.T) {
	c := NewZstdCodec(2)
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 300_000)
	for i := range noise {
		noise[i] = byte(rng.UintN(256))
	}
	inputs := map[string][]byte{
		"empty":     nil,
		"short":     []byte("screen_view"),
		"repeats":   bytes.Repeat([]byte(`{"screen":"home","ms":120}`), 20_000), // 520 KB
		"noise":     noise,
		"over 1MiB": bytes.Repeat(noise[:1000], 1500),
	}
	plain, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for name, in := range inputs {
		enc, err := c.Encode(nil, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Standard zstd: another decoder reads it, not only ours.
		got, err := plain.DecodeAll(enc, nil)
		if err != nil || !bytes.Equal(got, in) {
			t.Errorf("%s: plain decoder: err %v, %d bytes back of %d", name, err, len(got), len(in))
		}
		got, err = c.Decode(make([]byte, 10), enc)
		if err != nil || !bytes.Equal(got, in) {
			t.Errorf("%s: codec decoder: err %v, %d bytes back of %d", name, err, len(got), len(in))
		}
	}
	if enc, _ := c.Encode(nil, inputs["repeats"]); len(enc) > len(inputs["repeats"])/100 {
		t.Errorf("repetitive input compressed to %d bytes of %d", len(enc), len(inputs["repeats"]))
	}
	if c.CompressionCodec() != format.Zstd {
		t.Errorf("codec id %v", c.CompressionCodec())
	}
}

func TestZstdCodecConcurrent(t *testing.T) {
	c := NewZstdCodec(2)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			in := bytes.Repeat([]byte{byte(g), 'x', byte(g * 7)}, 50_000+g)
			for range 20 {
				enc, err := c.Encode(nil, in)
				if err != nil {
					t.Error(err)
					return
				}
				out, err := c.Decode(nil, enc)
				if err != nil || !bytes.Equal(out, in) {
					t.Errorf("goroutine %d: err %v, round trip differs", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The reason the codec exists: encoding a page must not allocate a fresh history each
// time, as parquet-go's pooled codec does once the garbage collector has emptied its pool.
func TestZstdCodecReusesItsEncoder(t *testing.T) {
	c := NewZstdCodec(1)
	page := bytes.Repeat([]byte("event_category=screen;event_type=view;"), 6000) // 228 KB
	dst, _ := c.Encode(nil, page)
	var before, after runtime.MemStats
	runtime.GC() // what parquet-go's pool loses here, this codec keeps
	runtime.ReadMemStats(&before)
	for range 50 {
		dst, _ = c.Encode(dst, page)
		runtime.GC()
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("50 page encodes allocated %d bytes; the encoder's history should be reused", grew)
	}
}

func TestZstdCodecWritesReadableParquet(t *testing.T) {
	rows := sampleRows(500)
	var buf bytes.Buffer
	if err := WriteParquet(&buf, rows, EncodeOptions{Compression: NewZstdCodec(1)}); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range f.Metadata().RowGroups {
		for _, cc := range rg.Columns {
			if cc.MetaData.Codec != format.Zstd {
				t.Fatalf("column %v uses %v", cc.MetaData.PathInSchema, cc.MetaData.Codec)
			}
		}
	}
	got, err := parquet.Read[Row](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("read %d rows, wrote %d", len(got), len(rows))
	}
	for i := range rows {
		if got[i].ID != rows[i].ID || got[i].PayloadJSON != rows[i].PayloadJSON {
			t.Fatalf("row %d differs: %+v against %+v", i, got[i], rows[i])
		}
	}
}
