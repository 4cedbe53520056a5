package taillog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Entry is one file to collect and the topic its lines go to.
type Entry struct {
	Path     string
	Topic    string
	ReadFrom string // "", "end" or "beginning": where a file that already exists starts
	// Glob is the entry's path pattern when Path is one of its matches
	// (globs.go); Exclude removes matches.
	Glob    string
	Exclude []string
	// Multiline joins lines into records (multiline.go); nil: one per line.
	Multiline *Multiline
}

// Tailer states, as reported in Status.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateWaiting  = "waiting-for-file"
	StateError    = "error"
)

// openFile is one open generation of the tailed path.
type openFile struct {
	f    *os.File
	id   FileID
	tr   *tracker   // written by the reader only, under trMu
	trMu sync.Mutex // tr's role against the watcher's supersede

	// superseded is set once the path no longer names this file: it is
	// read until it has not grown for RotateWait, then closed.
	superseded atomic.Bool
	lastGrowth atomic.Int64 // unix nanoseconds

	// local: on a local file system (localFS), set at open; a reader
	// waiting for this file's writes lets the inotify goroutine look at
	// its size only then.
	local bool

	// Owned by the reader goroutine.
	readOff int64  // offset of the next byte to read from f
	pending []byte // bytes of an unfinished line, starting at readOff-len(pending)
	// pendingRead is when pending's last bytes were read: its record's
	// timestamp if it is sent unfinished (flushPending).
	pendingRead time.Time
	// splitting is set while the pieces of an oversized line are sent.
	splitting bool
	// last holds the bytes just before readOff (up to lookBack): each
	// read starts with them, and if the file no longer has them there it
	// was truncated, and perhaps written past readOff again.
	last    [lookBack]byte
	lastLen int

	// head is the generation's first bytes (head.go): written by the
	// reader under Tailer.headMu.
	head []byte

	// ml frames lines into records when the entry has a multiline rule
	// (reader goroutine; made at the first emit).
	ml *joiner
}

// lookBack is how many of the bytes last read each read reads again.
const lookBack = 32

// remember notes the end of what was just read, data ending at readOff.
func (f *openFile) remember(data []byte) {
	f.lastLen = copy(f.last[:], data[max(0, len(data)-len(f.last)):])
}

// lastGone confirms what a read suggested: the bytes last read are no
// longer where they were. ReadAt reads on after a short read, to the
// file's end; it runs only when a read found them gone.
func (f *openFile) lastGone() bool {
	var b [lookBack]byte
	n, err := f.f.ReadAt(b[:f.lastLen], f.readOff-int64(f.lastLen))
	if err != nil && !errors.Is(err, io.EOF) {
		return false // not known (an I/O error): the next read tells
	}
	return n < f.lastLen || !bytes.Equal(b[:n], f.last[:f.lastLen])
}

// testHookPread, if set, stands in for pread(2).
var testHookPread atomic.Pointer[func(f *openFile, b []byte, off int64) (int, error)]

// size is the file's size: one fstat(2), nothing allocated (os.File.Stat
// allocates a FileInfo, and a followed file's size is looked at on every
// wake-up).
func (f *openFile) size() (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.f.Fd()), &st); err != nil {
		return 0, &fs.PathError{Op: "stat", Path: f.f.Name(), Err: err}
	}
	return st.Size, nil
}

// pread is one pread(2) at off: unlike os.File.ReadAt, a short read (the
// file's end, for now) costs one system call, not a second that finds 0.
func (f *openFile) pread(b []byte, off int64) (int, error) {
	if h := testHookPread.Load(); h != nil {
		return (*h)(f, b, off)
	}
	for {
		n, err := syscall.Pread(int(f.f.Fd()), b, off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: f.f.Name(), Err: err}
		}
		return n, nil
	}
}

// supersede marks the file as no longer named by the path (watcher
// goroutine). Its tracker turns rotated: trMu keeps this from racing with
// the reader's new tracker after a truncation.
func (f *openFile) supersede() {
	f.lastGrowth.Store(time.Now().UnixNano())
	f.trMu.Lock()
	f.tr.setRole(roleRotated)
	f.superseded.Store(true)
	f.trMu.Unlock()
}

// restartTracker gives the file a new tracker from offset 0 (reader
// goroutine, on truncation): acks still due for the old content must not
// move the new content's offset. The new one takes the file's role.
func (f *openFile) restartTracker(store *Positions, path string) {
	f.trMu.Lock()
	defer f.trMu.Unlock()
	f.tr.setRole(roleDetached)
	role := roleCurrent
	if f.superseded.Load() {
		role = roleRotated
	}
	f.tr = newTracker(store, path, f.id, 0, role, 0) // new content, a new generation
}

