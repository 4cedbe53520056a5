package taillog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type got struct {
	path   string
	offset int64
	data   string
}

// collector plays Kafka: it takes the manager's batches and acks them. While
// paused it takes nothing, so the tailers fall behind and block.
type collector struct {
	out     chan *Batch
	mu      sync.Mutex
	lines   []got
	files   []GenID       // each line's file generation
	batches int           // batches that held a line
	paused  chan struct{} // closed = running
	stop    chan struct{}
	done    chan struct{}
}

func newCollector() *collector {
	c := &collector{out: make(chan *Batch, 4), stop: make(chan struct{}), done: make(chan struct{})}
	c.paused = make(chan struct{})
	close(c.paused)
	go c.run()
	return c
}

func (c *collector) run() {
	defer close(c.done)
	for {
		var batch *Batch
		select {
		case batch = <-c.out:
		case <-c.stop:
			return
		}
		// A batch taken while paused is held, unacked, until resume.
		c.mu.Lock()
		gate := c.paused
		c.mu.Unlock()
		select {
		case <-gate:
		case <-c.stop:
			return
		}
		b := batch.Lines
		c.mu.Lock()
		if len(b) > 0 {
			c.batches++
		}
		for i := range b {
			if !b[i].Skip {
				c.lines = append(c.lines, got{b[i].Path(), b[i].Offset, string(b[i].Data)})
				c.files = append(c.files, batch.File)
			}
		}
		c.mu.Unlock()
		for i := range b {
			b[i].Ack() // the last ack recycles the batch: nothing is read after it
		}
	}
}

func (c *collector) pause() {
	c.mu.Lock()
	c.paused = make(chan struct{})
	c.mu.Unlock()
}

func (c *collector) resume() {
	c.mu.Lock()
	close(c.paused)
	c.mu.Unlock()
}

func (c *collector) close() { close(c.stop); <-c.done }

// wait returns the lines once there are n, failing after 10s.
func (c *collector) wait(t *testing.T, n int) []got {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		l := append([]got(nil), c.lines...)
		c.mu.Unlock()
		if len(l) >= n {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d lines, want %d; last: %v", len(l), n, tail(l))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tail(l []got) []got {
	if len(l) > 3 {
		return l[len(l)-3:]
	}
	return l
}

func testOpts() Options {
	return Options{MaxLineBytes: 1024, BufferBytes: 1 << 20, RotateWait: 200 * time.Millisecond,
		PollInterval: 50 * time.Millisecond, ShutdownTimeout: 2 * time.Second}
}

type fixture struct {
	dir       string // the logs
	positions string // the positions file, in a directory of its own
	store     *Positions
	col       *collector
	m         *Manager
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	dir := t.TempDir()
	// Apart from the logs, as data_dir is: a save in the logs' directory
	// would wake their tailers (a file created and renamed there).
	positions := filepath.Join(t.TempDir(), "positions.json")
	store, err := LoadPositions(positions, discard())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, positions: positions, store: store, col: newCollector()}
	f.m = NewManager(opts, store, f.col.out, testLogger(t))
	t.Cleanup(func() { f.m.Stop(); f.col.close() })
	return f
}

func (f *fixture) waitState(t *testing.T, path, state string) Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range f.m.Status() {
			if s.Path == path && s.State == state {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %s: %+v", path, state, f.m.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(s); err != nil {
		t.Fatal(err)
	}
	fh.Close()
}

func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "line %05d\n", i)
	}
	return b.String()
}

// checkSequence asserts lines are exactly "line 00000".."line n-1", once each, in order.
func checkSequence(t *testing.T, lines []got, n int) {
	t.Helper()
	if len(lines) != n {
		t.Fatalf("got %d lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("line %05d", i); l.data != want {
			t.Fatalf("line %d = %q, want %q", i, l.data, want)
		}
	}
}

func TestWhereReadingStarts(t *testing.T) {
	f := newFixture(t, testOpts())
	existing := filepath.Join(f.dir, "existing.log")
	fromStart := filepath.Join(f.dir, "from-start.log")
	later := filepath.Join(f.dir, "later.log")
	write(t, existing, "old\n")
	write(t, fromStart, "kept\n")
	f.m.Reconcile([]Entry{{Path: existing, Topic: "t"}, {Path: fromStart, Topic: "t", ReadFrom: "beginning"}, {Path: later, Topic: "t"}})
	f.waitState(t, existing, StateRunning)
	f.waitState(t, later, StateWaiting)
	f.col.wait(t, 1)
	write(t, existing, "new\n")
	write(t, later, "first\n")
	l := f.col.wait(t, 3)
	want := map[string]got{
		fromStart: {fromStart, 0, "kept"},
		existing:  {existing, 4, "new"},
		later:     {later, 0, "first"},
	}
	for _, g := range l {
		if want[g.path] != g {
			t.Errorf("got %+v, want %+v", g, want[g.path])
		}
	}
	if len(l) != 3 {
		t.Fatalf("got %d lines", len(l))
	}
}

