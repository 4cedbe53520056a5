package transfer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logagent/logagent/internal/testenv"
)

// fetchWatch sums what the client read (the ratio the test produced) and
// sends on full when a fetch is buffered whole: its batches are read
// before its records are buffered, and the next fetch waits for a poll.
type fetchWatch struct {
	mu                   sync.Mutex
	compressed, expanded int64
	read, buffered       int
	full                 chan struct{}
}

func (w *fetchWatch) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.compressed += int64(m.CompressedBytes)
	w.expanded += int64(m.UncompressedBytes)
	w.read += m.NumRecords
}

func (w *fetchWatch) OnFetchRecordBuffered(*kgo.Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buffered++; w.buffered == w.read {
		w.full <- struct{}{}
	}
}

// lz4Lines starts a Kafka with total log lines in topic (see produceLz4).
func lz4Lines(t *testing.T, topic string, total int) *testenv.Kafka {
	t.Helper()
	k, err := testenv.StartKafka(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	produceLz4(t, k.Addrs, topic, total)
	return k
}

// produceLz4 writes total log lines to topic, with the agent's headers,
// in lz4 batches of 64 KiB that compress about tenfold.
func produceLz4(t testing.TB, brokers []string, topic string, total int) {
	t.Helper()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.ProducerBatchMaxBytes(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	recs := make([]*kgo.Record, total)
	for i := range recs {
		recs[i] = line(topic, "web-1", "1:2", int64(i)*200, fmt.Sprintf(
			"2026-12-06T09:%02d:%02d.%03dZ INFO request served method=GET path=/api/v1/items/%d status=200 bytes=%d duration_ms=%d referer=\"https://shop.example.com/catalog/index.html\" user_agent=\"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\"",
			i/60000%60, i/1000%60, i%1000, i%997, 1000+i%4000, i%300))
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// The records held — buffered in the client while the previous poll is
// being indexed — stay within buffer_bytes although lz4 shrinks them about
// tenfold on the wire, where Kafka's fetch limits count.
func TestBufferBoundsDecompressedRecords(t *testing.T) {
	const total, limit = 20000, 2 << 20
	k := lz4Lines(t, "lz4_log", total)
	b := newBudget(limit, nil)
	read := &fetchWatch{full: make(chan struct{}, total)}
	cl, err := kgo.NewClient(append(b.opts(), kgo.SeedBrokers(k.Addrs...), kgo.ConsumeTopics("lz4_log"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithHooks(read))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	b.setClient(cl)

	// Each poll is held until the next fetch is buffered whole: the
	// transfer's fullest moment (a fetch buffered while a batch is
	// indexed).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for n, polls, full := 0, 0, 0; n < total; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll after %d records: %v", n, err)
		}
		got := fs.Records()
		n += len(got)
		polls++
		for ; full <= polls && n < total; full++ {
			select {
			case <-read.full:
			case <-ctx.Done():
				t.Fatalf("the fetch after %d records was not buffered", n)
			}
		}
		b.release(got)
	}

	now, peak := b.held()
	read.mu.Lock()
	ratio := float64(read.expanded) / float64(read.compressed)
	read.mu.Unlock()
	b.mu.Lock()
	expansion := b.expansion
	b.mu.Unlock()
	t.Logf("lz4 ratio %.1f, memory per fetched byte %.1f, peak held %d bytes of %d", ratio, expansion, peak, limit)
	if ratio < 5 {
		t.Fatalf("the records compress %.1f×, want a ratio like log lines' (≥5)", ratio)
	}
	if peak > limit {
		t.Errorf("held up to %d bytes of records, want at most buffer_bytes %d", peak, limit)
	}
	if now != 0 {
		t.Errorf("%d bytes still counted as held after every record was released", now)
	}
}
