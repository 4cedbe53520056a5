package transfer

import (
	"sync"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// budget keeps the records a session holds — fetched and buffered in the
// Kafka client, or polled and being indexed — within buffer_bytes, counted
// as they sit in memory: decompressed, with each record's own structures.
//
// Kafka's fetch limits count the batches' compressed bytes, and lz4 log
// lines take a tenth of their size or less, so a fixed fetch limit bounds
// nothing. The budget learns from every batch read how many bytes in
// memory one fetched byte becomes (its expansion) and sets the fetch limit
// so that one fetch holds at most half of buffer_bytes: with one fetch in
// flight or buffered (MaxConcurrentFetches(1)) while the previous one is
// indexed, the two stay within buffer_bytes. The expansion only grows
// during a session: a fetch sized for a lower one would overshoot when the
// ratio climbs back.
type budget struct {
	limit int64
	gauge prometheus.Gauge

	mu        sync.Mutex
	cl        *kgo.Client // nil until the client is made
	expansion float64     // memory bytes per fetched byte; 0 until a batch is read
	overhead  int64       // memory per record beyond its bytes on the wire
	buffered  int64       // in the client, not polled yet
	indexing  int64       // polled, not released yet
	peak      int64       // the most held at once
}

// minFetch is the smallest fetch limit the budget sets. Kafka returns at
// least one batch whatever the limit, so a smaller one gains nothing.
const minFetch = 16 << 10

// Memory of a record beyond its key, value and header bytes: the struct,
// the pointer to it in the fetch, and each header's struct.
const (
	recordStruct = int64(unsafe.Sizeof(kgo.Record{})) + int64(unsafe.Sizeof(&kgo.Record{}))
	headerStruct = int64(unsafe.Sizeof(kgo.RecordHeader{}))
)

func newBudget(limit int64, gauge prometheus.Gauge) *budget {
	// Before a record is seen, assume the agent's four headers.
	return &budget{limit: limit, gauge: gauge, overhead: recordStruct + 4*headerStruct}
}

// fetchBytes is the fetch limit for the expansion seen so far: the first
// fetch is the smallest, it only measures.
func (b *budget) fetchBytes() int32 {
	half := b.limit / 2
	if b.expansion == 0 {
		return int32(min(half, minFetch))
	}
	return int32(min(max(int64(float64(half)/b.expansion), minFetch), half, 1<<30))
}

// opts are the client options that size fetches and count the records.
func (b *budget) opts() []kgo.Opt {
	f := b.fetchBytes()
	return []kgo.Opt{
		kgo.FetchMaxBytes(f),
		kgo.FetchMaxPartitionBytes(f),
		kgo.MaxConcurrentFetches(1),
		kgo.WithHooks(b),
	}
}

// setClient lets the budget update the client's fetch limit.
func (b *budget) setClient(cl *kgo.Client) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cl = cl
	b.updateLocked()
}

func (b *budget) updateLocked() {
	if b.cl != nil {
		f := b.fetchBytes()
		b.cl.UpdateFetchMaxBytes(f, f)
	}
}

// OnFetchBatchRead learns the expansion. It runs while the fetch is
// processed, before it is buffered and so before the next fetch is
// issued: that one is sized for this batch already.
func (b *budget) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	if m.CompressedBytes <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e := float64(int64(m.UncompressedBytes)+int64(m.NumRecords)*b.overhead) / float64(m.CompressedBytes)
	if e > b.expansion {
		b.expansion = e
		b.updateLocked()
	}
}

// recordSize is what r holds in memory.
func recordSize(r *kgo.Record) int64 {
	n := recordStruct + int64(len(r.Key)+len(r.Value))
	for _, h := range r.Headers {
		n += headerStruct + int64(len(h.Key)+len(h.Value))
	}
	return n
}

// OnFetchRecordBuffered counts a record the client buffered.
func (b *budget) OnFetchRecordBuffered(r *kgo.Record) {
	n := recordSize(r)
	b.mu.Lock()
	defer b.mu.Unlock()
	if o := n - int64(len(r.Key)+len(r.Value)); o > b.overhead {
		b.overhead = o
	}
	b.buffered += n
	b.setLocked()
}

// OnFetchRecordUnbuffered moves a polled record to the batch being
// indexed; a record the client dropped is no longer held.
func (b *budget) OnFetchRecordUnbuffered(r *kgo.Record, polled bool) {
	n := recordSize(r)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buffered -= n
	if polled {
		b.indexing += n
	}
	b.setLocked()
}

// release forgets polled records: indexed, or dropped at the session's end.
func (b *budget) release(recs []*kgo.Record) {
	var n int64
	for _, r := range recs {
		n += recordSize(r)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.indexing -= n
	b.setLocked()
}

func (b *budget) setLocked() {
	held := b.buffered + b.indexing
	b.peak = max(b.peak, held)
	if b.gauge != nil {
		b.gauge.Set(float64(held))
	}
}

// held returns the bytes held now and the most held at once.
func (b *budget) held() (now, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffered + b.indexing, b.peak
}