// Rename rotation, several times, while the reader is far behind: every
// line of every generation arrives once, in order, including lines the
// writer still appended to the old file after it was renamed.
func TestRotationWhileBehindLosesNothing(t *testing.T) {
	f := newFixture(t, testOpts())
	log := filepath.Join(f.dir, "app.log")
	f.m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	f.waitState(t, log, StateWaiting)
	f.col.pause()
	const per, gens = 2000, 5
	n := 0
	for g := 0; g < gens; g++ {
		fh, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fh.WriteString(numbered(n, n+per-10))
		// Give the tailer a chance to open this generation before it moves.
		f.waitOpen(t, log, fh)
		if err := os.Rename(log, fmt.Sprintf("%s.%d", log, g)); err != nil {
			t.Fatal(err)
		}
		// The application writes a little more before it reopens.
		fh.WriteString(numbered(n+per-10, n+per))
		fh.Close()
		n += per
	}
	f.col.resume()
	checkSequence(t, f.col.wait(t, n), n)
	// Every rotated file is closed once drained and idle.
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t, f.dir) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d files of %s still open", openFDs(t, f.dir), f.dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitOpen waits until the tailer holds the file fh is open on.
func (f *fixture) waitOpen(t *testing.T, path string, fh *os.File) {
	t.Helper()
	fi, _ := fh.Stat()
	id := fileID(fi)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if p, ok := f.store.Get(path); ok && p.Current.FileID == id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tailer never opened %s", id)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// openFDs counts this process's descriptors on files under dir.
func openFDs(t *testing.T, dir string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc")
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir) && !strings.HasSuffix(target, "positions.json") {
			n++
		}
	}
	return n
}

