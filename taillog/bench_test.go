package taillog

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkReadLines: a tailer reading a file of ~90-byte lines that exists
// at once, with a consumer that acks every batch (the Kafka side is free).
func BenchmarkReadLines(b *testing.B) {
	const lines = 100000
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.log")
	f, _ := os.Create(path)
	w := bufio.NewWriter(f)
	for j := 0; j < lines; j++ {
		fmt.Fprintf(w, "127.0.0.1 - - [25/Nov/2026:11:00:00 +0000] \"GET /api/v1/items/%08d HTTP/1.1\" 200 5123 \"-\"\n", j)
	}
	w.Flush()
	f.Close()
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		store, _ := LoadPositions(filepath.Join(dir, fmt.Sprintf("p%d.json", i)), discard())
		out := make(chan *Batch, 64)
		m := NewManager(Options{MaxLineBytes: 512 << 10, BufferBytes: 16 << 20, RotateWait: time.Second,
			PollInterval: time.Second, ShutdownTimeout: time.Second}, store, out, discard())
		m.Reconcile([]Entry{{Path: path, Topic: "t", ReadFrom: "beginning"}})
		for n := 0; n < lines; {
			lines := (<-out).Lines
			n += len(lines)
			for k := range lines {
				lines[k].Ack()
			}
		}
		m.Stop()
	}
}

// BenchmarkTrackerAck: the ack bookkeeping of one line, acks in order.
func BenchmarkTrackerAck(b *testing.B) {
	store, _ := LoadPositions(filepath.Join(b.TempDir(), "p.json"), discard())
	tr := newTracker(store, "/f", FileID{Ino: 1}, 0, roleCurrent)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr.ack(tr.add(int64(i + 1)))
	}
}

// BenchmarkTrackerAckOutOfOrder: 1,024 lines in flight, acked in reverse.
func BenchmarkTrackerAckOutOfOrder(b *testing.B) {
	store, _ := LoadPositions(filepath.Join(b.TempDir(), "p.json"), discard())
	tr := newTracker(store, "/f", FileID{Ino: 1}, 0, roleCurrent)
	seqs := make([]uint64, 1024)
	b.ReportAllocs()
	off := int64(0)
	for i := 0; i < b.N; i += len(seqs) {
		for k := range seqs {
			off += 90
			seqs[k] = tr.add(off)
		}
		for k := len(seqs) - 1; k >= 0; k-- {
			tr.ack(seqs[k])
		}
	}
}

// BenchmarkPositionsFlush: one atomic save (write, fsync, rename) of 100 paths.
func BenchmarkPositionsFlush(b *testing.B) {
	store, _ := LoadPositions(filepath.Join(b.TempDir(), "p.json"), discard())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 100; k++ {
			store.SetCurrent(fmt.Sprintf("/var/log/app/file-%03d.log", k), FilePos{FileID{1, uint64(k)}, int64(i)})
		}
		if err := store.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