// Tailer follows one path: it reads every line of every file the path
// names over time, across rotation and truncation, and hands the lines to
// the manager's channel.
//
// Two goroutines share the work. The watcher goroutine notices at once
// when the path names a new file and opens it, so the file is held even if
// it is rotated away again before it is read. The reader goroutine reads
// the held files oldest first, each to its end, and may block when Kafka
// is slow; the watcher never blocks on Kafka.
//
// It owns its read loop rather than using nxadm/tail's, which (v1.4.11)
// reopens a moved file without reading the unread end of the old one,
// sends a final line without newline in two pieces, and calls Seek for
// every line to learn its offset.
type Tailer struct {
	entry Entry
	m     *Manager
	bud   *topicBudget // its topic's share of the read budget
	log   *slog.Logger

	wake     chan struct{} // pokes the watcher
	readWake chan struct{} // pokes the reader
	hurry    chan struct{} // cuts a read delay short: the file is busy
	// gather ends a gather that a write's event started while the reader
	// waited (watcher.awaitWrite); reset by the inotify goroutine.
	gather     *time.Timer
	writes     atomic.Int32 // write events since the reader last read
	evented    atomic.Bool  // an inotify event came since the last poll
	unchecked  int          // polls that skipped the path check (poller only)
	hasRotated atomic.Bool
	recordDue  atomic.Bool // a held multiline record's timeout passed
	cancel     context.CancelFunc
	done       sync.WaitGroup
	stopOnce   sync.Once

	mu    sync.Mutex
	files []*openFile // oldest first; the last is the path's current file unless superseded

	// Owned by the watcher goroutine.
	opened   bool      // a file has been opened at least once
	lastOpen time.Time // when the newest generation was opened
	seen     map[FileID]bool
	missing  bool // the path was seen naming nothing

	// headMu guards the files' heads and heads, the heads of generations
	// no longer held (head.go).
	headMu sync.Mutex
	heads  [][]byte

	stats tailerStats
}

type tailerStats struct {
	mu        sync.Mutex
	state     string
	lastError string
	refused   bool // lastError is an allow_paths refusal

	linesRead, acked, bytesRead, rotations, truncations, oversized atomic.Int64
	recordsSplit                                                   atomic.Int64 // multiline records ended by max_lines/max_bytes
	lostBytes                                                      atomic.Int64 // of files deleted while stopped
}

func newTailer(m *Manager, e Entry) *Tailer {
	t := &Tailer{entry: e, m: m, bud: m.budget.topic(e.Topic), wake: make(chan struct{}, 1), readWake: make(chan struct{}, 1),
		hurry: make(chan struct{}, 1), gather: time.NewTimer(time.Hour),
		log: m.log.With("path", e.Path, "topic", e.Topic)}
	t.gather.Stop()
	t.stats.state = StateStarting
	return t
}

