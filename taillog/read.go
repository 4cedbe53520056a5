package taillog

import (
	"bytes"
	"context"
	"time"
	"unsafe"
)

// Reading: bytes of the held files → lines (framed, oversized lines
// split, multiline records joined) → batches under the read budget, handed
// to the manager's channel; and a file read again from 0 on truncation.

// checkTruncated handles a file that became shorter than what was read:
// copytruncate or a plain truncate. The file is read again from 0.
func (t *Tailer) checkTruncated(ctx context.Context, f *openFile) {
	size, err := f.size()
	if err != nil || size >= f.rd.off {
		return
	}
	t.restartFile(ctx, f, size)
}

// truncated restarts f, which read found no longer holds the bytes last
// read where they were.
func (t *Tailer) truncated(ctx context.Context, f *openFile) {
	size, err := f.size()
	if err != nil {
		size = -1
	}
	t.restartFile(ctx, f, size)
}

// restartFile reads f again from its start: it was truncated.
func (t *Tailer) restartFile(ctx context.Context, f *openFile, size int64) {
	// A record held from the old content is complete: it is sent with
	// the old content's offsets before they are forgotten.
	t.flushRecord(ctx, f, nil)
	t.log.Warn("file truncated; reading it again from the start", "file_id", f.id, "offset", f.rd.off, "size", size)
	t.stats.truncations.Add(1)
	f.restartTracker(t.deps.store, t.entry.Path)
	t.retireHead(f)
	f.rd.restart()
}

// read reads f up to its current end and emits its complete lines. It
// returns the number of bytes read.
func (t *Tailer) read(ctx context.Context, f *openFile) (int64, error) {
	var total int64
	size := smallRead
	for ctx.Err() == nil {
		// Reserve budget before reading: when Kafka is slow the reserve
		// blocks and the file is simply not read further.
		if err := t.bud.Acquire(ctx, int64(size)); err != nil {
			return total, nil
		}
		have, back := len(f.rd.pending), f.rd.lastLen
		c := getChunk(size, lookBack+have+size)
		buf := c.buf[:cap(c.buf)]
		copy(buf[lookBack:], f.rd.pending)
		// One pread takes the new bytes and, just before them, the last
		// bytes read (the end of pending, when there is one: the same
		// bytes). If those are no longer there, the file was truncated,
		// perhaps written past readOff again since (copytruncate, within
		// one read delay or between two reads of a busy file), which its
		// size alone would not show. One system call for both: it was a
		// pread and a read, and a fstat after every empty read.
		n, err := f.pread(buf[lookBack+have-back:lookBack+have+size], f.rd.off-int64(back))
		if err == nil && back > 0 && (n < back || !bytes.Equal(buf[lookBack+have-back:lookBack+have], f.rd.last[:back])) {
			c.release()
			t.bud.Release(int64(size))
			if !f.rd.lastGone(f.f) {
				// A short read that was not the file's end (some
				// network and FUSE file systems): read again later.
				return total, nil
			}
			t.truncated(ctx, f)
			continue // read again, from 0
		}
		n -= back
		if n <= 0 {
			c.release()
			t.bud.Release(int64(size))
			return total, err
		}
		// The lines' read time, their records' timestamp: taken once the
		// read found data, not as each batch is cut from it, since cutting
		// the next one may wait for the budget (Kafka down) as long as it
		// is down.
		read := time.Now()
		total += int64(n)
		t.stats.bytesRead.Add(int64(n))
		start := f.rd.off - int64(have)
		f.rd.off += int64(n)
		f.rd.remember(buf[lookBack+have-back : lookBack+have+n])
		data := buf[lookBack : lookBack+have+n]
		if len(f.head) < headBytes {
			t.keepHead(f, data, start)
		}
		complete := f.rd.lines.complete(data, t.deps.opts.MaxLineBytes)
		f.rd.pending = append(f.rd.pending[:0], data[complete:]...)
		f.rd.pendingRead = read
		lines, in := data[:complete], c
		if complete < len(c.buf)/4 {
			// A few lines in a large buffer (a followed file, woken per
			// write): they get an exact copy, and the buffer goes back
			// now, not when Kafka acks them nor after a wait to hand
			// them over (a thousand files woken at once would each hold
			// one meanwhile).
			lines, in = append([]byte(nil), lines...), nil
			c.release()
		}
		t.emit(ctx, f, in, lines, start, int64(size), read)
		if in != nil {
			c.release() // the batches cut from it hold it now
		}
		if n < size {
			// A short read of a regular file: its end, for now.
			return total, nil
		}
		size = readSize
	}
	return total, nil
}

// DefaultLineOverhead is Options.LineOverhead when it is not set: a
// generous bound of what a line's bookkeeping costs.
const DefaultLineOverhead = 1024

// LineBytes is the size of a Line: a part of any LineOverhead.
const LineBytes = int64(unsafe.Sizeof(Line{}))