func TestTruncationReadsAgainFromZero(t *testing.T) {
	f := newFixture(t, testOpts())
	log := filepath.Join(f.dir, "t.log")
	f.m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	f.waitState(t, log, StateWaiting)
	write(t, log, numbered(0, 100))
	f.col.wait(t, 100)
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	// Wait until the truncation is seen before the file grows again.
	deadline := time.Now().Add(5 * time.Second)
	for f.m.Status()[0].Truncations == 0 {
		if time.Now().After(deadline) {
			t.Fatal("truncation not detected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	write(t, log, "after truncate\n")
	l := f.col.wait(t, 101)
	if l[100] != (got{log, 0, "after truncate"}) {
		t.Fatalf("got %+v", l[100])
	}
	if p, _ := f.store.Get(log); p.Current.Offset != int64(len("after truncate\n")) {
		t.Fatalf("committed %d", p.Current.Offset)
	}
}

func TestDeletedFileIsDrainedThenReleased(t *testing.T) {
	f := newFixture(t, testOpts())
	log := filepath.Join(f.dir, "d.log")
	f.m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	f.waitState(t, log, StateWaiting)
	f.col.pause()
	write(t, log, numbered(0, 5000)) // far more than fits in the channel
	fh, _ := os.Open(log)
	f.waitOpen(t, log, fh)
	fh.Close()
	os.Remove(log)
	f.col.resume()
	checkSequence(t, f.col.wait(t, 5000), 5000)
	f.waitState(t, log, StateWaiting)
	waitReleased(t, f.dir)
	// Recreated: read from its beginning.
	write(t, log, "reborn\n")
	if l := f.col.wait(t, 5001); l[5000].data != "reborn" || l[5000].offset != 0 {
		t.Fatalf("got %+v", l[5000])
	}
}

func TestPartialLastLineIsSentOnceComplete(t *testing.T) {
	f := newFixture(t, testOpts())
	log := filepath.Join(f.dir, "p.log")
	f.m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	f.waitState(t, log, StateWaiting)
	write(t, log, "one\ntw")
	f.col.wait(t, 1)
	time.Sleep(150 * time.Millisecond) // several poll intervals
	write(t, log, "o\n")
	l := f.col.wait(t, 2)
	if len(l) != 2 || l[1] != (got{log, 4, "two"}) {
		t.Fatalf("got %+v", l)
	}
}

func TestOversizedLinesAreSplit(t *testing.T) {
	f := newFixture(t, testOpts()) // max 1024
	log := filepath.Join(f.dir, "o.log")
	f.m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	f.waitState(t, log, StateWaiting)
	big := strings.Repeat("x", 3000)
	write(t, log, big+"\nsmall\n")
	l := f.col.wait(t, 4)
	want := []got{{log, 0, big[:1024]}, {log, 1024, big[1024:2048]}, {log, 2048, big[2048:]}, {log, 3001, "small"}}
	for i := range want {
		if l[i] != want[i] {
			t.Fatalf("piece %d = %d bytes at %d, want %d bytes at %d", i, len(l[i].data), l[i].offset, len(want[i].data), want[i].offset)
		}
	}
	if s := f.m.Status()[0]; s.Oversized != 1 {
		t.Fatalf("oversized = %d, want 1", s.Oversized)
	}
	// A line far larger than the read buffer and the budget does not stall.
	huge := strings.Repeat("y", 3<<20)
	write(t, log, huge+"\nafter\n")
	l = f.col.wait(t, 4+3*1024+1)
	if last := l[len(l)-1]; last.data != "after" {
		t.Fatalf("last = %q", last.data[:min(20, len(last.data))])
	}
	budgetDrains(t, f.m)
}

// budgetDrains fails unless, every line being acked, the read budget and
// the in-flight count come back to zero: no batch keeps its share.
func budgetDrains(t *testing.T, m *Manager) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for m.BufferedBytes() != 0 || m.InFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after every ack: %d bytes of budget held, %d lines in flight", m.BufferedBytes(), m.InFlight())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBadPathsDoNotAffectOthers(t *testing.T) {
	f := newFixture(t, testOpts())
	dirPath := filepath.Join(f.dir, "adir")
	os.Mkdir(dirPath, 0o755)
	good := filepath.Join(f.dir, "good.log")
	f.m.Reconcile([]Entry{{Path: dirPath, Topic: "t"}, {Path: good, Topic: "t"}})
	s := f.waitState(t, dirPath, StateError)
	if !strings.Contains(s.LastError, "is a directory") {
		t.Fatalf("error = %q", s.LastError)
	}
	write(t, good, "fine\n")
	if l := f.col.wait(t, 1); l[0].data != "fine" {
		t.Fatalf("got %+v", l)
	}
}

// Stop returns within ShutdownTimeout even when nothing takes the lines.
func TestStopCannotHang(t *testing.T) {
	opts := testOpts()
	opts.ShutdownTimeout = 300 * time.Millisecond
	f := newFixture(t, opts)
	log := filepath.Join(f.dir, "s.log")
	f.m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	f.waitState(t, log, StateWaiting)
	f.col.pause()
	write(t, log, numbered(0, 10000))
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	f.m.Stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Stop took %s", d)
	}
	if p, _ := f.store.Get(log); p.Current.Offset != 0 {
		t.Fatalf("offset moved to %d without any ack", p.Current.Offset)
	}
}

// Stopped in the middle of a rotated file, a new manager finds that file
// again by its identity and reads the rest of it before the new file.
func TestRestartResumesRotatedFile(t *testing.T) {
	t.Run("open works", func(t *testing.T) { testRestartResumesRotatedFile(t, false) })
	// A rotated file that cannot be opened at one start keeps its
	// position for the next: it was not lost, only unreadable.
	t.Run("open fails first", func(t *testing.T) { testRestartResumesRotatedFile(t, true) })
}

func testRestartResumesRotatedFile(t *testing.T, openFails bool) {
	opts := testOpts()
	opts.RotateWait = time.Hour
	f := newFixture(t, opts)
	log := filepath.Join(f.dir, "r.log")
	f.m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	f.waitState(t, log, StateWaiting)
	write(t, log, numbered(0, 10))
	f.col.wait(t, 10)
	os.Rename(log, log+".1")
	write(t, log, numbered(20, 30))
	f.col.wait(t, 20)
	f.m.Stop()
	f.store.Flush()
	write(t, log+".1", numbered(10, 20)) // the old file grew while we were down

	if openFails {
		open := openRotated
		openRotated = func(string) (*os.File, error) { return nil, syscall.EMFILE }
		store, err := LoadPositions(f.positions, discard())
		if err != nil {
			t.Fatal(err)
		}
		col := newCollector()
		m := NewManager(opts, store, col.out, testLogger(t))
		m.Reconcile([]Entry{{Path: log, Topic: "t"}})
		m.Stop()
		col.close()
		openRotated = open
		if err := store.Flush(); err != nil {
			t.Fatal(err)
		}
		if saved, _ := store.Get(log); len(saved.Rotated) != 1 {
			t.Fatalf("after a failed open, the rotated positions are %+v, want the one kept", saved.Rotated)
		}
	}
	store, err := LoadPositions(f.positions, discard())
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	defer col.close()
	m := NewManager(opts, store, col.out, testLogger(t))
	defer m.Stop()
	m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	l := col.wait(t, 10)
	for i, g := range l {
		if want := fmt.Sprintf("line %05d", 10+i); g.data != want || g.path != log {
			t.Fatalf("line %d = %+v, want %q", i, g, want)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if l := col.wait(t, 10); len(l) != 10 {
		t.Fatalf("%d lines, want 10 (nothing of the current file is resent)", len(l))
	}
}

// Short lines cost more budget than their bytes: a read of many empty
// lines with a small budget is sent in groups, and nothing stalls.
func TestManyShortLinesWithSmallBudget(t *testing.T) {
	opts := testOpts()
	opts.BufferBytes = 64 << 10
	f := newFixture(t, opts)
	log := filepath.Join(f.dir, "short.log")
	f.m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	f.waitState(t, log, StateWaiting)
	write(t, log, strings.Repeat("\n", 100000)+"end\n")
	l := f.col.wait(t, 100001)
	if l[100000].data != "end" || l[99999].data != "" || l[99999].offset != 99999 {
		t.Fatalf("got %+v, %+v", l[99999], l[100000])
	}
	// Awaited: a poll's read reserves budget for a moment (it flaked
	// when looked at once).
	budgetDrains(t, f.m)
}

// Reconcile starts new entries, stops removed ones (their later lines are
// not read), restarts an entry whose topic changed from its saved offset,
// and resumes a re-added entry from its saved offset.
func TestReconcile(t *testing.T) {
	f := newFixture(t, testOpts())
	a, b := filepath.Join(f.dir, "a.log"), filepath.Join(f.dir, "b.log")
	topics := func() map[string]string {
		m := map[string]string{}
		for _, s := range f.m.Status() {
			m[s.Path] = s.Topic
		}
		return m
	}
	f.m.Reconcile([]Entry{{Path: a, Topic: "ta"}})
	f.waitState(t, a, StateWaiting)
	write(t, a, "a1\n")
	f.col.wait(t, 1)

	f.m.Reconcile([]Entry{{Path: a, Topic: "ta"}, {Path: b, Topic: "tb"}}) // add
	if got := topics(); len(got) != 2 || got[b] != "tb" {
		t.Fatalf("after add: %v", got)
	}
	f.m.Reconcile([]Entry{{Path: b, Topic: "tb"}}) // remove a
	if got := topics(); len(got) != 1 || got[b] != "tb" {
		t.Fatalf("after remove: %v", got)
	}
	write(t, a, "a2 while removed\n")
	f.m.Reconcile([]Entry{{Path: b, Topic: "tb2"}, {Path: a, Topic: "ta"}}) // topic change, re-add
	if got := topics(); got[b] != "tb2" || got[a] != "ta" {
		t.Fatalf("after change: %v", got)
	}
	l := f.col.wait(t, 2)
	if l[1] != (got{a, 3, "a2 while removed"}) {
		t.Fatalf("re-added entry did not resume at its saved offset: %+v", l[1])
	}
	f.m.Reconcile(nil)
	if got := topics(); len(got) != 0 {
		t.Fatalf("after empty config: %v", got)
	}
}

// A line of exactly n×max_line_bytes whose newline comes in a later read:
// its pieces, then no empty record for the lone terminator.
func TestSplitLineTerminatorAlone(t *testing.T) {
	f := newFixture(t, testOpts()) // max 1024
	log := filepath.Join(f.dir, "x.log")
	f.m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	f.waitState(t, log, StateWaiting)
	write(t, log, strings.Repeat("x", 2048))
	f.col.wait(t, 2)
	write(t, log, "\nnext\n")
	l := f.col.wait(t, 3)
	time.Sleep(100 * time.Millisecond)
	if l = f.col.wait(t, 3); len(l) != 3 || l[2] != (got{log, 2049, "next"}) {
		t.Fatalf("got %d records, last %+v", len(l), l[len(l)-1])
	}
	if p, _ := f.store.Get(log); p.Current.Offset != 2054 {
		t.Fatalf("committed %d, want 2054", p.Current.Offset)
	}
	budgetDrains(t, f.m) // the terminator's Skip line is acked too
}

// Many files read at once with a budget their reservations can exhaust:
// a reader never holds its reservation while waiting for more, so the
// budget cannot end up all reserved with nothing in flight.
func TestManyReadersShareASmallBudget(t *testing.T) {
	opts := testOpts() // 1 MiB: batches up to 256 KiB, reads reserve 64 KiB
	opts.LineOverhead = 700
	f := newFixture(t, opts)
	const files, lines = 64, 2000
	var entries []Entry
	for i := 0; i < files; i++ {
		p := filepath.Join(f.dir, fmt.Sprintf("f%02d.log", i))
		write(t, p, strings.Repeat(strings.Repeat("x", 60)+"\n", lines))
		entries = append(entries, Entry{Path: p, Topic: "t", ReadFrom: "beginning"})
	}
	f.m.Reconcile(entries)
	f.col.wait(t, files*lines)
	budgetDrains(t, f.m)
}

// Only names shaped like a rotation of the path are adopted as missed
// rotated files: a sibling log of the same stem is another file.
func TestRotatedName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"app.log.1", true},
		{"app.log-20261125", true},
		{"app.log-2026-11-25", true},
		{"app-2026-11-25T10-00-00.000.log", true}, // lumberjack
		{"app.log.1.gz", false},
		{"app.log", false},
		{"app-audit.log", false},
		{"app.log.bak", false},
		{"app-2026-11-25.txt", false},
		{"application.log.1", false},
	} {
		if got := rotatedName(tc.name, "app.log"); got != tc.want {
			t.Errorf("rotatedName(%q, app.log) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A file truncated just before it is rotated away: the reader's new
// tracker (truncation) and the watcher's supersede (rotation) meet on the
// same file; the race detector watches, and every line still arrives.
func TestTruncateThenRotate(t *testing.T) {
	f := newFixture(t, testOpts())
	log := filepath.Join(f.dir, "tr.log")
	write(t, log, "")
	f.m.Reconcile([]Entry{{Path: log, Topic: "t"}})
	f.waitState(t, log, StateRunning)
	want := 0
	for i := 0; i < 20; i++ {
		write(t, log, fmt.Sprintf("a%02d\nb%02d\n", i, i))
		want += 2
		f.col.wait(t, want)
		if err := os.Truncate(log, 0); err != nil {
			t.Fatal(err)
		}
		write(t, log, fmt.Sprintf("c%02d\n", i))
		want++
		if err := os.Rename(log, log+"."+strconv.Itoa(i+1)); err != nil {
			t.Fatal(err)
		}
		write(t, log, "")
		f.col.wait(t, want)
	}
}

// noPoll is a poll interval no test lasts: only inotify wakes the tailers.
const noPoll = time.Hour

func (c *collector) batchCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.batches
}

// needInotify skips a test that relies on inotify alone (noPoll).
func needInotify(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("inotify is Linux only")
	}
}

// followNew follows a new empty file, app.log, with opts.
func followNew(t *testing.T, opts Options) (*fixture, string) {
	t.Helper()
	f := newFixture(t, opts)
	p := filepath.Join(f.dir, "app.log")
	write(t, p, "")
	f.m.Reconcile([]Entry{{Path: p, Topic: "t"}})
	f.waitState(t, p, StateRunning)
	return f, p
}

// followDelayed follows a new file with MaxReadDelay maxDelay and inotify
// alone, once its first line (read at once: the first after a pause) is in.
func followDelayed(t *testing.T, maxDelay time.Duration) (*fixture, string) {
	t.Helper()
	needInotify(t)
	opts := testOpts()
	opts.PollInterval = noPoll
	opts.MaxReadDelay = maxDelay
	f, p := followNew(t, opts)
	write(t, p, numbered(0, 1))
	f.col.wait(t, 1)
	return f, p
}

// writeEach appends lines from..to-1, one write(2) each, gap apart.
func writeEach(t *testing.T, path string, from, to int, gap time.Duration) {
	t.Helper()
	for i := from; i < to; i++ {
		write(t, path, numbered(i, i+1))
		time.Sleep(gap)
	}
}

func TestInotifyAloneFollowsWritesAndRotation(t *testing.T) {
	needInotify(t)
	opts := testOpts()
	opts.PollInterval = noPoll
	f, p := followNew(t, opts)
	write(t, p, numbered(0, 5))
	f.col.wait(t, 5)
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, p+".1", numbered(5, 8)) // the rotated file still grows
	f.col.wait(t, 8)
	write(t, p, numbered(8, 12)) // a new file at the path
	checkSequence(t, f.col.wait(t, 12), 12)
}

func TestReadDelayGathersATricklingFile(t *testing.T) {
	f, p := followDelayed(t, 1500*time.Millisecond)
	before := f.col.batchCount()
	// Lines written every 30 ms gather for MaxReadDelay.
	writeEach(t, p, 1, 11, 30*time.Millisecond)
	checkSequence(t, f.col.wait(t, 11), 11)
	if n := f.col.batchCount() - before; n > 2 {
		t.Fatalf("10 lines written within 300 ms came in %d batches, want them gathered into 1 or 2", n)
	}
}

func TestBusyFileCutsTheReadDelayShort(t *testing.T) {
	f, p := followDelayed(t, time.Minute) // wait() gives up after 10 s
	// Written without pause for about 200 ms: every hurryWrites inotify
	// events (one per notifyPace at most, 5 ms with one file written) end
	// the wait.
	writeEach(t, p, 1, 201, time.Millisecond)
	checkSequence(t, f.col.wait(t, 201), 201)
}

// truncateThenWrite truncates p and, once the reader has had time to
// look, writes s.
func truncateThenWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	write(t, p, s)
}