// poke wakes the reader, and the watcher too when the path may name
// another file now.
func (t *Tailer) poke(pathChanged bool) {
	if pathChanged {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	select {
	case t.readWake <- struct{}{}:
	default:
	}
}

// written wakes the reader for a write to the file. Writes are counted: a
// file that is written hurryWrites times while its reader waits to gather
// lines is busy, and is read at once.
func (t *Tailer) written() {
	t.countWrite()
	t.poke(false)
}

// countWrite counts a write event; the hurryWrites-th ends the reader's
// gathering wait.
func (t *Tailer) countWrite() {
	t.evented.Store(true)
	if t.writes.Add(1) == hurryWrites {
		t.hurryUp()
	}
}

// hurryUp ends the reader's gathering wait.
func (t *Tailer) hurryUp() {
	select {
	case t.hurry <- struct{}{}:
	default:
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

// following tells whether the tailer is reading the file its path named
// when last looked at.
func (t *Tailer) following() bool {
	t.stats.mu.Lock()
	running := t.stats.state == StateRunning
	t.stats.mu.Unlock()
	return running && t.latest() != nil
}

// check wakes the watcher only: the path is looked at again.
func (t *Tailer) check() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *Tailer) setState(state, errText string) {
	t.stats.mu.Lock()
	t.stats.state, t.stats.lastError, t.stats.refused = state, errText, false
	t.stats.mu.Unlock()
}

func (t *Tailer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	t.restoreRotated()
	t.reconcileSaved()
	t.noteStart()
	t.m.watch.add(t)
	t.done.Add(2)
	go t.watchLoop(ctx)
	go t.readLoop(ctx)
}

// noteStart takes where reading starts in a file that exists when its
// entry first appears: its end now, not when it can first be opened (#23:
// an unreadable file, made readable once lines were appended, lost them).
// A stat needs no read permission. The offset is saved as the file's
// position, which open takes as any saved offset, also after a restart.
// A path that cannot be stat'ed, or names no regular file, names a file
// that appears later: read from its beginning.
func (t *Tailer) noteStart() {
	if t.entry.ReadFrom == "beginning" {
		return
	}
	if _, ok := t.m.store.Get(t.entry.Path); ok {
		return // not the entry's first appearance: its saved position wins
	}
	fi, err := statEntry(t.entry.Path)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	t.m.store.SetCurrent(t.entry.Path, FilePos{FileID: fileID(fi), Offset: fi.Size()})
	t.log.Info("file exists; reading starts at its end as it is now", "file_id", fileID(fi), "offset", fi.Size())
}

// statEntry and openEntry look at and open an entry's path (variables
// for the tests of a failing stat and open: the tests run as root).
var (
	statEntry = os.Stat
	openEntry = openRegular
)

// stop stops reading, waits (bounded by ctx) until every line read so far
// is acknowledged, and closes the files. Safe to call twice.
func (t *Tailer) stop(ctx context.Context, handover bool) {
	t.stopOnce.Do(func() {
		t.cancel()
		t.poke(true)
		t.done.Wait()
		t.m.watch.remove(t)
		for _, f := range t.files {
			if err := f.tr.wait(ctx); err != nil {
				_, n := f.tr.position()
				t.log.Warn("stopped before Kafka acknowledged every line read; they are sent again on the next start",
					"in_flight", n, "file_offset", f.readOff)
				if handover {
					// Their late acks must not move the saved offset: a
					// successor (the entry's topic changed) owns it now
					// and reads them again from it.
					f.tr.setRole(roleDetached)
				}
			}
		}
		for _, f := range t.files {
			if f.ml != nil {
				f.ml.stop()
			}
			// How far the file reaches is what a deletion while stopped
			// would lose (reconcileSaved).
			if size, err := f.size(); err == nil {
				f.tr.sawSize(size)
			}
			f.f.Close()
		}
		// Under mu: the manager's poller may still ask following().
		t.mu.Lock()
		t.files = nil
		t.mu.Unlock()
	})
}

func (t *Tailer) snapshot() []*openFile {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*openFile(nil), t.files...)
}

func (t *Tailer) remove(f *openFile) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, g := range t.files {
		if g == f {
			t.files = append(t.files[:i], t.files[i+1:]...)
			break
		}
	}
	t.hasRotated.Store(len(t.files) > 1 || (len(t.files) == 1 && t.files[0].superseded.Load()))
}

// watchLoop and readLoop wait on a plain channel receive: the manager's
// poller pokes every tailer each PollInterval (the safety net for missed
// inotify events), so no loop needs a timer of its own, and stop pokes
// them after cancelling.
func (t *Tailer) watchLoop(ctx context.Context) {
	defer t.done.Done()
	for ctx.Err() == nil {
		t.checkPath()
		<-t.wake
	}
}

