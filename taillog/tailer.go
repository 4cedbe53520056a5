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
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Entry is one file to collect and the topic its lines go to.
type Entry struct {
	Path     string
	Topic    string
	ReadFrom string // "", "end" or "beginning": where a file that already exists starts
}

// Line is one line (or one piece of an oversized line) read from a file.
// Data excludes the line terminator. Ack must be called once Kafka has
// acknowledged the line.
type Line struct {
	Topic  string
	Path   string
	Offset int64 // byte offset of the line's start in its file
	Data   []byte

	tr   *tracker
	seq  uint64
	cost int64
	m    *Manager
}

// Ack reports the line as delivered: it may move the file's committed
// offset and frees its share of the read budget.
func (l *Line) Ack() {
	l.tr.ack(l.seq)
	l.m.budget.Release(l.cost)
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
	f       *os.File
	id      FileID
	name    string // the path it was opened under (for logs)
	readOff int64  // offset of the next byte to read from f
	pending []byte // bytes of an unfinished line, starting at readOff-len(pending)
	// splitting is set while the pieces of an oversized line are sent.
	splitting bool
	tr      *tracker

	lastGrowth time.Time // rotated files: closed after RotateWait without growth
}

// Tailer follows one path: it reads every line of the file the path names,
// follows it across rotation and truncation, and hands lines to the
// manager's channel.
//
// It owns its read loop rather than using nxadm/tail's, which (v1.4.11)
// reopens a moved file without reading the unread end of the old one,
// sends a final line without newline in two pieces, and calls Seek for
// every line to learn its offset.
type Tailer struct {
	entry Entry
	m     *Manager
	log   *slog.Logger

	wake       chan struct{}
	hasRotated atomic.Bool
	cancel     context.CancelFunc
	done       chan struct{}
	stopOnce   sync.Once

	// Owned by the run goroutine.
	cur        *openFile
	rotated    []*openFile
	opened     bool // a file has been opened at least once
	existedNew bool // the file existed when the entry appeared
	lastErr    string
	pollEvery  time.Duration

	stats tailerStats
}

type tailerStats struct {
	mu        sync.Mutex
	state     string
	lastError string

	linesRead, bytesRead, rotations, truncations, oversized atomic.Int64
}

func newTailer(m *Manager, e Entry) *Tailer {
	t := &Tailer{entry: e, m: m, wake: make(chan struct{}, 1), done: make(chan struct{}),
		log: m.log.With("path", e.Path, "topic", e.Topic), pollEvery: m.opts.PollInterval}
	t.stats.state = StateStarting
	return t
}

func (t *Tailer) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *Tailer) setState(state, errText string) {
	t.stats.mu.Lock()
	t.stats.state, t.stats.lastError = state, errText
	t.stats.mu.Unlock()
}

func (t *Tailer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	if _, err := os.Stat(t.entry.Path); err == nil {
		t.existedNew = true
	}
	t.restoreRotated()
	t.m.watch.add(t)
	go t.run(ctx)
}

// stop stops reading, waits (bounded by ctx) until every line read so far
// is acknowledged, and closes the files. Safe to call twice.
func (t *Tailer) stop(ctx context.Context) {
	t.stopOnce.Do(func() {
		t.cancel()
		<-t.done
		t.m.watch.remove(t)
		for _, f := range t.files() {
			if err := f.tr.wait(ctx); err != nil {
				_, n := f.tr.position()
				t.log.Warn("stopped before Kafka acknowledged every line read; they are sent again on the next start",
					"in_flight", n, "file_offset", f.readOff)
			}
		}
		for _, f := range t.files() {
			f.f.Close()
		}
		t.cur, t.rotated = nil, nil
	})
}

func (t *Tailer) files() []*openFile {
	fs := append([]*openFile(nil), t.rotated...)
	if t.cur != nil {
		fs = append(fs, t.cur)
	}
	return fs
}

func (t *Tailer) run(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(t.pollEvery)
	defer tick.Stop()
	for {
		t.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		case <-tick.C:
		}
	}
}

