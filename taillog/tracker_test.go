package taillog

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestTrackerWatermarkWithOutOfOrderAcks(t *testing.T) {
	store, _ := LoadPositions(filepath.Join(t.TempDir(), "p.json"), discard())
	id := FileID{Dev: 1, Ino: 2}
	tr := newTracker(store, "/f", id, 100, roleCurrent, 1)
	// Lines end at 110, 120, ... 200 (ten lines of ten bytes from 100).
	var seqs []uint64
	for end := int64(110); end <= 200; end += 10 {
		seqs = append(seqs, tr.add(end))
	}
	committed := func() int64 { p, _ := store.Get("/f"); return p.Current.Offset }
	for _, tc := range []struct {
		ack  int
		want int64
	}{
		{3, 100}, // a later line acked first: nothing moves
		{1, 100},
		{0, 120}, // 0 and 1 contiguous now (2 missing)
		{2, 140}, // fills the gap up to 3
		{9, 140},
		{9, 140}, // a duplicate ack changes nothing
		{5, 140},
		{4, 160},
		{6, 170}, {8, 170}, {7, 200},
	} {
		tr.ack(seqs[tc.ack])
		if got := committed(); got != tc.want {
			t.Fatalf("after ack of line %d: committed %d, want %d", tc.ack, got, tc.want)
		}
	}
	if _, n := tr.position(); n != 0 {
		t.Fatalf("%d lines still in flight", n)
	}
}

func TestTrackerGrowsAndWaits(t *testing.T) {
	store, _ := LoadPositions(filepath.Join(t.TempDir(), "p.json"), discard())
	tr := newTracker(store, "/f", FileID{Ino: 1}, 0, roleCurrent, 1)
	const n = 1000 // beyond the initial ring size, with the head moving
	seqs := make([]uint64, 0, n)
	for i := 1; i <= n; i++ {
		seqs = append(seqs, tr.add(int64(i)))
		if i%3 == 0 {
			tr.ack(seqs[0])
			seqs = seqs[1:]
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.wait(ctx); err == nil {
		t.Fatal("wait returned while lines are in flight")
	}
	done := make(chan error)
	go func() { done <- tr.wait(context.Background()) }()
	for i := len(seqs) - 1; i >= 0; i-- { // reverse order: worst case for the window
		tr.ack(seqs[i])
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if off, _ := tr.position(); off != n {
		t.Fatalf("committed %d, want %d", off, n)
	}
}

func TestTrackerRoles(t *testing.T) {
	store, _ := LoadPositions(filepath.Join(t.TempDir(), "p.json"), discard())
	a := newTracker(store, "/f", FileID{Ino: 1}, 5, roleCurrent, 1)
	s := a.add(10)
	a.setRole(roleRotated)
	b := newTracker(store, "/f", FileID{Ino: 2}, 0, roleCurrent, 1)
	a.ack(s)
	p, _ := store.Get("/f")
	if p.Current != (FilePos{FileID: FileID{Ino: 2}, Offset: 0, Gen: 1}) || len(p.Rotated) != 1 || p.Rotated[0] != (FilePos{FileID: FileID{Ino: 1}, Offset: 10, Gen: 1}) {
		t.Fatalf("positions %+v", p)
	}
	// A detached tracker (truncated content) moves nothing.
	s = b.add(7)
	b.setRole(roleDetached)
	b.ack(s)
	if p, _ := store.Get("/f"); p.Current.Offset != 0 {
		t.Fatalf("detached tracker moved the offset to %d", p.Current.Offset)
	}
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