func (t *Tailer) readLoop(ctx context.Context) {
	defer t.done.Done()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	// sleep waits d, or until wake or the end.
	sleep := func(d time.Duration, wake <-chan struct{}) {
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
		case <-timer.C:
		case <-wake:
		}
		woken()
	}
	var lastData time.Time // when a step last read something (zero: never)
	maxDelay := t.m.opts.MaxReadDelay
	d := maxDelay // the wait before the next read
	busy := false // the last step read, and the file is busy
	for ctx.Err() == nil {
		select {
		case <-t.hurry:
		default:
		}
		// Wake-ups so far are for what this step reads: the writes
		// that came during a read delay would otherwise wake the reader
		// again at once, for a look at the size that finds nothing new.
		if h := testHookBeforeDrain.Load(); h != nil {
			(*h)()
		}
		select {
		case <-t.readWake:
			if ctx.Err() != nil {
				// It was stop's: it cancels, then pokes.
				return
			}
		default:
		}
		// A step that reads nothing (a poll, or a wake-up for bytes an
		// earlier read already took) says nothing of the file's rate.
		if n := t.readStep(ctx); n > 0 {
			now := time.Now()
			if lastData.IsZero() {
				d = maxDelay
			} else {
				d = readDelay(n, now.Sub(lastData), maxDelay)
			}
			lastData = now
			// With no read delay (max_read_delay = 0) every delay is
			// 0: only the amount read tells a busy file.
			busy = n >= readGather || (maxDelay > 0 && d < busyBelow)
		} else {
			busy = false
		}
	wait:
		if busy {
			// A busy file is read again after its read delay (at least
			// busyPace), not only once inotify says (its queue is read
			// every notifyPace): the reader keeps up with the writer,
			// which keeps copytruncate's window (lines written after
			// the copy, and lines not yet read when the file is
			// truncated) small.
			sleep(max(d, busyPace), t.readWake)
			continue
		}
		if f := t.latest(); maxDelay > 0 && f != nil && f.local && !t.hasRotated.Load() &&
			t.m.watch.awaitWrite(t, d, lastData) {
			// The file's next write starts its gather, without waking
			// this reader: the inotify goroutine sets the gather timer
			// (or sends hurry to read at once). readWake is a poll, a
			// rotation, stop, or a write that came before this wait.
			poked := false
			select {
			case <-t.gather.C:
			case <-t.hurry:
			case <-t.readWake:
				poked = true
			}
			woken()
			gathering := t.m.watch.awoken(t)
			t.gather.Stop()
			if !poked || gathering {
				continue
			}
			// Poked before any write started a gather: look as the
			// reader woken by a write does.
		} else {
			<-t.readWake
			woken()
		}
		if ctx.Err() != nil {
			break
		}
		if t.recordDue.Load() {
			continue // a held record's timeout: step sends it
		}
		if d <= 0 || time.Since(lastData) > maxDelay {
			// Busy, or quiet for a while: the first line after a pause
			// is read at once, its rate unknown.
			continue
		}
		switch t.unread() {
		case unreadNone:
			// A wake-up for bytes already read: nothing to gather, and
			// no wait during which a truncation could go unseen.
			goto wait
		case unreadNow:
			continue
		}
		// Let a trickling file gather a few lines: one read (and one
		// batch, one wake-up of the pump) for many lines, not one each.
		sleep(d, t.hurry)
	}
}

