package taillog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/logagent/logagent/fleet"
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
	StateError    = fleet.FileStateError
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

	rd reader // reader goroutine

	// head is the generation's first bytes (head.go): written by the
	// reader under Tailer.headMu.
	head []byte

	// ml frames lines into records when the entry has a multiline rule
	// (reader goroutine; made at the first emit).
	ml *joiner
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
	deps  tailerDeps
	bud   *topicBudget // its topic's share of the read budget
	log   *slog.Logger

	pace *pacer // its wake-ups: the watcher and the poller talk to it

	cancel   context.CancelFunc
	done     sync.WaitGroup
	stopOnce sync.Once

	mu    sync.Mutex
	files []*openFile // oldest first; the last is the path's current file unless superseded

	// Owned by the watcher goroutine.
	opened   bool      // a file has been opened at least once
	lastOpen time.Time // when the newest generation was opened, on the files' clock (fsNow)
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

// tailerDeps is what a manager hands each of its tailers, and all a tailer
// reaches of it: the options, the position store, where batches go and
// the count of lines in flight, the watcher of its directory, and the
// directory listings shared by tailers that start together.
type tailerDeps struct {
	opts     *Options
	store    *Positions
	out      chan<- *Batch
	inFlight *atomic.Int64 // lines handed to out and not yet acked, every tailer's
	watch    *watcher
	listDir  func(dir string) ([]os.DirEntry, error)
}

// deps is what m hands its tailers.
func (m *Manager) deps() tailerDeps {
	return tailerDeps{opts: &m.opts, store: m.store, out: m.out, inFlight: &m.inFlight, watch: m.watch, listDir: m.listDir}
}

func newTailer(m *Manager, e Entry) *Tailer {
	t := &Tailer{entry: e, deps: m.deps(), bud: m.budget.topic(e.Topic), log: m.log.With("path", e.Path, "topic", e.Topic)}
	t.pace = newPacer(e.Path, m.opts.MaxReadDelay, t.unread)
	t.stats.state = StateStarting
	return t
}

// following tells whether the tailer is reading the file its path named
// when last looked at.
func (t *Tailer) following() bool {
	t.stats.mu.Lock()
	running := t.stats.state == StateRunning
	t.stats.mu.Unlock()
	return running && t.latest() != nil
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
	t.deps.watch.add(t.pace)
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
	if _, ok := t.deps.store.Get(t.entry.Path); ok {
		return // not the entry's first appearance: its saved position wins
	}
	fi, err := statEntry(t.entry.Path)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	t.deps.store.SetCurrent(t.entry.Path, FilePos{FileID: fileID(fi), Offset: fi.Size()})
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
		t.pace.poke(true)
		t.done.Wait()
		t.deps.watch.remove(t.pace)
		for _, f := range t.files {
			if err := f.tr.wait(ctx); err != nil {
				_, n := f.tr.position()
				t.log.Warn("stopped before Kafka acknowledged every line read; they are sent again on the next start",
					"in_flight", n, "file_offset", f.rd.off)
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
	t.pace.hasRotated.Store(len(t.files) > 1 || (len(t.files) == 1 && t.files[0].superseded.Load()))
}

// watchLoop and readLoop wait on a plain channel receive: the manager's
// poller pokes every tailer each PollInterval (the safety net for missed
// inotify events), so no loop needs a timer of its own, and stop pokes
// them after cancelling.
func (t *Tailer) watchLoop(ctx context.Context) {
	defer t.done.Done()
	for ctx.Err() == nil {
		t.checkPath()
		<-t.pace.wake
	}
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
		case n == 0 && f.rd.lastLen == 0 && f.rd.off > 0:
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
	t.deps.store.SetCurrent(t.entry.Path, FilePos{})
	t.fail(err)
}

// open opens the file the path names, decides where reading starts, and
// hands it to the reader; prev, the file the path named before, is read
// to its end first.
func (t *Tailer) open(prev *openFile) {
	f, fi, err := t.deps.opts.Allow.open(t.entry.Path, openEntry)
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
	saved, ok := t.deps.store.Get(t.entry.Path)
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
	// lastOpen is compared with the mtimes of later generations: taken on
	// the clock the kernel stamps them with, or a generation created just
	// after this open would look older than it and be skipped.
	t.opened, t.missing, t.lastOpen = true, false, fsNow()
	t.markSeen(id)
	nf := &openFile{f: f, id: id, rd: reader{off: off}, local: isLocalFS(f), head: readHead(f, off),
		tr: newTracker(t.deps.store, t.entry.Path, id, off, roleCurrent, resumedGen(prev, saved, id, off))}
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
	t.pace.wakeReader()
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
	if saved, ok := t.deps.store.Get(t.entry.Path); ok {
		s.Committed = saved.Current.Offset
		if fi, err := os.Stat(t.entry.Path); err == nil && fileID(fi) == saved.Current.FileID {
			s.Size = fi.Size()
		}
	}
	s.LagBytes = s.Lag()
	return s
}
