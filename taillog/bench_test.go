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
func BenchmarkReadLines(b *testing.B) { benchBurst(b, nil) }

// benchBurst is BenchmarkReadLines with the entry's multiline rule.
func benchBurst(b *testing.B, rule *Multiline) {
	const lines = 100000
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.log")
	f, _ := os.Create(path)
	w := bufio.NewWriter(f)
	for j := 0; j < lines; j++ {
		fmt.Fprintf(w, "127.0.0.1 - - [25/Nov/2026:11:00:00 +0000] \"GET /api/v1/items/%08d HTTP/1.1\" 200 5123 \"-\"\n", j)
	}
	// One more line, not waited for: with a rule, it ends the last record.
	fmt.Fprintln(w, "127.0.0.1 end")
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
		m.Reconcile([]Entry{{Path: path, Topic: "t", ReadFrom: "beginning", Multiline: rule}})
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
	tr := newTracker(store, "/f", FileID{Ino: 1}, 0, roleCurrent, 1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr.ack(tr.add(int64(i + 1)))
	}
}

// BenchmarkTrackerAckOutOfOrder: 1,024 lines in flight, acked in reverse.
func BenchmarkTrackerAckOutOfOrder(b *testing.B) {
	store, _ := LoadPositions(filepath.Join(b.TempDir(), "p.json"), discard())
	tr := newTracker(store, "/f", FileID{Ino: 1}, 0, roleCurrent, 1)
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

// benchPositions returns a store holding n paths, as the agent following n
// files would: every tenth path also has a rotated-away file being read.
func benchPositions(b *testing.B, n int) (*Positions, []string) {
	store, err := LoadPositions(filepath.Join(b.TempDir(), "p.json"), discard())
	if err != nil {
		b.Fatal(err)
	}
	paths := make([]string, n)
	for k := range paths {
		paths[k] = fmt.Sprintf("/var/log/app/service-%04d/access.log", k)
		store.SetCurrent(paths[k], FilePos{FileID: FileID{2049, 1310720 + uint64(k)}, Offset: 73_400_320, Gen: GenID(k + 1)})
		if k%10 == 0 {
			store.SetRotated(paths[k], FilePos{FileID: FileID{2049, 2621440 + uint64(k)}, Offset: 104_857_600, Gen: GenID(k+1) << 32})
		}
	}
	return store, paths
}

// BenchmarkPositionsFlush: one atomic save (encode, write, fsync, rename) of
// 1,000 paths, every one of them changed since the last save.
func BenchmarkPositionsFlush(b *testing.B) {
	store, paths := benchPositions(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, path := range paths {
			store.SetCurrent(path, FilePos{FileID: FileID{2049, 1310720 + uint64(k)}, Offset: 73_400_320 + int64(i), Gen: 9})
		}
		if err := store.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPositionsEncode: what Flush does under the lock for 1,000 paths,
// without the write and fsync that dominate BenchmarkPositionsFlush.
func BenchmarkPositionsEncode(b *testing.B) {
	store, _ := benchPositions(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		store.mu.Lock()
		store.buf = store.appendFile(store.buf[:0])
		store.mu.Unlock()
	}
}