// readStep is what the read loop does each time it reads: every write
// counted so far is for what it reads.
func (t *Tailer) readStep(ctx context.Context) int64 {
	t.writes.Store(0)
	t.recordDue.Store(false)
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
	if f == nil || t.hasRotated.Load() {
		return unreadNow // rotated files too: their tails are read, they are closed
	}
	size, err := f.size()
	switch {
	case err != nil || size < f.readOff || size-f.readOff >= readGather:
		return unreadNow
	case size == f.readOff:
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

// step reads everything there is to read now, oldest file first (it holds
// the older lines), and returns how many bytes it read.
func (t *Tailer) step(ctx context.Context) (total int64) {
	files := t.snapshot()
	for i, f := range files {
		current := i == len(files)-1 && !f.superseded.Load()
		n, err := t.read(ctx, f)
		total += n
		if ctx.Err() != nil {
			return total
		}
		t.sendExpired(ctx, f)
		if n > 0 {
			f.lastGrowth.Store(time.Now().UnixNano())
		}
		switch {
		case err != nil && current:
			t.fail(fmt.Errorf("read %s: %w", t.entry.Path, err))
			f.tr.setRole(roleDetached)
			f.f.Close()
			t.remove(f)
		case err != nil || (!current && t.rotatedDone(f)):
			t.closeRotated(ctx, f, err)
			t.remove(f)
		case n == 0 && f.lastLen == 0 && f.readOff > 0:
			// Woken with nothing to read, and nothing read from the file
			// yet to compare (opened at its end or at a saved offset):
			// perhaps a truncation. Otherwise read saw it.
			t.checkTruncated(ctx, f)
		}
	}
	return total
}

// fail records err; it is logged unless it is the error already
// recorded. Both the reader and the watcher call it.
func (t *Tailer) fail(err error) {
	msg := err.Error()
	t.stats.mu.Lock()
	repeated := t.stats.state == StateError && t.stats.lastError == msg
	t.stats.state, t.stats.lastError, t.stats.refused = StateError, msg, errors.Is(err, ErrNotAllowed)
	t.stats.mu.Unlock()
	if !repeated {
		t.log.Error("cannot read file; other files are unaffected, retrying", "err", err)
	}
}

// latest is the file the path named when last looked at, if still held.
func (t *Tailer) latest() *openFile {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.files); n > 0 && !t.files[n-1].superseded.Load() {
		return t.files[n-1]
	}
	return nil
}

// checkPath looks at what the path names now: the same file, a new file
// (rotation), nothing (deleted or renamed away), or something unreadable.
func (t *Tailer) checkPath() {
	cur := t.latest()
	fi, err := os.Stat(t.entry.Path)
	if errors.Is(err, fs.ErrNotExist) {
		if cur != nil {
			t.log.Info("file gone; reading it to its end", "file_id", cur.id)
			t.supersede(cur)
		}
		t.awaiting()
		return
	}
	if err != nil {
		t.fail(err)
		return
	}
	if err := NotRegular(t.entry.Path, fi); err != nil {
		t.notRegular(cur, err)
		return
	}
	if cur != nil && cur.id == fileID(fi) {
		return
	}
	t.open(cur)
}

// notRegular refuses what the path names now, a device, FIFO, socket or
// directory (#26): /dev/zero would be read without end, a FIFO blocks. The
// file the path named before is read to its end; a regular file that
// appears later is new, read from its beginning.
func (t *Tailer) notRegular(cur *openFile, err error) {
	if cur != nil {
		t.log.Info("the path no longer names a regular file; reading the old one to its end", "file_id", cur.id)
		t.supersede(cur)
	}
	t.missing = true
	t.m.store.SetCurrent(t.entry.Path, FilePos{})
	t.fail(err)
}

func (t *Tailer) supersede(f *openFile) {
	f.supersede()
	t.hasRotated.Store(true)
	select {
	case t.readWake <- struct{}{}:
	default:
	}
}

// awaiting notes that the path names no file. Once the path has been seen
// missing, the file that appears is new and is read from its beginning,
// also after a restart: the zero FileID saved here says so.
func (t *Tailer) awaiting() {
	t.missing = true
	// Forget the saved position of the file that was here: a new file may
	// get the same inode (ext4 reuses a freed one at once) and must not
	// resume at the old file's offset.
	t.m.store.SetCurrent(t.entry.Path, FilePos{})
	t.setState(StateWaiting, "")
}

func (t *Tailer) rotatedDone(f *openFile) bool {
	if time.Since(time.Unix(0, f.lastGrowth.Load())) < t.m.opts.RotateWait {
		return false
	}
	_, inFlight := f.tr.position()
	return inFlight == 0
}

func (t *Tailer) closeRotated(ctx context.Context, f *openFile, err error) {
	if err != nil {
		t.log.Error("cannot read rotated file; closing it", "file_id", f.id, "err", err)
	}
	// An unfinished last line will never be completed now: send it, and
	// the record it ends (a record is never split by a rotation).
	if (len(f.pending) > 0 || f.ml.held()) && err == nil {
		t.flushPending(ctx, f)
		if werr := f.tr.wait(ctx); werr != nil {
			// Stopping: the descriptor goes, the saved position stays and
			// the next start resumes the file from it.
			f.f.Close()
			return
		}
	}
	f.f.Close()
	if f.ml != nil {
		f.ml.stop()
	}
	t.retireHead(f)
	// Late acks (after a read error) must not bring the entry back.
	f.tr.setRole(roleDetached)
	t.m.store.DropRotated(t.entry.Path, f.id)
	t.log.Info("rotated file read to its end and closed", "file_id", f.id, "offset", f.readOff)
}

// open opens the file the path names, decides where reading starts, and
// hands it to the reader; prev, the file the path named before, is read
// to its end first.
func (t *Tailer) open(prev *openFile) {
	f, fi, err := t.m.opts.Allow.open(t.entry.Path, openEntry)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		t.awaiting()
		return
	case errors.Is(err, ErrNotRegular):
		t.notRegular(prev, err)
		return
	case err != nil:
		t.fail(err)
		return
	}
	id := fileID(fi)
	var off int64
	saved, ok := t.m.store.Get(t.entry.Path)
	switch {
	case prev == nil && ok && saved.Current.FileID == id:
		// A saved offset for the same file always wins; that of a file
		// that existed when its entry appeared is its end then
		// (noteStart), as tail -F.
		off = saved.Current.Offset
		if off > fi.Size() {
			t.log.Warn("file is shorter than the saved offset (truncated while stopped); reading it from the start",
				"saved_offset", off, "size", fi.Size())
			off = 0
		}
	default:
		// A file that appeared later, or the new file after a rotation.
		off = 0
	}
	if prev != nil {
		t.log.Info("file rotated; reading the old one to its end", "old_id", prev.id, "new_id", id)
		t.stats.rotations.Add(1)
		t.supersede(prev)
	}
	// Generations that held the name between two looks and were renamed
	// away before this one was seen are read; at the first open, the
	// rotated files already there are only noted as known.
	t.adoptMissed(id, t.opened)
	t.opened, t.missing, t.lastOpen = true, false, time.Now()
	t.markSeen(id)
	nf := &openFile{f: f, id: id, readOff: off, local: isLocalFS(f), head: readHead(f, off),
		tr: newTracker(t.m.store, t.entry.Path, id, off, roleCurrent, resumedGen(prev, saved, id, off))}
	if off > 0 {
		// What is saved with the offset goes on being saved with it; a
		// fingerprint of the bytes before it is taken now if there is
		// none, so that a rewrite while stopped is seen at the next
		// start even if no line is read meanwhile (reconcileSaved).
		pos := FilePos{FileID: id, Offset: off}
		if ok && saved.Current.FileID == id && saved.Current.Offset == off {
			pos = saved.Current
		}
		if pos.Check.Len == 0 {
			pos.Check = readCheck(f, off)
		}
		nf.tr.resume(pos)
	}
	t.mu.Lock()
	t.files = append(t.files, nf)
	t.mu.Unlock()
	t.setState(StateRunning, "")
	t.log.Info("file opened", "file_id", id, "offset", off, "size", fi.Size())
	select {
	case t.readWake <- struct{}{}:
	default:
	}
}