func TestTruncationSeenDuringReadDelay(t *testing.T) {
	f, p := followDelayed(t, 2*time.Second)
	// Truncated, then as long again as what was read before the delay
	// ends: the truncation must be seen when it happens, not after.
	truncateThenWrite(t, p, numbered(1, 2))
	checkSequence(t, f.col.wait(t, 2), 2)
}

func TestReadDelay(t *testing.T) {
	for _, tc := range []struct {
		n             int64
		interval, max time.Duration
		want          time.Duration
	}{
		{100, time.Second, 0, 0},                                                    // off
		{readGather, time.Millisecond, time.Second, 0},                              // busy: at once
		{readGather / 4, 10 * time.Millisecond, time.Second, 40 * time.Millisecond}, // 4 KiB in 40 ms at this rate
		{100, time.Second, time.Second, time.Second},                                // trickling: at most max
	} {
		if got := readDelay(tc.n, tc.interval, tc.max); got != tc.want {
			t.Errorf("readDelay(%d, %v, %v) = %v, want %v", tc.n, tc.interval, tc.max, got, tc.want)
		}
	}
}

func TestDirectoryWatchedAgain(t *testing.T) {
	needInotify(t)
	f := newFixture(t, testOpts())
	dir := filepath.Join(f.dir, "later")
	p := filepath.Join(dir, "app.log")
	f.m.Reconcile([]Entry{{Path: p, Topic: "t"}})
	f.waitState(t, p, StateWaiting)
	watched := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for f.m.watch.w.watched(dir) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s watched = %v, want %v", dir, !want, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	watched(false) // not there yet
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	watched(true) // created: watched from the next poll on
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	watched(false) // deleted: the kernel drops the watch
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	watched(true)
	write(t, p, numbered(0, 3))
	checkSequence(t, f.col.wait(t, 3), 3)
}

