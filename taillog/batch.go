package taillog

import (
	"sync"
	"sync/atomic"
	"time"
)

// Line is one line (or one piece of an oversized line) read from a file.
// Data excludes the line terminator. Ack must be called once Kafka has
// acknowledged the line; after the last line of its batch is acked, the
// batch, its lines and the bytes Data points into are reused.
type Line struct {
	Offset int64 // byte offset of the line's start in its file
	Data   []byte
	// Skip marks a line that is not to be sent, only acked: the lone
	// terminator of an oversized line already sent in pieces.
	Skip bool

	seq  uint64
	next int64 // offset after the line's terminator
	b    *Batch
}

// Path is the collected path the line was read from.
func (l *Line) Path() string { return l.b.path }

// Topic is the line's Kafka topic.
func (l *Line) Topic() string { return l.b.topic }

// Ack reports the line as delivered: it may move the file's committed
// offset. Once every line of the batch is acked, the batch's share of the
// read budget is freed and the batch is reused: the caller must not touch
// the line, its Data or the batch after Ack.
func (l *Line) Ack() {
	b := l.b
	b.tr.ack(l.seq)
	if b.left.Add(-1) == 0 {
		b.done()
	}
}

// Pin keeps the line's batch and its bytes from being reused after the
// last ack, for a consumer that may still read them (sarama reads a
// message it handed back as failed). Pinned batches are left to the GC.
func (l *Line) Pin() { l.b.pinned.Store(true) }

// Batch is consecutive lines of one file, handed over together. Batches,
// and the read buffers their lines point into, are pooled: the allocation
// per line of the hot path is gone, and with it most of the GC's work.
type Batch struct {
	Lines []Line
	// Read is when its lines were read (the read that took each line's
	// last bytes): their records' timestamp. One clock reading per read,
	// not per line (kgo and sarama read the clock for each record that
	// comes without one).
	Read time.Time
	// File is the id of the file generation the lines were read from:
	// host, File and a line's Offset identify the line.
	File GenID
	// Aux belongs to the consumer: it stays with the batch across reuse,
	// so per-line buffers of the consumer's (messages, headers) hung on it
	// are reused too. If it has a Reset method, recycling calls it: it
	// must drop its references to the lines' bytes.
	Aux any

	path, topic string
	tr          *tracker
	// acked and inFlight count the batch's lines once all are acked: its
	// tailer's and every tailer's.
	acked, inFlight *atomic.Int64
	bud             *topicBudget
	ch              *chunk // the read buffer Data points into (nil: own copy)
	cost            int64  // its share of the read budget
	left            atomic.Int32
	pinned          atomic.Bool
}

var batches = sync.Pool{New: func() any { return new(Batch) }}

func (t *Tailer) newBatch(f *openFile, ch *chunk, read time.Time) *Batch {
	b := batches.Get().(*Batch)
	b.path, b.topic = t.entry.Path, t.entry.Topic
	b.tr, b.acked, b.inFlight, b.bud = f.tr, &t.stats.acked, t.deps.inFlight, t.bud
	b.Read = read
	b.File = f.tr.gen
	if ch != nil {
		ch.refs.Add(1)
	}
	b.ch = ch
	return b
}

func (b *Batch) add(l Line) {
	l.b = b
	b.Lines = append(b.Lines, l)
}

// done runs when the last line is acked.
func (b *Batch) done() {
	n := int64(len(b.Lines))
	b.acked.Add(n)
	b.inFlight.Add(-n)
	b.bud.Release(b.cost)
	if b.pinned.Load() {
		return
	}
	b.recycle()
}

// recycle returns a batch nobody holds any more to the pool.
func (b *Batch) recycle() {
	if b.ch != nil {
		b.ch.release()
	}
	clear(b.Lines) // drop the pointers into the chunk
	aux := b.Aux
	if r, ok := aux.(interface{ Reset() }); ok {
		// The consumer's buffers drop theirs too: a pooled batch must
		// not keep the lines it carried alive.
		r.Reset()
	}
	*b = Batch{Lines: b.Lines[:0], Aux: aux}
	batches.Put(b)
}

// chunk is one read's buffer, shared by the batches cut from it: it goes
// back to its pool when the reader and every batch are done with it.
type chunk struct {
	buf  []byte
	refs atomic.Int32
	pool *sync.Pool // nil: an odd size, left to the GC
}

// Reads start small: most wake-ups of a followed file find a line or two,
// and a thousand idle tailers must not each hold a large buffer. A read
// that fills its buffer means more is waiting, and the next one is large.
// A chunk has room for the read and an unfinished line carried over (a
// slack of an eighth, for a thousand followed files each read from a
// small chunk); a longer carried-over line gets a chunk of its own size.
const (
	smallRead = 4 << 10
	readSize  = 64 << 10
)

var (
	smallChunks = sync.Pool{New: func() any { return &chunk{buf: make([]byte, smallRead+smallRead/8)} }}
	largeChunks = sync.Pool{New: func() any { return &chunk{buf: make([]byte, readSize+readSize/8)} }}
)

// getChunk returns a chunk of at least need bytes for a read of size,
// held once (by the reader).
func getChunk(size, need int) *chunk {
	pool := &smallChunks
	if size > smallRead {
		pool = &largeChunks
	}
	var c *chunk
	if need <= size+size/8 {
		c = pool.Get().(*chunk)
		c.pool = pool
	} else {
		c = &chunk{buf: make([]byte, need)}
	}
	c.refs.Store(1)
	chunksHeld.Add(1)
	return c
}

func (c *chunk) release() {
	if c.refs.Add(-1) != 0 {
		return
	}
	chunksHeld.Add(-1)
	if c.pool != nil {
		c.pool.Put(c)
	}
}

// chunksHeld counts the chunks taken and not yet released: read buffers
// in use, by readers or by batches not yet acked (or pinned: those are
// never released, so it is a test's measure, not a metric).
var chunksHeld atomic.Int64