// resumedGen is the generation id of a file opened at off: the saved one
// when reading resumes at the saved offset of the same file (the lines
// sent again after a crash keep their ids), else 0, a new generation.
func resumedGen(prev *openFile, saved PathPos, id FileID, off int64) GenID {
	if prev == nil && saved.Current.FileID == id && saved.Current.Offset == off {
		return saved.Current.Gen
	}
	return 0
}

func (t *Tailer) markSeen(id FileID) {
	if t.seen == nil || len(t.seen) > 4096 {
		t.seen = map[FileID]bool{}
	}
	t.seen[id] = true
}

// compressed names are rotated copies in another format, never read.
var compressed = []string{".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".z", ".Z"}

// rotatedName reports whether name is a rotation of base, not compressed:
// base.N or base-DATE (logrotate), stem-DATE.ext (lumberjack). The suffix
// must start with a digit, so that a sibling such as app-audit.log is not
// taken for a rotation of app.log.
func rotatedName(name, base string) bool {
	if slices.ContainsFunc(compressed, func(ext string) bool { return strings.HasSuffix(name, ext) }) {
		return false
	}
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	for _, prefix := range []string{base + ".", base + "-", stem + "-"} {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || rest == "" || rest[0] < '0' || rest[0] > '9' {
			continue
		}
		if prefix == stem+"-" && !strings.HasSuffix(rest, ext) {
			continue
		}
		return true
	}
	return false
}

// adoptMissed finds files rotated away before they were ever opened (with
// adopt false it only notes the rotated files there are as known): in
// the path's directory, named like a rotation of it (path.1, path-date,
// name-date.ext), never opened by this tailer, and written since the
// previous generation was opened. They are read from 0, oldest first,
// before the new file. Rotations faster than the agent looks (files
// living a few milliseconds) would otherwise lose whole files.
func (t *Tailer) adoptMissed(newID FileID, adopt bool) {
	dir, base := filepath.Split(t.entry.Path)
	list := readDir
	if !adopt {
		// A first open only notes what is there: tailers started
		// together share a listing of their directory (a thousand files
		// in one directory would otherwise be listed a thousand times).
		list = t.m.listDir
	}
	ents, err := list(filepath.Clean(dir))
	if err != nil {
		return
	}
	type cand struct {
		name string
		fi   os.FileInfo
	}
	var cands []cand
	for _, de := range ents {
		name := de.Name()
		if !rotatedName(name, base) {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		id := fileID(fi)
		if !adopt {
			t.markSeen(id)
			continue
		}
		if fi.ModTime().Before(t.lastOpen) || id == newID || t.seen[id] || t.holds(id) {
			continue
		}
		cands = append(cands, cand{name, fi})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].fi.ModTime().Before(cands[j].fi.ModTime()) })
	for _, c := range cands {
		f, fi, err := t.m.opts.Allow.open(filepath.Join(dir, c.name), openRegular)
		if err != nil {
			continue
		}
		if fileID(fi) != fileID(c.fi) {
			f.Close()
			continue
		}
		id := fileID(fi)
		t.markSeen(id)
		if t.knownHead(readHead(f, headBytes)) {
			t.log.Info("rotated file not read: it begins like a file already read (a copy, as copytruncate leaves)",
				"name", c.name, "file_id", id, "size", fi.Size())
			f.Close()
			continue
		}
		t.stats.rotations.Add(1)
		t.log.Warn("found a rotated file never opened under the path; reading it from the start",
			"name", c.name, "file_id", id, "size", fi.Size())
		of := &openFile{f: f, id: id, tr: newTracker(t.m.store, t.entry.Path, id, 0, roleRotated, 0)}
		of.lastGrowth.Store(time.Now().UnixNano())
		of.superseded.Store(true)
		t.mu.Lock()
		t.files = append(t.files, of)
		t.mu.Unlock()
		t.hasRotated.Store(true)
	}
}

func (t *Tailer) holds(id FileID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.files {
		if f.id == id {
			return true
		}
	}
	return false
}

