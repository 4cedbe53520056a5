package taillog

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
)

// refuse makes statEntry (if stat) and openEntry fail with EACCES for
// path while the returned flag is set, as for an agent without read
// permission (the tests run as root, who reads anything).
func refuse(t *testing.T, path string, stat bool) *atomic.Bool {
	t.Helper()
	var on atomic.Bool
	on.Store(true)
	open, st := openEntry, statEntry
	openEntry = func(p string) (*os.File, fs.FileInfo, error) {
		if p == path && on.Load() {
			return nil, nil, &fs.PathError{Op: "open", Path: p, Err: syscall.EACCES}
		}
		return open(p)
	}
	if stat {
		statEntry = func(p string) (fs.FileInfo, error) {
			if p == path && on.Load() {
				return nil, &fs.PathError{Op: "stat", Path: p, Err: syscall.EACCES}
			}
			return st(p)
		}
	}
	// After the managers' Stop (cleanups run last added first).
	t.Cleanup(func() { openEntry, statEntry = open, st })
	return &on
}

// A file that exists when its entry appears, unreadable then: the lines
// appended before it becomes readable are read, not skipped (#23).
func TestStartOffsetTakenWhenEntryAppears(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	write(t, p, "old line\n")
	readable := refuse(t, p, false)
	f := newFixture(t, testOpts())
	f.m.Reconcile([]Entry{{Path: p, Topic: "t"}})
	f.waitState(t, p, StateError)
	write(t, p, numbered(0, 3))
	readable.Store(false)
	l := f.col.wait(t, 3)
	checkSequence(t, l, 3)
	if l[0].offset != int64(len("old line\n")) {
		t.Fatalf("first line at %d, want %d (the file's end when its entry appeared)", l[0].offset, len("old line\n"))
	}
}

// The start offset is saved with the positions: an agent restarted while
// the file is still unreadable keeps it (#23).
func TestStartOffsetKeptAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	write(t, p, "old line\n")
	unreadable := refuse(t, p, false)
	positions := filepath.Join(dir, "positions.json")
	run := func() (*Manager, *collector) {
		store, err := LoadPositions(positions, discard())
		if err != nil {
			t.Fatal(err)
		}
		col := newCollector()
		m := NewManager(testOpts(), store, col.out, testLogger(t))
		t.Cleanup(func() { m.Stop(); col.close() })
		m.Reconcile([]Entry{{Path: p, Topic: "t"}})
		return m, col
	}
	m, _ := run()
	(&fixture{m: m}).waitState(t, p, StateError)
	m.Stop()
	if err := m.store.Flush(); err != nil {
		t.Fatal(err)
	}
	write(t, p, numbered(0, 2))
	m, col := run()
	(&fixture{m: m}).waitState(t, p, StateError)
	write(t, p, numbered(2, 3))
	unreadable.Store(false)
	checkSequence(t, col.wait(t, 3), 3)
}

// A path that cannot even be stat'ed when its entry appears names a file
// that appears later: read from its beginning.
func TestStartWhenStatFailsTooIsTheBeginning(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	write(t, p, numbered(0, 1))
	unreadable := refuse(t, p, true)
	f := newFixture(t, testOpts())
	f.m.Reconcile([]Entry{{Path: p, Topic: "t"}})
	f.waitState(t, p, StateError)
	write(t, p, numbered(1, 3))
	unreadable.Store(false)
	checkSequence(t, f.col.wait(t, 3), 3)
}
