package taillog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Batches are reused once acked, but a pinned batch keeps its bytes: a
// consumer that may still read a line (sarama, after a failed send) sees
// it unchanged while later lines are read and acked.
func TestPinnedBatchKeepsItsBytes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.log")
	store, _ := LoadPositions(filepath.Join(dir, "p.json"), discard())
	out := make(chan *Batch, 64)
	m := NewManager(Options{MaxLineBytes: 512 << 10, BufferBytes: 1 << 20, RotateWait: time.Second,
		PollInterval: 50 * time.Millisecond, ShutdownTimeout: time.Second}, store, out, discard())
	defer m.Stop()
	write := func(from, n int) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < from+n; i++ {
			fmt.Fprintf(f, "line %06d\n", i)
		}
		f.Close()
	}
	take := func(n int) []*Batch {
		var bs []*Batch
		for got := 0; got < n; {
			select {
			case b := <-out:
				bs = append(bs, b)
				got += len(b.Lines)
			case <-time.After(10 * time.Second):
				t.Fatalf("got %d of %d lines", got, n)
			}
		}
		return bs
	}
	write(0, 100)
	m.Reconcile([]Entry{{Path: path, Topic: "t", ReadFrom: "beginning"}})
	var kept [][]byte
	for _, b := range take(100) {
		lines := b.Lines
		for i := range lines {
			kept = append(kept, lines[i].Data)
			lines[i].Pin()
			lines[i].Ack()
		}
	}
	// Many more reads and acks: unpinned batches and chunks go round the pools.
	for round := 0; round < 20; round++ {
		write(100+round*100, 100)
		for _, b := range take(100) {
			lines := b.Lines
			for i := range lines {
				lines[i].Ack()
			}
		}
	}
	budgetDrains(t, m) // pinned batches give their budget back all the same
	for i, d := range kept {
		if want := fmt.Sprintf("line %06d", i); !bytes.Equal(d, []byte(want)) {
			t.Fatalf("pinned line %d now reads %q, want %q", i, d, want)
		}
	}
}