// restoreRotated reopens rotated files that were still being read when the
// agent stopped, found by identity in the path's directory.
func (t *Tailer) restoreRotated() {
	saved, ok := t.m.store.Get(t.entry.Path)
	if !ok || len(saved.Rotated) == 0 {
		return
	}
	dir := filepath.Dir(t.entry.Path)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Not knowing is not "gone": the positions stay for the next start.
		t.log.Error("cannot list the directory of rotated files still to read; their positions are kept for the next start",
			"dir", dir, "err", err)
		return
	}
	for _, r := range saved.Rotated {
		var found *os.File
		var openErr error
		for _, de := range ents {
			fi, err := os.Stat(filepath.Join(dir, de.Name()))
			if err != nil || fileID(fi) != r.FileID || !fi.Mode().IsRegular() {
				continue
			}
			name := filepath.Join(dir, de.Name())
			if openErr = t.m.opts.Allow.Check(name); openErr == nil {
				found, openErr = openRotated(name)
			}
			if openErr == nil {
				if openErr = t.m.opts.Allow.checkOpen(name, found); openErr != nil {
					found.Close()
				}
			}
			break
		}
		if openErr != nil {
			t.log.Error("cannot open a rotated file still to read; its position is kept for the next start",
				"file_id", r.FileID, "offset", r.Offset, "err", openErr)
			continue
		}
		if found != nil && r.FileID == saved.Current.FileID {
			found.Close()
			t.log.Warn("rotated file not found again; it may not have been read to its end", "file_id", r.FileID, "offset", r.Offset)
			t.m.store.DropRotated(t.entry.Path, r.FileID)
			continue
		}
		if found != nil && !matches(found, r.Check) {
			found.Close() // its inode was reused by another file
			found = nil
		}
		if found == nil {
			t.goneWhileStopped(r)
			t.m.store.DropRotated(t.entry.Path, r.FileID)
			continue
		}
		t.log.Info("resuming rotated file", "name", found.Name(), "file_id", r.FileID, "offset", r.Offset)
		t.resumeRotated(found, r)
	}
}

// openRotated opens a rotated file found again at start (a variable for
// the test of a failing open).
var openRotated = func(path string) (*os.File, error) {
	f, _, err := openRegular(path)
	return f, err
}

// readDir lists a directory (a variable for the test that counts listings).
var readDir = os.ReadDir

