package taillog

import (
	"context"
	"sync/atomic"
	"time"
)

// Read pacing: when a tailer's reader reads. A busy file is read as it is
// written; a trickling one gathers lines (max_read_delay), woken by inotify
// through the watcher, so that one read carries many lines.

// pacer owns a tailer's wake-ups: the channels that wake its watcher and
// its reader, the timers the reader waits on, and what the inotify
// goroutine and the manager's poller note for the reader. The watcher
// (watch.go) and the poller talk to the pacer, not to the tailer.
type pacer struct {
	path     string        // the tailed path: the watcher finds the pacer by its name
	maxDelay time.Duration // MaxReadDelay
	// unread tells what the current file holds beyond what was read
	// (Tailer.unread): the inotify goroutine asks, for the first write
	// while the reader waits (watcher.written).
	unread func() int

	wake     chan struct{} // pokes the watcher
	readWake chan struct{} // pokes the reader
	hurry    chan struct{} // cuts a read delay short: the file is busy
	// gather ends a gather that a write's event started while the reader
	// waited (watcher.awaitWrite); reset by the inotify goroutine.
	gather     *time.Timer
	writes     atomic.Int32 // write events since the reader last read
	evented    atomic.Bool  // an inotify event came since the last poll
	unchecked  int          // polls that skipped the path check (poller only)
	hasRotated atomic.Bool  // rotated files are held: each event may be theirs
	recordDue  atomic.Bool  // a held multiline record's timeout passed

	sleepTimer *time.Timer // the reader's own waits (sleep), made at the first
}

func newPacer(path string, maxDelay time.Duration, unread func() int) *pacer {
	p := &pacer{path: path, maxDelay: maxDelay, unread: unread, wake: make(chan struct{}, 1),
		readWake: make(chan struct{}, 1), hurry: make(chan struct{}, 1), gather: time.NewTimer(time.Hour)}
	p.gather.Stop()
	return p
}

// poke wakes the reader, and the watcher too when the path may name
// another file now.
func (p *pacer) poke(pathChanged bool) {
	if pathChanged {
		p.check()
	}
	p.wakeReader()
}

// check wakes the watcher only: the path is looked at again.
func (p *pacer) check() { signal(p.wake) }

// wakeReader wakes the reader only.
func (p *pacer) wakeReader() { signal(p.readWake) }

// written wakes the reader for a write to the file. Writes are counted: a
// file that is written hurryWrites times while its reader waits to gather
// lines is busy, and is read at once.
func (p *pacer) written() {
	p.countWrite()
	p.poke(false)
}

// countWrite counts a write event; the hurryWrites-th ends the reader's
// gathering wait.
func (p *pacer) countWrite() {
	p.evented.Store(true)
	if p.writes.Add(1) == hurryWrites {
		p.hurryUp()
	}
}

// hurryUp ends the reader's gathering wait.
func (p *pacer) hurryUp() { signal(p.hurry) }

// signal sends on ch, a channel of one slot, unless a wake-up is already
// there: one pending wake-up stands for any number.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// reading notes that the reader reads: every write counted so far, and a
// held record's timeout, are for what it reads.
func (p *pacer) reading() {
	p.writes.Store(0)
	p.recordDue.Store(false)
}

// sleep waits d, or until wake or the end (reader goroutine).
func (p *pacer) sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	if p.sleepTimer == nil {
		p.sleepTimer = time.NewTimer(d)
	} else {
		p.sleepTimer.Reset(d)
	}
	select {
	case <-ctx.Done():
	case <-p.sleepTimer.C:
	case <-wake:
	}
	woken()
}

// stopSleep releases the reader's timer: the reader ends.
func (p *pacer) stopSleep() {
	if p.sleepTimer != nil {
		p.sleepTimer.Stop()
	}
}

// hurryWrites is how many write events end a read delay early. inotify
// merges the writes to a file between two reads of its queue (every
// notifyPace, 5 ms, or 25 ms with many files written) into one event, so a
// file written without pause is read after 80–400 ms, not after
// MaxReadDelay (one found to append readGather bytes per read is read at
// once anyway); ten writes a second, each an event, are gathered for
// MaxReadDelay.
const hurryWrites = 16

func (t *Tailer) readLoop(ctx context.Context) {
	defer t.done.Done()
	p := t.pace
	defer p.stopSleep()
	var lastData time.Time // when a step last read something (zero: never)
	d := p.maxDelay        // the wait before the next read
	for ctx.Err() == nil {
		select {
		case <-p.hurry:
		default:
		}
		// Wake-ups so far are for what this step reads: the writes
		// that came during a read delay would otherwise wake the reader
		// again at once, for a look at the size that finds nothing new.
		if h := testHookBeforeDrain.Load(); h != nil {
			(*h)()
		}
		select {
		case <-p.readWake:
			if ctx.Err() != nil {
				// It was stop's: it cancels, then pokes.
				return
			}
		default:
		}
		// A step that reads nothing (a poll, or a wake-up for bytes an
		// earlier read already took) says nothing of the file's rate.
		busy := false // the step read, and the file is busy
		if n := t.readStep(ctx); n > 0 {
			now := time.Now()
			if lastData.IsZero() {
				d = p.maxDelay
			} else {
				d = readDelay(n, now.Sub(lastData), p.maxDelay)
			}
			lastData = now
			// With no read delay (max_read_delay = 0) every delay is
			// 0: only the amount read tells a busy file.
			busy = n >= readGather || (p.maxDelay > 0 && d < busyBelow)
		}
		if busy {
			// A busy file is read again after its read delay (at least
			// busyPace), not only once inotify says (its queue is read
			// every notifyPace): the reader keeps up with the writer,
			// which keeps copytruncate's window (lines written after
			// the copy, and lines not yet read when the file is
			// truncated) small.
			p.sleep(ctx, max(d, busyPace), p.readWake)
			continue
		}
		t.untilReadable(ctx, d, lastData)
	}
}