// step reads everything there is to read now: rotated-away files first
// (they hold the older lines), then the file the path names.
func (t *Tailer) step(ctx context.Context) {
	for ctx.Err() == nil {
		progressed := false
		t.checkPath()
		for i := 0; i < len(t.rotated); i++ {
			f := t.rotated[i]
			n, err := t.read(ctx, f)
			if n > 0 {
				f.lastGrowth = time.Now()
				progressed = true
			}
			if err != nil || t.rotatedDone(f) {
				t.closeRotated(ctx, f, err)
				t.rotated = append(t.rotated[:i], t.rotated[i+1:]...)
				i--
			}
		}
		t.hasRotated.Store(len(t.rotated) > 0)
		if t.cur != nil {
			n, err := t.read(ctx, t.cur)
			if n > 0 {
				progressed = true
			} else if err == nil {
				t.checkTruncated()
			}
			if err != nil && ctx.Err() == nil {
				t.fail(fmt.Errorf("read %s: %w", t.entry.Path, err))
				t.cur.tr.setRole(roleDetached)
				t.cur.f.Close()
				t.cur = nil
			}
		}
		if !progressed {
			return
		}
	}
}

func (t *Tailer) fail(err error) {
	if err.Error() != t.lastErr {
		t.log.Error("cannot read file; other files are unaffected, retrying", "err", err)
		t.lastErr = err.Error()
	}
	t.setState(StateError, err.Error())
}

// checkPath looks at what the path names now: the same file, a new file
// (rotation), nothing (deleted or renamed away), or something unreadable.
func (t *Tailer) checkPath() {
	fi, err := os.Stat(t.entry.Path)
	if errors.Is(err, fs.ErrNotExist) {
		if t.cur != nil {
			t.log.Info("file gone; reading it to its end", "file_id", t.cur.id)
			t.retire()
		}
		t.awaiting()
		return
	}
	if err != nil {
		t.fail(err)
		return
	}
	if fi.IsDir() {
		t.fail(fmt.Errorf("%s is a directory", t.entry.Path))
		return
	}
	id := fileID(fi)
	if t.cur != nil && t.cur.id == id {
		return
	}
	if t.cur != nil {
		t.log.Info("file rotated; reading the old one to its end", "old_id", t.cur.id, "new_id", id)
		t.stats.rotations.Add(1)
		t.retire()
	}
	t.open()
}

// awaiting notes that the path names no file. Once the path has been seen
// missing, the file that appears is new and is read from its beginning,
// also after a restart: the zero FileID saved here says so.
func (t *Tailer) awaiting() {
	if _, ok := t.m.store.Get(t.entry.Path); !ok {
		t.m.store.SetCurrent(t.entry.Path, FilePos{})
	}
	t.setState(StateWaiting, "")
	t.lastErr = ""
}

// retire moves the current file to the rotated list: it is read until it
// has not grown for RotateWait, then closed.
func (t *Tailer) retire() {
	f := t.cur
	t.cur = nil
	f.lastGrowth = time.Now()
	f.tr.setRole(roleRotated)
	t.rotated = append(t.rotated, f)
	t.hasRotated.Store(true)
}

func (t *Tailer) rotatedDone(f *openFile) bool {
	if time.Since(f.lastGrowth) < t.m.opts.RotateWait {
		return false
	}
	_, inFlight := f.tr.position()
	return inFlight == 0
}

func (t *Tailer) closeRotated(ctx context.Context, f *openFile, err error) {
	if err != nil && ctx.Err() == nil {
		t.log.Error("cannot read rotated file; closing it", "file_id", f.id, "err", err)
	}
	// An unfinished last line will never be completed now: send it.
	if len(f.pending) > 0 && err == nil {
		t.flushPending(ctx, f)
		if werr := f.tr.wait(ctx); werr != nil {
			return
		}
	}
	f.f.Close()
	t.m.store.DropRotated(t.entry.Path, f.id)
	t.log.Info("rotated file read to its end and closed", "file_id", f.id, "offset", f.readOff)
}