// checkTruncated handles a file that became shorter than what was read:
// copytruncate or a plain truncate. The file is read again from 0.
func (t *Tailer) checkTruncated(ctx context.Context, f *openFile) {
	size, err := f.size()
	if err != nil || size >= f.readOff {
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
	t.log.Warn("file truncated; reading it again from the start", "file_id", f.id, "offset", f.readOff, "size", size)
	t.stats.truncations.Add(1)
	f.restartTracker(t.m.store, t.entry.Path)
	t.retireHead(f)
	f.readOff = 0
	f.pending = nil
	f.splitting = false
	f.lastLen = 0
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
		have, back := len(f.pending), f.lastLen
		c := getChunk(size, lookBack+have+size)
		buf := c.buf[:cap(c.buf)]
		copy(buf[lookBack:], f.pending)
		// One pread takes the new bytes and, just before them, the last
		// bytes read (the end of pending, when there is one: the same
		// bytes). If those are no longer there, the file was truncated,
		// perhaps written past readOff again since (copytruncate, within
		// one read delay or between two reads of a busy file), which its
		// size alone would not show. One system call for both: it was a
		// pread and a read, and a fstat after every empty read.
		n, err := f.pread(buf[lookBack+have-back:lookBack+have+size], f.readOff-int64(back))
		if err == nil && back > 0 && (n < back || !bytes.Equal(buf[lookBack+have-back:lookBack+have], f.last[:back])) {
			c.release()
			t.bud.Release(int64(size))
			if !f.lastGone() {
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
		start := f.readOff - int64(have)
		f.readOff += int64(n)
		f.remember(buf[lookBack+have-back : lookBack+have+n])
		data := buf[lookBack : lookBack+have+n]
		if len(f.head) < headBytes {
			t.keepHead(f, data, start)
		}
		complete := t.completeLines(data)
		f.pending = append(f.pending[:0], data[complete:]...)
		f.pendingRead = read
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
// max_line_bytes piece (see completeLines), starts at file offset base and
// lies in chunk c (nil: in memory of its own). It splits lines longer than
// MaxLineBytes. It takes over reserved, budget acquired
// before the read: what the lines do not use is released, and what they
// need beyond it is acquired batch by batch, so that a read of many short
// lines never asks for more than the whole budget at once. read is when
// data was read: the timestamp of its lines.
func (t *Tailer) emit(ctx context.Context, f *openFile, c *chunk, data []byte, base int64, reserved int64, read time.Time) {
	maxLine := t.m.opts.MaxLineBytes
	complete := len(data)
	held := reserved
	limit := max(reserved, min(groupBytes, t.m.opts.BufferBytes/4))
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
		cost := int64(n) + t.m.opts.LineOverhead
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
	for p < complete {
		i := bytes.IndexByte(data[p:complete], '\n')
		var end int
		l := Line{Offset: base + int64(p)}
		if i < 0 || i > maxLine {
			// An oversized line: a piece of maxLine bytes, the rest follows.
			end = p + maxLine
			l.Data = data[p:end]
			if !f.splitting {
				f.splitting = true
				t.stats.oversized.Add(1)
				t.log.Warn("line longer than max_line_bytes; sent in pieces", "offset", base+int64(p), "max_line_bytes", maxLine)
			}
		} else {
			end = p + i + 1
			l.Data = data[p : p+i]
			if i > 0 && l.Data[i-1] == '\r' {
				l.Data = l.Data[:i-1]
			}
			if f.splitting && len(l.Data) == 0 {
				// The terminator of an oversized line whose pieces are
				// all sent: no record of its own, only its offset.
				l.Data, l.Skip = nil, true
			}
			f.splitting = false
		}
		l.next = base + int64(end)
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

// completeLines is how much of data emit sends: up to its last newline,
// and whole max_line_bytes pieces of an oversized line after it.
func (t *Tailer) completeLines(data []byte) int {
	maxLine := t.m.opts.MaxLineBytes
	complete := bytes.LastIndexByte(data, '\n') + 1
	if rest := len(data) - complete; rest >= maxLine {
		complete += rest / maxLine * maxLine
	}
	return complete
}

// groupBytes bounds the budget one batch of lines acquires at once.
const groupBytes = 256 << 10

// flushPending sends an unfinished last line of a file that will not grow
// again, and the multiline record it ends.
func (t *Tailer) flushPending(ctx context.Context, f *openFile) {
	n := int64(len(f.pending))
	data := append([]byte(nil), f.pending...)
	f.pending = nil
	if t.joiner(f) != nil {
		t.flushRecord(ctx, f, data)
		return
	}
	t.sendOwn(ctx, f, []Line{{Offset: f.readOff - n, Data: data, next: f.readOff}}, checkOf(data, f.readOff), f.pendingRead)
}

// sendOwn sends lines in memory of their own, c being the fingerprint at
// the last one's end.
func (t *Tailer) sendOwn(ctx context.Context, f *openFile, lines []Line, c Check, read time.Time) {
	var cost int64
	for _, l := range lines {
		cost += int64(len(l.Data)) + t.m.opts.LineOverhead
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
		_ = t.m.store.Sync()
		f.tr.fresh = false
	}
	for i := range b.Lines {
		b.Lines[i].seq = f.tr.add(b.Lines[i].next)
	}
	f.tr.checkLast(c)
	n := len(b.Lines)
	b.left.Store(int32(n))
	t.stats.linesRead.Add(int64(n))
	t.m.inFlight.Add(int64(n))
	select {
	case t.m.out <- b:
		return true
	case <-ctx.Done():
		t.stats.linesRead.Add(-int64(n))
		t.m.inFlight.Add(-int64(n))
		f.tr.unadd(n)
		return false
	}
}

func fileID(fi os.FileInfo) FileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return FileID{}
	}
	return FileID{Dev: uint64(st.Dev), Ino: st.Ino}
}

func (t *Tailer) status() Status {
	t.stats.mu.Lock()
	s := Status{Path: t.entry.Path, Entry: t.entry.Glob, Topic: t.entry.Topic, State: t.stats.state, LastError: t.stats.lastError}
	t.stats.mu.Unlock()
	s.LinesRead = t.stats.linesRead.Load()
	s.LinesAcked = t.stats.acked.Load()
	s.BytesRead = t.stats.bytesRead.Load()
	s.Rotations = t.stats.rotations.Load()
	s.Truncations = t.stats.truncations.Load()
	s.Oversized = t.stats.oversized.Load()
	s.RecordsSplit = t.stats.recordsSplit.Load()
	s.LostBytes = t.stats.lostBytes.Load()
	if saved, ok := t.m.store.Get(t.entry.Path); ok {
		s.Committed = saved.Current.Offset
		if fi, err := os.Stat(t.entry.Path); err == nil && fileID(fi) == saved.Current.FileID {
			s.Size = fi.Size()
		}
	}
	s.LagBytes = s.Lag()
	return s
}
