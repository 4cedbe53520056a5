package taillog

import (
	"context"
	"sync"
)

// Roles of a tracker: where its committed offset is saved.
const (
	roleCurrent  = iota // the file the path names now
	roleRotated         // renamed or deleted away, still being read
	roleDetached        // truncated or given up: acks no longer move any offset
)

// tracker follows the lines of one file that are in flight to Kafka and
// commits the offset up to which every line has been acknowledged. Kafka
// acks arrive out of order across partitions; a line's ack only moves the
// committed offset once every earlier line of the file is acked too.
type tracker struct {
	store *Positions
	path  string
	id    FileID
	gen   GenID // the generation's id, saved with the offset
	// fresh: gen was drawn for this tracker, and is not known to be saved
	// yet. Reader goroutine only.
	fresh bool

	mu        sync.Mutex
	role      int
	base      uint64  // sequence number of the oldest line in flight
	ends      []int64 // ring buffer: end offset of each line in flight
	acked     []bool
	checks    []Check // the fingerprint ending at the line's end, if taken (the last line of a batch)
	head, n   int
	committed int64
	check     Check         // of bytes ending at or before committed
	size      int64         // how far the file is known to reach
	idle      chan struct{} // made by wait, closed when nothing is in flight
}

// newTracker follows generation gen of file id from offset; gen 0 means a
// generation the agent has not seen before, which gets a new id.
func newTracker(store *Positions, path string, id FileID, offset int64, role int, gen GenID) *tracker {
	t := &tracker{store: store, path: path, id: id, gen: gen, committed: offset, role: role,
		ends: make([]int64, 64), acked: make([]bool, 64), checks: make([]Check, 64)}
	if gen == 0 {
		t.gen, t.fresh = newGenID(), true
	}
	t.save()
	return t
}

// add registers a line that ends at end (the offset after its terminator)
// and returns its sequence number for ack.
func (t *tracker) add(end int64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == len(t.ends) {
		t.grow()
	}
	i := (t.head + t.n) % len(t.ends)
	t.ends[i], t.acked[i], t.checks[i] = end, false, Check{}
	t.size = max(t.size, end)
	t.n++
	return t.base + uint64(t.n-1)
}

func (t *tracker) grow() {
	ends := make([]int64, 2*len(t.ends))
	acked := make([]bool, 2*len(t.ends))
	checks := make([]Check, 2*len(t.ends))
	for k := 0; k < t.n; k++ {
		j := (t.head + k) % len(t.ends)
		ends[k], acked[k], checks[k] = t.ends[j], t.acked[j], t.checks[j]
	}
	t.ends, t.acked, t.checks, t.head = ends, acked, checks, 0
}

// unadd takes back the last k lines added: they were never sent.
func (t *tracker) unadd(k int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n -= k
	if t.n == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// ack marks line seq as delivered and advances the committed offset over
// the contiguous prefix of delivered lines.
func (t *tracker) ack(seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := int(seq - t.base)
	if seq < t.base || k >= t.n {
		return // acked twice: ignore rather than corrupt the window
	}
	t.acked[(t.head+k)%len(t.ends)] = true
	moved := false
	for t.n > 0 && t.acked[t.head] {
		t.committed = t.ends[t.head]
		if c := t.checks[t.head]; c.Len > 0 {
			t.check = c
		}
		t.acked[t.head] = false
		t.head = (t.head + 1) % len(t.ends)
		t.base++
		t.n--
		moved = true
	}
	if moved {
		t.save()
	}
	if t.n == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// save writes the committed offset where the tracker's role says; mu held.
func (t *tracker) save() {
	pos := FilePos{FileID: t.id, Offset: t.committed, Gen: t.gen, Check: t.check}
	if t.size > t.committed {
		pos.Size = t.size
	}
	switch t.role {
	case roleCurrent:
		t.store.SetCurrent(t.path, pos)
	case roleRotated:
		t.store.SetRotated(t.path, pos)
	}
}

// checkLast attaches c, the fingerprint of the bytes ending where the line
// added last ends: saved with the position once that line is committed.
func (t *tracker) checkLast(c Check) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n > 0 {
		t.checks[(t.head+t.n-1)%len(t.ends)] = c
	}
}

// resume takes over what was saved with the position the tracker starts
// at: its fingerprint (when it lies within what is committed) and size.
func (t *tracker) resume(pos FilePos) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pos.Check.At <= t.committed {
		t.check = pos.Check
	}
	t.size = max(t.size, pos.Size)
	t.save()
}

// sawSize notes that the file reaches size (at a stop).
func (t *tracker) sawSize(size int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.size = max(t.size, size)
	t.save() // also what add noted: add does not save
}

// setRole moves the tracker's saved offset to another place.
func (t *tracker) setRole(role int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.role = role
	t.save()
}

// position returns the committed offset and how many lines are in flight.
func (t *tracker) position() (int64, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.committed, t.n
}

// wait blocks until every line added so far is acked, or ctx is done.
func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