// open opens the file the path names and decides where reading starts.
func (t *Tailer) open() {
	f, err := os.Open(t.entry.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			t.awaiting()
			return
		}
		t.fail(err)
		return
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		t.fail(err)
		return
	}
	id := fileID(fi)
	var off int64
	saved, ok := t.m.store.Get(t.entry.Path)
	switch {
	case ok && saved.Current.FileID == id:
		// A saved offset for the same file always wins.
		off = saved.Current.Offset
		if off > fi.Size() {
			t.log.Warn("file is shorter than the saved offset (truncated while stopped); reading it from the start",
				"saved_offset", off, "size", fi.Size())
			off = 0
		}
	case !t.opened && !ok && t.existedNew && t.entry.ReadFrom != "beginning":
		// An existing file, seen for the first time: start at its end, as tail -F.
		off = fi.Size()
	default:
		// A file that appeared later, or the new file after a rotation.
		off = 0
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			t.fail(fmt.Errorf("seek %s: %w", t.entry.Path, err))
			return
		}
	}
	t.opened = true
	t.cur = &openFile{f: f, id: id, name: t.entry.Path, readOff: off,
		tr: newTracker(t.m.store, t.entry.Path, id, off, roleCurrent)}
	t.lastErr = ""
	t.setState(StateRunning, "")
	t.log.Info("file opened", "file_id", id, "offset", off, "size", fi.Size())
}

// restoreRotated reopens rotated files that were still being read when the
// agent stopped, found by identity in the path's directory.
func (t *Tailer) restoreRotated() {
	saved, ok := t.m.store.Get(t.entry.Path)
	if !ok || len(saved.Rotated) == 0 {
		return
	}
	dir := filepath.Dir(t.entry.Path)
	ents, _ := os.ReadDir(dir)
	for _, r := range saved.Rotated {
		var found *os.File
		for _, de := range ents {
			fi, err := os.Stat(filepath.Join(dir, de.Name()))
			if err != nil || fileID(fi) != r.FileID || fi.IsDir() {
				continue
			}
			if f, err := os.Open(filepath.Join(dir, de.Name())); err == nil {
				found = f
			}
			break
		}
		if found == nil || r.FileID == saved.Current.FileID {
			if found != nil {
				found.Close()
			}
			t.log.Warn("rotated file not found again; it may not have been read to its end", "file_id", r.FileID, "offset", r.Offset)
			t.m.store.DropRotated(t.entry.Path, r.FileID)
			continue
		}
		if _, err := found.Seek(r.Offset, io.SeekStart); err != nil {
			found.Close()
			continue
		}
		t.log.Info("resuming rotated file", "name", found.Name(), "file_id", r.FileID, "offset", r.Offset)
		t.rotated = append(t.rotated, &openFile{f: found, id: r.FileID, name: found.Name(), readOff: r.Offset,
			lastGrowth: time.Now(), tr: newTracker(t.m.store, t.entry.Path, r.FileID, r.Offset, roleRotated)})
	}
	t.hasRotated.Store(len(t.rotated) > 0)
}

// checkTruncated handles a file that became shorter than what was read:
// copytruncate or a plain truncate. The file is read again from 0.
func (t *Tailer) checkTruncated() {
	fi, err := t.cur.f.Stat()
	if err != nil || fi.Size() >= t.cur.readOff {
		return
	}
	t.log.Warn("file truncated; reading it again from the start", "file_id", t.cur.id, "offset", t.cur.readOff, "size", fi.Size())
	t.stats.truncations.Add(1)
	if _, err := t.cur.f.Seek(0, io.SeekStart); err != nil {
		t.fail(err)
		return
	}
	// Acks still due for the old content must not move the new content's offset.
	t.cur.tr.setRole(roleDetached)
	t.cur.tr = newTracker(t.m.store, t.entry.Path, t.cur.id, 0, roleCurrent)
	t.cur.readOff = 0
	t.cur.pending = nil
}

const readSize = 64 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, 2*readSize); return &b }}

// read reads f up to its current end and emits its complete lines. It
// returns the number of bytes read.
func (t *Tailer) read(ctx context.Context, f *openFile) (int64, error) {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	var total int64
	for ctx.Err() == nil {
		// Reserve budget before reading: when Kafka is slow the reserve
		// blocks and the file is simply not read further.
		if err := t.m.budget.Acquire(ctx, readSize); err != nil {
			return total, nil
		}
		buf := *bp
		need := len(f.pending) + readSize
		if cap(buf) < need {
			buf = make([]byte, need)
			*bp = buf
		}
		buf = buf[:cap(buf)]
		have := copy(buf, f.pending)
		n, err := f.f.Read(buf[have : have+readSize])
		if n == 0 {
			t.m.budget.Release(readSize)
			if err == nil || err == io.EOF {
				return total, nil
			}
			return total, err
		}
		total += int64(n)
		t.stats.bytesRead.Add(int64(n))
		start := f.readOff - int64(len(f.pending))
		f.readOff += int64(n)
		used, rest := t.emit(ctx, f, buf[:have+n], start, readSize)
		f.pending = append(f.pending[:0], rest...)
		if used < readSize {
			t.m.budget.Release(readSize - used)
		}
		if ctx.Err() != nil {
			return total, nil
		}
	}
	return total, nil
}

