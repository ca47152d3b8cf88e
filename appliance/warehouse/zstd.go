package warehouse

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// ZstdCodec is a zstd codec for Parquet pages, made for a process that writes files all day.
//
// parquet-go's own zstd codec keeps its encoders in a pool that the garbage collector
// empties, and each new encoder allocates a 16 MiB history for its default 8 MiB window.
// Under a steady load that meant a large allocation for almost every file the sink cut:
// about 5% of the appliance's CPU went to zeroing that memory and to the scavenger giving it
// back (profile of `causality serve` under `causality bench`, 19k events/s). Here one
// encoder and one decoder live as long as the codec, both safe for concurrent use, with a
// window of 1 MiB: a page is at most parquet-go's 256 KiB page buffer plus its headers, so
// a longer back-reference could never be used anyway.
//
// The output is standard zstd and reads back with any decoder.
type ZstdCodec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// zstdWindow bounds how far back a match may point; see ZstdCodec.
const zstdWindow = 1 << 20

// NewZstdCodec returns a codec at zstd's default level (about level 3), running up to
// concurrency encodes and decodes at a time. The options are fixed, so it fails only if the
// zstd library rejects them, a programming error: it panics then.
func NewZstdCodec(concurrency int) *ZstdCodec {
	concurrency = max(concurrency, 1)
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(concurrency),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithZeroFrames(true),
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		panic(fmt.Sprintf("zstd encoder options: %v", err))
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(concurrency))
	if err != nil {
		panic(fmt.Sprintf("zstd decoder options: %v", err))
	}
	return &ZstdCodec{enc: enc, dec: dec}
}

func (c *ZstdCodec) String() string { return "ZSTD" }

func (c *ZstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (c *ZstdCodec) Encode(dst, src []byte) ([]byte, error) {
	return c.enc.EncodeAll(src, dst[:0]), nil
}

func (c *ZstdCodec) Decode(dst, src []byte) ([]byte, error) {
	return c.dec.DecodeAll(src, dst[:0])
}
