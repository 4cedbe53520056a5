package taillog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// stoppedAgent runs managers one after the other on the same positions
// file, as agent runs across a stop.
type stoppedAgent struct {
	t    *testing.T
	dir  string
	path string // the entry's path
	opts Options
	m    *Manager
	col  *collector
}

func newStoppedAgent(t *testing.T) *stoppedAgent {
	dir := t.TempDir()
	a := &stoppedAgent{t: t, dir: dir, path: filepath.Join(dir, "a.log"), opts: testOpts()}
	a.opts.RotateWait = time.Hour // a rotated file stays held: its lines are counted, not its closing
	return a
}

// start runs a manager for the entry (read from the beginning).
func (a *stoppedAgent) start() {
	a.t.Helper()
	store, err := LoadPositions(filepath.Join(a.dir, "positions.json"), discard())
	if err != nil {
		a.t.Fatal(err)
	}
	a.col = newCollector()
	a.m = NewManager(a.opts, store, a.col.out, testLogger(a.t))
	m, col := a.m, a.col
	a.t.Cleanup(func() { m.Stop(); col.close() })
	a.m.Reconcile([]Entry{{Path: a.path, Topic: "t", ReadFrom: "beginning"}})
}

// stop stops the manager as SIGTERM does and saves the positions.
func (a *stoppedAgent) stop() {
	a.t.Helper()
	a.m.Stop()
	if err := a.m.store.Flush(); err != nil {
		a.t.Fatal(err)
	}
}

// want waits for exactly the lines given (data), in order, and no more.
func (a *stoppedAgent) want(lines ...string) []got {
	a.t.Helper()
	l := a.col.wait(a.t, len(lines))
	budgetDrains(a.t, a.m)
	time.Sleep(100 * time.Millisecond) // two polls: anything more would be read by now
	l = a.col.wait(a.t, len(lines))
	if len(l) != len(lines) {
		a.t.Fatalf("got %d lines, want %d: %v", len(l), len(lines), tail(l))
	}
	for i, g := range l {
		if g.data != lines[i] || g.path != a.path {
			a.t.Fatalf("line %d = %+v, want %q", i, g, lines[i])
		}
	}
	return l
}

// shippedThenStopped is an agent stopped (as by SIGTERM) once the 10
// lines of a.log are shipped.
func shippedThenStopped(t *testing.T) *stoppedAgent {
	a := newStoppedAgent(t)
	write(t, a.path, numbered(0, 10))
	a.start()
	a.want(seq(0, 10)...)
	a.stop()
	return a
}

// seq is "line 0000k" for k in [from, to).
func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("line %05d", i))
	}
	return out
}