// emit sends the complete lines of data (which starts at file offset base)
// as one batch, and splits an unfinished line that reached MaxLineBytes. It
// returns the budget the batch uses and the unfinished rest. reserved is
// the budget already held; more is acquired if the batch needs it.
func (t *Tailer) emit(ctx context.Context, f *openFile, data []byte, base int64, reserved int64) (int64, []byte) {
	max := t.m.opts.MaxLineBytes
	complete := bytes.LastIndexByte(data, '\n') + 1
	rest := data[complete:]
	var pieces int
	if len(rest) >= max {
		pieces = len(rest) / max
		complete += pieces * max
		rest = data[complete:]
	}
	if complete == 0 {
		return 0, rest
	}
	// One copy per read: the lines of a batch share it, and it is freed
	// once the last of them is delivered.
	chunk := make([]byte, complete)
	copy(chunk, data)
	used := int64(complete)
	if used > reserved {
		if err := t.m.budget.Acquire(ctx, used-reserved); err != nil {
			return 0, rest // stopping: nothing sent; the caller returns the reserve
		}
	}

	lines := make([]Line, 0, bytes.Count(chunk, []byte{'\n'})+pieces)
	for p := 0; p < len(chunk); {
		i := bytes.IndexByte(chunk[p:], '\n')
		end := p + i + 1
		text := chunk[p : p+i]
		if i < 0 || i > max {
			// An oversized line: a piece of max bytes, the rest follows.
			end = p + max
			text = chunk[p:end]
			if !f.splitting {
				f.splitting = true
				t.stats.oversized.Add(1)
				t.log.Warn("line longer than max_line_bytes; sent in pieces", "offset", base+int64(p), "max_line_bytes", max)
			}
		} else {
			f.splitting = false
			if i > 0 && text[i-1] == '\r' {
				text = text[:i-1]
			}
		}
		lines = append(lines, Line{Topic: t.entry.Topic, Path: t.entry.Path, Offset: base + int64(p), Data: text,
			m: t.m, cost: int64(end - p), tr: f.tr})
		p = end
	}
	t.send(ctx, f, lines, used)
	return used, rest
}

// flushPending sends an unfinished last line of a file that will not grow again.
func (t *Tailer) flushPending(ctx context.Context, f *openFile) {
	n := int64(len(f.pending))
	if err := t.m.budget.Acquire(ctx, n); err != nil {
		return
	}
	data := append([]byte(nil), f.pending...)
	lines := []Line{{Topic: t.entry.Topic, Path: t.entry.Path, Offset: f.readOff - n, Data: data, m: t.m, cost: n, tr: f.tr}}
	f.pending = nil
	t.send(ctx, f, lines, n)
}

// send registers the lines with the file's tracker and hands them over. If
// the tailer stops first, the lines are taken back: they were never sent.
func (t *Tailer) send(ctx context.Context, f *openFile, lines []Line, cost int64) {
	end := lines[0].Offset
	for i := range lines {
		end = lines[i].Offset + lines[i].cost
		lines[i].seq = f.tr.add(end)
	}
	select {
	case t.m.out <- lines:
		t.stats.linesRead.Add(int64(len(lines)))
	case <-ctx.Done():
		f.tr.unadd(len(lines))
		t.m.budget.Release(cost)
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
	s := Status{Path: t.entry.Path, Topic: t.entry.Topic, State: t.stats.state, LastError: t.stats.lastError}
	t.stats.mu.Unlock()
	s.LinesRead = t.stats.linesRead.Load()
	s.BytesRead = t.stats.bytesRead.Load()
	s.Rotations = t.stats.rotations.Load()
	s.Truncations = t.stats.truncations.Load()
	s.Oversized = t.stats.oversized.Load()
	if saved, ok := t.m.store.Get(t.entry.Path); ok {
		s.Committed = saved.Current.Offset
		if fi, err := os.Stat(t.entry.Path); err == nil && fileID(fi) == saved.Current.FileID {
			s.Size = fi.Size()
		}
	}
	return s
}