// untilReadable waits, once a step found the file quiet, until there is
// something to read (or a held record to send, or the end): a wake-up
// for bytes a read already took is waited past; a trickling file gathers
// for d (its read delay; lastData is when a step last read data).
func (t *Tailer) untilReadable(ctx context.Context, d time.Duration, lastData time.Time) {
	p := t.pace
	for {
		if f := t.latest(); p.maxDelay > 0 && f != nil && f.local && !p.hasRotated.Load() &&
			t.deps.watch.awaitWrite(p, d, lastData) {
			// The file's next write starts its gather, without waking
			// this reader: the inotify goroutine sets the gather timer
			// (or sends hurry to read at once). readWake is a poll, a
			// rotation, stop, or a write that came before this wait.
			poked := false
			select {
			case <-p.gather.C:
			case <-p.hurry:
			case <-p.readWake:
				poked = true
			}
			woken()
			gathering := t.deps.watch.awoken(p)
			p.gather.Stop()
			if !poked || gathering {
				return
			}
			// Poked before any write started a gather: look as the
			// reader woken by a write does.
		} else {
			<-p.readWake
			woken()
		}
		if ctx.Err() != nil || p.recordDue.Load() {
			return // the end; or a held record's timeout: step sends it
		}
		if d <= 0 || time.Since(lastData) > p.maxDelay {
			// Busy, or quiet for a while: the first line after a pause
			// is read at once, its rate unknown.
			return
		}
		switch t.unread() {
		case unreadNone:
			// A wake-up for bytes already read: nothing to gather, and
			// no wait during which a truncation could go unseen.
			continue
		case unreadNow:
			return
		}
		// Let a trickling file gather a few lines: one read (and one
		// batch, one wake-up of the pump) for many lines, not one each.
		p.sleep(ctx, d, p.hurry)
		return
	}
}

// readStep is what the read loop does each time it reads: every write
// counted so far is for what it reads.
func (t *Tailer) readStep(ctx context.Context) int64 {
	t.pace.reading()
	return t.step(ctx)
}

// testHookBeforeDrain, if set, runs before the read loop drains readWake.
var testHookBeforeDrain atomic.Pointer[func()]

// isLocalFS is localFS; a test stands in a network file system.
var isLocalFS = localFS

// testHookWoken, if set, runs each time a reader's wait ends.
var testHookWoken atomic.Pointer[func()]

func woken() {
	if h := testHookWoken.Load(); h != nil {
		(*h)()
	}
}

// A file whose read delay is under busyBelow (slowPace) is busy: it is
// read again after that delay, at least busyPace, without waiting for
// inotify.
const (
	busyBelow = 25 * time.Millisecond
	busyPace  = 5 * time.Millisecond
)

// What the current file holds beyond what was read, once a write woke
// the reader.
const (
	unreadNone   = iota // nothing: the wake-up was for bytes already read
	unreadGather        // a little: wait for more
	unreadNow           // plenty (readGather), less than was read (truncated), or unknown
)

// unread looks at the current file's size (one fstat): the reader's, once
// woken by a write; or the inotify goroutine's, for the first write while
// the reader waits (watcher.written).
func (t *Tailer) unread() int {
	f := t.latest()
	if f == nil || t.pace.hasRotated.Load() {
		return unreadNow // rotated files too: their tails are read, they are closed
	}
	size, err := f.size()
	switch {
	case err != nil || size < f.rd.off || size-f.rd.off >= readGather:
		return unreadNow
	case size == f.rd.off:
		return unreadNone
	}
	return unreadGather
}

// readGather is how much a file should have appended before it is read,
// when waiting for it takes less than MaxReadDelay: about 40 access-log
// lines, enough to spread a read's fixed costs (the wake-up, the syscall,
// the hand-over to the pump) thin.
const readGather = 4 << 10

// readDelay is how long to wait, once woken, before reading a file that
// appended n > 0 bytes over the last interval: the time the file takes at
// that rate to append readGather bytes, at most max. A busy file is read
// again at once; a quiet one waits max, so no line waits longer than max.
func readDelay(n int64, interval, max time.Duration) time.Duration {
	if max <= 0 || n >= readGather {
		return 0
	}
	// In float64: interval × readGather overflows int64 for long intervals.
	d := float64(interval) * readGather / float64(n)
	if d >= float64(max) {
		return max
	}
	return time.Duration(d)
}
