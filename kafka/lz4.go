package kafka

import (
	"bytes"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lz4Compressor is franz-go's lz4 compression with 64 KiB frame blocks
// instead of lz4's default 4 MiB: every pooled writer holds two blocks,
// and with the default the compressors alone took 12 MiB of the agent's
// heap. Batches are at most 1 MiB, so small blocks cost nothing in ratio
// worth measuring. The frame carries no content checksum (an xxHash of
// every byte, 5 % of the agent's CPU in a burst, and as much again for
// each reader that verifies it: Go and librdkafka consumers, and Kafka's
// own reader after 4.1, which skips it): the record batch's own CRC-32C
// already covers the compressed bytes end to end.
type lz4Compressor struct {
	pool sync.Pool
}

func newLz4Compressor() *lz4Compressor {
	c := &lz4Compressor{}
	c.pool.New = func() any {
		w := lz4.NewWriter(nil)
		w.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.CompressionLevelOption(lz4.Fast), lz4.ChecksumOption(false))
		return w
	}
	return c
}

func (c *lz4Compressor) Compress(dst *bytes.Buffer, src []byte, _ ...kgo.CompressFlag) ([]byte, kgo.CompressionCodecType) {
	w := c.pool.Get().(*lz4.Writer)
	defer c.pool.Put(w)
	w.Reset(dst)
	if _, err := w.Write(src); err != nil {
		return nil, kgo.CodecError
	}
	if err := w.Close(); err != nil {
		return nil, kgo.CodecError
	}
	return dst.Bytes(), kgo.CodecLz4
}