// emit sends the lines of data, which ends at a line's end or a
// max_line_bytes piece (see splitter.complete), starts at file offset base and
// lies in chunk c (nil: in memory of its own). It splits lines longer than
// MaxLineBytes. It takes over reserved, budget acquired
// before the read: what the lines do not use is released, and what they
// need beyond it is acquired batch by batch, so that a read of many short
// lines never asks for more than the whole budget at once. read is when
// data was read: the timestamp of its lines.
func (t *Tailer) emit(ctx context.Context, f *openFile, c *chunk, data []byte, base int64, reserved int64, read time.Time) {
	maxLine := t.deps.opts.MaxLineBytes
	held := reserved
	limit := max(reserved, min(groupBytes, t.deps.opts.BufferBytes/4))
	var b *Batch
	p := 0 // where the next line starts in data: b's lines end there
	ml := t.joiner(f)
	var recEnd []byte // with ml: the bytes b's last record ends with in the file
	// flush sends b, first acquiring what it costs beyond what is held.
	// Once sent, b belongs to the consumer: its cost is read before.
	flush := func() bool {
		cost := b.cost
		if cost > held {
			// Nothing is held while waiting: readers that each kept their
			// reservation while asking for more could hold the whole
			// budget between them, with nothing in flight to free it.
			t.bud.Release(held)
			held = 0
			if err := t.bud.Acquire(ctx, cost); err != nil {
				return false
			}
			held = cost
		}
		var c Check
		if ml == nil {
			c = checkOf(data[:p], base+int64(p))
		} else {
			c = checkOf(recEnd, b.Lines[len(b.Lines)-1].next)
		}
		if !t.send(ctx, f, b, c) {
			return false
		}
		held -= cost
		b = nil
		return true
	}
	// add puts l, which takes n bytes of data, into b.
	add := func(l Line, n int) bool {
		cost := int64(n) + t.deps.opts.LineOverhead
		if b != nil && b.cost+cost > limit {
			if !flush() {
				return false
			}
		}
		if b == nil {
			b = t.newBatch(f, c, read)
		}
		b.add(l)
		b.cost += cost
		return true
	}
	for p < len(data) {
		line, end, skip, first := f.rd.lines.next(data, p, maxLine)
		if first {
			t.stats.oversized.Add(1)
			t.log.Warn("line longer than max_line_bytes; sent in pieces", "offset", base+int64(p), "max_line_bytes", maxLine)
		}
		l := Line{Offset: base + int64(p), Data: line, Skip: skip, next: base + int64(end)}
		if ml != nil {
			if !t.frame(ml, data, p, end, l, add, &recEnd, read) {
				break
			}
		} else if !add(l, end-p) {
			break
		}
		p = end
	}
	if b != nil && len(b.Lines) > 0 && ctx.Err() == nil {
		flush()
	}
	if ml != nil {
		ml.detach(data)
	}
	if b != nil {
		// Not sent (stopping): never acked, its offsets never committed.
		b.recycle()
	}
	t.bud.Release(held)
}

// groupBytes bounds the budget one batch of lines acquires at once.
const groupBytes = 256 << 10

// flushPending sends an unfinished last line of a file that will not grow
// again, and the multiline record it ends.
func (t *Tailer) flushPending(ctx context.Context, f *openFile) {
	data, at := f.rd.takePending()
	if t.joiner(f) != nil {
		t.flushRecord(ctx, f, data)
		return
	}
	t.sendOwn(ctx, f, []Line{{Offset: at, Data: data, next: f.rd.off}}, checkOf(data, f.rd.off), f.rd.pendingRead)
}

// sendOwn sends lines in memory of their own, c being the fingerprint at
// the last one's end.
func (t *Tailer) sendOwn(ctx context.Context, f *openFile, lines []Line, c Check, read time.Time) {
	var cost int64
	for _, l := range lines {
		cost += int64(len(l.Data)) + t.deps.opts.LineOverhead
	}
	if err := t.bud.Acquire(ctx, cost); err != nil {
		return
	}
	b := t.newBatch(f, nil, read)
	for _, l := range lines {
		b.add(l)
	}
	b.cost = cost
	if !t.send(ctx, f, b, c) {
		t.bud.Release(cost)
		b.recycle()
	}
}

// send registers the batch's lines with the file's tracker, c (the
// fingerprint of the bytes before the batch's end) with its last line, and
// hands the batch over. If the tailer stops first, the lines are taken
// back (they were never sent) and send reports false; the caller keeps the
// budget to release and the batch.
func (t *Tailer) send(ctx context.Context, f *openFile, b *Batch, c Check) bool {
	if f.tr.fresh {
		// The first lines of a new generation: its id is saved before
		// any line carries it, so that a crash cannot give the lines sent
		// again another id. A failed save is retried by the flush loop,
		// which logs it; the lines are sent all the same.
		_ = t.deps.store.Sync()
		f.tr.fresh = false
	}
	for i := range b.Lines {
		b.Lines[i].seq = f.tr.add(b.Lines[i].next)
	}
	f.tr.checkLast(c)
	n := len(b.Lines)
	b.left.Store(int32(n))
	t.stats.linesRead.Add(int64(n))
	t.deps.inFlight.Add(int64(n))
	select {
	case t.deps.out <- b:
		return true
	case <-ctx.Done():
		t.stats.linesRead.Add(-int64(n))
		t.deps.inFlight.Add(-int64(n))
		f.tr.unadd(n)
		return false
	}
}