func TestRewriteSeenAfterReadDelay(t *testing.T) {
	f, p := followDelayed(t, 2*time.Second)
	write(t, p, numbered(1, 2)) // the reader waits to gather more
	time.Sleep(300 * time.Millisecond)
	// Meanwhile truncated (line 1 with it, never read: copytruncate's
	// own window) and written past the read offset again.
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	write(t, p, numbered(2, 4))
	f.col.wait(t, 3)
	time.Sleep(100 * time.Millisecond) // nothing else may come
	var got []string
	for _, l := range f.col.wait(t, 3) {
		got = append(got, l.data)
	}
	if want := "line 00000,line 00002,line 00003"; strings.Join(got, ",") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

func TestTruncationToTheSameLinesSeen(t *testing.T) {
	f, p := followDelayed(t, 2*time.Second)
	// Written again with the very line read before: only the size at the
	// truncation tells.
	truncateThenWrite(t, p, numbered(0, 2))
	got := f.col.wait(t, 3)
	if got[1].data != "line 00000" || got[1].offset != 0 || got[2].data != "line 00001" {
		t.Fatalf("after the truncation: %+v, want line 00000 at 0 again, then line 00001", got[1:])
	}
}

func TestParentRenamedWhileOldFileWritten(t *testing.T) {
	needInotify(t)
	f := newFixture(t, testOpts())
	sub := filepath.Join(f.dir, "app", "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(sub, "app.log")
	write(t, p, "")
	f.m.Reconcile([]Entry{{Path: p, Topic: "t"}})
	f.waitState(t, p, StateRunning)
	old, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// A release swaps the parent directory; the old process goes on
	// writing its file, whose events still name the path.
	if err := os.Rename(filepath.Join(f.dir, "app"), filepath.Join(f.dir, "app.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, p, "new file\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		old.WriteString("old file\n")
		f.col.mu.Lock()
		found := false
		for _, l := range f.col.lines {
			found = found || l.data == "new file"
		}
		f.col.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the file now at the path was not read within 10 s while the old one was written")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// followEmpty follows n new empty files in f's directory, once all are
// opened.
func followEmpty(t *testing.T, f *fixture, n int) []Entry {
	t.Helper()
	var entries []Entry
	for i := range n {
		p := filepath.Join(f.dir, fmt.Sprintf("f%03d.log", i))
		write(t, p, "")
		entries = append(entries, Entry{Path: p, Topic: "t"})
	}
	f.m.Reconcile(entries)
	for _, e := range entries {
		f.waitState(t, e.Path, StateRunning)
	}
	return entries
}

func TestFirstOpensShareDirectoryListings(t *testing.T) {
	var lists atomic.Int64
	readDir = func(dir string) ([]os.DirEntry, error) { lists.Add(1); return os.ReadDir(dir) }
	defer func() { readDir = os.ReadDir }()
	f := newFixture(t, testOpts())
	const n = 100
	followEmpty(t, f, n)
	// A listing per tailer would be n: the first opens, within a second
	// of one another, share a few.
	if got := lists.Load(); got > n/4 {
		t.Fatalf("%d files in one directory were opened with %d listings of it, want a few", n, got)
	}
}

// Readers that wait to hand their lines over (Kafka slow, a thousand files
// woken at once) hold a copy of the few lines each read, not a read
// buffer each.
func TestBlockedReadersHoldNoReadBuffer(t *testing.T) {
	f := newFixture(t, testOpts())
	f.col.pause()
	const n = 40
	entries := followEmpty(t, f, n)
	before := chunksHeld.Load() // batches of earlier tests, never acked
	for _, e := range entries {
		write(t, e.Path, "one line\n")
	}
	// Every reader has read its line; all but the few the paused
	// collector and its channel took are blocked handing it over.
	deadline := time.Now().Add(10 * time.Second)
	for read := int64(0); read < n; {
		read = 0
		for _, s := range f.m.Status() {
			read += s.LinesRead
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines read", read, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a read after the one that found the line
	if got := chunksHeld.Load() - before; got > 2 {
		t.Fatalf("%d read buffers held by %d readers blocked on a one-line batch each, want none", got, n)
	}
	f.col.resume()
	f.col.wait(t, n)
}

// The reader and the watcher both record a file's errors: at once, the
// same error is logged once, and no state is written unguarded (-race).
func TestFailFromReaderAndWatcherAtOnce(t *testing.T) {
	var log bytes.Buffer
	var mu sync.Mutex
	m := &Manager{log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, nil))}
	tl := newTailer(m, Entry{Path: "/nowhere/app.log", Topic: "t"})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				tl.fail(errors.New("permission denied"))
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(log.String(), "permission denied"); n != 1 {
		t.Fatalf("one error from two goroutines logged %d times, want once:\n%s", n, log.String())
	}
	tl.stats.mu.Lock()
	defer tl.stats.mu.Unlock()
	if tl.stats.state != StateError || tl.stats.lastError != "permission denied" {
		t.Fatalf("state %q, error %q; want the error", tl.stats.state, tl.stats.lastError)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// stop cancels, then pokes the reader: a reader that took the poke for one
// of the wake-ups its next read covers must still see that it is stopped.
func TestStopWhileReaderDrainsWakeUps(t *testing.T) {
	f, p := followNew(t, testOpts())
	write(t, p, numbered(0, 1))
	f.col.wait(t, 1)
	var armed atomic.Bool
	armed.Store(true)
	inHook := make(chan struct{})
	hook := func() {
		if armed.CompareAndSwap(true, false) {
			close(inHook)
			time.Sleep(200 * time.Millisecond) // stop cancels and pokes meanwhile
		}
	}
	testHookBeforeDrain.Store(&hook)
	defer testHookBeforeDrain.Store(nil)
	write(t, p, numbered(1, 2)) // the reader goes round its loop
	<-inHook
	stopped := make(chan struct{})
	go func() { f.m.Reconcile(nil); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("removing the file's entry still waits for its reader after 5 s")
	}
}

// A busy file truncated and at once written past the read offset again,
// while its reader waits its short delay: the bytes before the offset
// changed, which the size does not tell.
func TestRewriteSeenWhileBusy(t *testing.T) {
	f, p := followDelayed(t, time.Second)
	time.Sleep(1100 * time.Millisecond) // a pause: the next write is read at once
	n := 1
	for range 150 { // 100 lines every 5 ms, about 220 KB/s: busy, read every ≈ 19 ms
		write(t, p, numbered(n, n+100))
		n += 100
		time.Sleep(5 * time.Millisecond)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	// Truncated the moment the reader has caught up: it is in its
	// busy wait, not yet back to waiting for inotify.
	deadline := time.Now().Add(5 * time.Second)
	for f.m.Status()[0].BytesRead < fi.Size() {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d bytes", f.m.Status()[0].BytesRead, fi.Size())
		}
		time.Sleep(200 * time.Microsecond)
	}
	var b strings.Builder
	m := int(fi.Size()/11) + 10 // longer than what was read
	for i := range m {
		fmt.Fprintf(&b, "new  %05d\n", i)
	}
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	write(t, p, b.String())
	got := f.col.wait(t, n+m)[n:]
	if got[0].data != "new  00000" || got[0].offset != 0 || len(got) != m {
		t.Fatalf("after the rewrite: %d lines from %+v, want %d from new  00000 at 0", len(got), got[0], m)
	}
}

// Without inotify and polls, a busy file is still read as it is written:
// once a read found plenty, it is read again shortly without being told.
// The reader itself appends the next 4.4 KB before each of its first
// reads, so no writer's pace decides the outcome.
func TestBusyFileReadWithoutInotify(t *testing.T) {
	startInotify = func() (*inotify, error) { return nil, errors.New("no inotify in this test") }
	defer func() { startInotify = newInotify }()
	opts := testOpts()
	opts.PollInterval = noPoll
	f, p := followNew(t, opts)
	const chunks, lines = 20, 400 // 400 lines of 11 bytes: more than readGather
	var appended atomic.Int64
	var appendErr atomic.Value
	hook := func() {
		i := int(appended.Load())
		if i >= chunks {
			return
		}
		fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, err = fh.WriteString(numbered(i*lines, (i+1)*lines))
			fh.Close()
		}
		if err != nil {
			appendErr.Store(err)
		}
		appended.Add(1)
	}
	testHookBeforeDrain.Store(&hook)
	defer testHookBeforeDrain.Store(nil)
	f.m.mu.Lock()
	tl := f.m.tailers[p]
	f.m.mu.Unlock()
	tl.pace.poke(false) // the one wake-up the reader gets
	checkSequence(t, f.col.wait(t, chunks*lines), chunks*lines)
	if err := appendErr.Load(); err != nil {
		t.Fatal(err)
	}
}

// A directory's listing is dropped once it is past its time, when another
// is listed: it is not kept for the agent's lifetime.
func TestDirectoryListingsExpire(t *testing.T) {
	f := newFixture(t, testOpts())
	a, b := filepath.Join(f.dir, "a"), filepath.Join(f.dir, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.m.listDir(a); err != nil {
		t.Fatal(err)
	}
	f.m.listsMu.Lock()
	f.m.lists[a].at.Add(-int64(listTTL)) // made a listTTL earlier
	f.m.listsMu.Unlock()
	if _, err := f.m.listDir(b); err != nil {
		t.Fatal(err)
	}
	f.m.listsMu.Lock()
	defer f.m.listsMu.Unlock()
	if _, ok := f.m.lists[a]; ok || len(f.m.lists) != 1 {
		t.Fatalf("listings held: %d (a's kept: %v), want b's only", len(f.m.lists), ok)
	}
}

// threadReads is how many read system calls (read, pread) the calling OS
// thread has made, less what reading the count itself costs.
func threadReads(t *testing.T) func() int64 {
	t.Helper()
	count := func() int64 {
		b, err := os.ReadFile("/proc/thread-self/io")
		if err != nil {
			t.Skip("no per-thread I/O accounting:", err)
		}
		_, after, _ := strings.Cut(string(b), "syscr: ")
		n, err := strconv.ParseInt(strings.Fields(after)[0], 10, 64)
		if err != nil {
			t.Fatalf("/proc/thread-self/io: %q", b)
		}
		return n
	}
	c0 := count()
	self := count() - c0
	start := count()
	return func() int64 { return count() - start - self }
}

// openedTailer is a tailer, not started, that has opened and read the
// first two lines of its file: its steps are driven by the test.
func openedTailer(t *testing.T) (*fixture, *Tailer, string) {
	t.Helper()
	f := newFixture(t, testOpts())
	p := filepath.Join(f.dir, "app.log")
	write(t, p, numbered(1, 3))
	tl := newTailer(f.m, Entry{Path: p, Topic: "t"})
	tl.open(nil)
	t.Cleanup(func() { tl.files[0].f.Close() })
	if n := tl.readStep(t.Context()); n == 0 {
		t.Fatal("the file's first lines were not read")
	}
	return f, tl, p
}

// A wake-up looks at the file's size without allocating: with a thousand
// files written line by line that is a thousand wake-ups a second.
func TestWakeUpSizeCheckAllocatesNothing(t *testing.T) {
	f, tl, p := openedTailer(t)
	write(t, p, numbered(3, 4))
	var got int
	if allocs := testing.AllocsPerRun(100, func() { got = tl.unread() }); allocs != 0 {
		t.Errorf("a wake-up's size check cost %.0f allocations, want 0", allocs)
	}
	if got != unreadGather {
		t.Errorf("one short line unread: unread() = %d, want unreadGather (%d)", got, unreadGather)
	}
	f.col.wait(t, 2)
}

// Each read of a followed file is one system call: it also reads again
// the last bytes read, which shows a truncation (it was a pread of those
// before every read, and a fstat after every empty one).
func TestReadStepIsOneSystemCall(t *testing.T) {
	f, tl, p := openedTailer(t)
	ctx := t.Context()

	// The count is per OS thread: the goroutine must stay on this one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, c := range []struct {
		name   string
		append string
	}{
		{"a line written since", numbered(3, 4)},
		{"nothing new (a poll)", ""},
	} {
		if c.append != "" {
			write(t, p, c.append)
		}
		reads := threadReads(t)
		n := tl.readStep(ctx)
		if got := reads(); got != 1 {
			t.Errorf("%s: a read step made %d read system calls, want 1", c.name, got)
		}
		if n != int64(len(c.append)) {
			t.Errorf("%s: read %d bytes, want %d", c.name, n, len(c.append))
		}
	}
	f.col.wait(t, 3)
}

// A read that returns less than the bytes last read, though the file still
// has them (a short read, as some network and FUSE file systems give), is
// not taken for a truncation: the file is not read again from 0.
func TestShortReadIsNotATruncation(t *testing.T) {
	f, tl, p := openedTailer(t)
	write(t, p, numbered(3, 4))
	short := func(of *openFile, b []byte, off int64) (int, error) {
		return of.f.ReadAt(b[:10], off) // fewer than the 32 bytes read again
	}
	testHookPread.Store(&short)
	n := tl.readStep(t.Context())
	testHookPread.Store(nil)
	if n != 0 {
		t.Fatalf("a short read returned %d bytes, want 0 (read again later)", n)
	}
	if n := tl.readStep(t.Context()); n != int64(len(numbered(3, 4))) {
		t.Fatalf("the next read took %d bytes, want the new line's %d", n, len(numbered(3, 4)))
	}
	f.col.wait(t, 3)
	time.Sleep(50 * time.Millisecond) // nothing else may come
	got := f.col.wait(t, 3)
	var data []string
	for _, l := range got {
		data = append(data, l.data)
	}
	if tr := tl.stats.truncations.Load(); tr != 0 || strings.Join(data, ",") != "line 00001,line 00002,line 00003" {
		t.Fatalf("truncations %d, lines %v: want 0, and lines 1-3 once", tr, data)
	}
}

// A write to a file whose reader waits for it starts the reader's gather
// without waking it: the inotify goroutine looks at the size and sets the
// reader's gather timer, so a trickling file's reader is woken once per
// read, not once more for the first write after each read (a thousand
// files: a thousand wake-ups a second). On a file system that is not
// known to be local (a stalled network mount could hang that look, and
// every file's events with it), the reader looks itself, as before.
func TestFirstWriteStartsGatherWithoutWakingReader(t *testing.T) {
	for _, c := range []struct {
		name  string
		local bool
		wakes int64
	}{{"local", true, 1}, {"network", false, 2}} {
		t.Run(c.name, func(t *testing.T) {
			local := c.local
			isLocalFS = func(*os.File) bool { return local }
			defer func() { isLocalFS = localFS }()
			const maxDelay = 1500 * time.Millisecond
			f, p := followDelayed(t, maxDelay)
			if c.local {
				awaitWaiting(t, f.m, p)
			} else {
				time.Sleep(100 * time.Millisecond) // the reader settles in its wait
			}
			var wakes atomic.Int64
			count := func() { wakes.Add(1) }
			testHookWoken.Store(&count)
			defer testHookWoken.Store(nil)
			// Within max_read_delay of the last read: the line gathers.
			start := time.Now()
			write(t, p, numbered(1, 2))
			got := f.col.wait(t, 2)
			if got[1].data != "line 00001" {
				t.Fatalf("got %+v", got)
			}
			if el := time.Since(start); el < maxDelay*2/3 {
				t.Fatalf("line read after %s: it did not gather (max_read_delay %s)", el, maxDelay)
			}
			if n := wakes.Load(); n != c.wakes {
				t.Fatalf("the reader was woken %d times for one gathered line, want %d", n, c.wakes)
			}
		})
	}
}

// awaitWaiting waits until path's reader waits for a write (awaitWrite).
func awaitWaiting(t *testing.T, m *Manager, path string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		tl := m.tailers[path]
		m.mu.Unlock()
		m.watch.waitMu.Lock()
		_, ok := m.watch.waits[tl.pace]
		m.watch.waitMu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the reader never waited for a write")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Only the file systems known to be local count as local.
func TestLocalFS(t *testing.T) {
	f, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if runtime.GOOS == "linux" && !localFS(f) {
		t.Errorf("the test's temp dir (%s) is not taken as local", f.Name())
	}
	proc, err := os.Open("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc")
	}
	defer proc.Close()
	if localFS(proc) {
		t.Error("/proc is taken as a local file system")
	}
}