// Each change made while the agent is stopped (#24).
func TestChangesWhileStopped(t *testing.T) {
	t.Run("nothing changed", func(t *testing.T) {
		a := shippedThenStopped(t)
		a.start()
		write(t, a.path, numbered(10, 12))
		a.want(seq(10, 12)...)
		if s := a.m.Status()[0]; s.Truncations != 0 || s.Rotations != 0 {
			t.Fatalf("truncations %d, rotations %d, want none", s.Truncations, s.Rotations)
		}
	})
	t.Run("rename rotation", func(t *testing.T) {
		a := shippedThenStopped(t)
		write(t, a.path, numbered(10, 15))
		os.Rename(a.path, a.path+".1")
		write(t, a.path, numbered(15, 18))
		a.start()
		l := a.want(seq(10, 18)...)
		if l[0].offset != 110 || l[5].offset != 0 {
			t.Fatalf("offsets %d and %d, want 110 (a.log.1 from the saved offset) and 0 (the new a.log)", l[0].offset, l[5].offset)
		}
	})
	t.Run("two rotations", func(t *testing.T) {
		a := shippedThenStopped(t)
		write(t, a.path, numbered(10, 15))
		os.Rename(a.path, a.path+".1")
		write(t, a.path, numbered(15, 20))
		os.Rename(a.path+".1", a.path+".2")
		os.Rename(a.path, a.path+".1")
		write(t, a.path, numbered(20, 22))
		a.start()
		a.want(seq(10, 22)...)
	})
	t.Run("copytruncate regrown past the offset", func(t *testing.T) {
		a := shippedThenStopped(t)
		if err := os.Truncate(a.path, 0); err != nil {
			t.Fatal(err)
		}
		write(t, a.path, numbered(10, 30))
		a.start()
		a.want(seq(10, 30)...)
		if s := a.m.Status()[0]; s.Truncations != 1 {
			t.Fatalf("truncations %d, want 1", s.Truncations)
		}
	})
	t.Run("truncate and rewrite to the same size", func(t *testing.T) {
		a := shippedThenStopped(t)
		if err := os.Truncate(a.path, 0); err != nil {
			t.Fatal(err)
		}
		write(t, a.path, numbered(10, 20))
		a.start()
		a.want(seq(10, 20)...)
	})
	t.Run("opened at the end, rewritten before a line was read", func(t *testing.T) {
		a := newStoppedAgent(t)
		write(t, a.path, numbered(0, 10))
		store, _ := LoadPositions(filepath.Join(a.dir, "positions.json"), discard())
		col := newCollector()
		m := NewManager(a.opts, store, col.out, testLogger(t))
		m.Reconcile([]Entry{{Path: a.path, Topic: "t"}}) // read_from end
		(&fixture{m: m}).waitState(t, a.path, StateRunning)
		m.Stop()
		store.Flush()
		col.close()
		if err := os.Truncate(a.path, 0); err != nil {
			t.Fatal(err)
		}
		write(t, a.path, numbered(10, 20))
		a.start()
		a.want(seq(10, 20)...)
	})
	t.Run("deleted", func(t *testing.T) {
		a := newStoppedAgent(t)
		a.opts.ShutdownTimeout = 100 * time.Millisecond
		write(t, a.path, numbered(0, 10))
		a.start()
		a.want(seq(0, 10)...)
		a.col.pause() // Kafka stops taking lines: 5 read, none acked
		write(t, a.path, numbered(10, 15))
		for s := a.m.Status()[0]; s.LinesRead < 15; s = a.m.Status()[0] {
			time.Sleep(5 * time.Millisecond)
		}
		a.m.Stop()
		a.m.store.Flush()
		os.Remove(a.path)
		a.start()
		a.want()
		if s := a.m.Status()[0]; s.LostBytes != 55 {
			t.Fatalf("lost bytes %d, want 55 (5 lines read, never acked)", s.LostBytes)
		}
		a.stop()
		a.start() // reported once
		if s := a.m.Status()[0]; s.LostBytes != 0 {
			t.Fatalf("lost bytes %d at the next start, want 0 (reported once)", s.LostBytes)
		}
		write(t, a.path, numbered(15, 16))
		a.want(seq(15, 16)...)
	})
}

// A rotated file whose inode now holds other content is not read: its
// inode was reused (#24).
func TestReusedInodeIsNotResumed(t *testing.T) {
	a := shippedThenStopped(t)
	// The same inode under a rotated name, other bytes before the offset.
	os.Rename(a.path, a.path+".1")
	if err := os.WriteFile(a.path+".1", []byte(numbered(50, 70)), 0o644); err != nil {
		t.Fatal(err)
	}
	a.start()
	a.want()
}

// The fingerprint and size saved with a position are written as
// encoding/json writes them, load again, and are left out when zero: an
// older positions file loads as before.
func TestPositionsKeepCheckAndSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions.json")
	p, _ := LoadPositions(path, discard())
	cur := FilePos{FileID: FileID{1, 2}, Offset: 300, Gen: 5, Check: Check{At: 290, Len: 32, Sum: 1<<64 - 1}, Size: 400}
	rot := FilePos{FileID: FileID{1, 3}, Offset: 7, Gen: 6}
	p.SetCurrent("/a", cur)
	p.SetRotated("/a", rot)
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var got bytes.Buffer
	json.Compact(&got, data)
	exp, _ := json.Marshal(positionsFile{Version: 1, Files: map[string]*PathPos{"/a": {Current: cur, Rotated: []FilePos{rot}}}})
	if !bytes.Equal(got.Bytes(), exp) {
		t.Fatalf("saved %s\nwant %s", got.Bytes(), exp)
	}
	if !bytes.Contains(exp, []byte(`{"dev":1,"ino":3,"offset":7,"file":"0000000000000006"}`)) {
		t.Fatalf("zero check and size written: %s", exp)
	}
	q, err := LoadPositions(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := q.Get("/a"); a.Current != cur || a.Rotated[0] != rot {
		t.Fatalf("loaded %+v", a)
	}
}
