package taillog

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// BenchmarkMultilineJoinsNothing: BenchmarkReadLines's burst read plainly
// and with a multiline rule whose start matches every line (#17: the
// rule's cost alone; goal ≤ 1.15× the plain read).
func BenchmarkMultilineJoinsNothing(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchBurst(b, nil) })
	b.Run("multiline", func(b *testing.B) {
		benchBurst(b, &Multiline{Start: regexp.MustCompile(`^\d`), MaxLines: 500, MaxBytes: 1 << 20, Timeout: time.Minute})
	})
}

// BenchmarkGlobVsListed: 1,000 files followed through one ** glob in a
// tree that holds 10,000 other files, against the same files listed one
// by one. An operation is one line appended to each of the 1,000 files
// and read (#17: the glob must cost no more than the list); setup_ms is
// the start (the walk and 1,000 tailers), not timed.
func BenchmarkGlobVsListed(b *testing.B) {
	root := b.TempDir()
	var matched []string
	for d := 0; d < 100; d++ {
		dir := filepath.Join(root, fmt.Sprintf("svc-%03d", d), "logs")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for k := 0; k < 100; k++ {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("other-%03d.txt", k)), nil, 0o644)
		}
		for k := 0; k < 10; k++ {
			p := filepath.Join(dir, fmt.Sprintf("app-%02d.log", k))
			os.WriteFile(p, nil, 0o644)
			matched = append(matched, p)
		}
	}
	line := []byte("127.0.0.1 - - [25/Nov/2026:11:00:00 +0000] \"GET /api/v1/items/00000001 HTTP/1.1\" 200 5123 \"-\"\n")
	for _, bc := range []struct {
		name    string
		entries []Entry
	}{
		{"glob", []Entry{{Path: filepath.Join(root, "**", "*.log"), Topic: "t"}}},
		{"listed", func() (es []Entry) {
			for _, p := range matched {
				es = append(es, Entry{Path: p, Topic: "t"})
			}
			return es
		}()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			store, _ := LoadPositions(filepath.Join(b.TempDir(), "p.json"), discard())
			out := make(chan *Batch, 64)
			start := time.Now()
			m := NewManager(Options{MaxLineBytes: 512 << 10, BufferBytes: 16 << 20, RotateWait: time.Second,
				PollInterval: time.Second, ShutdownTimeout: time.Second}, store, out, discard())
			defer m.Stop()
			m.Reconcile(bc.entries)
			if n := len(m.Status()); n != len(matched) {
				b.Fatalf("%d files followed, want %d", n, len(matched))
			}
			setup := time.Since(start)
			fhs := make([]*os.File, len(matched))
			for k, p := range matched {
				fhs[k], _ = os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0o644)
				defer fhs[k].Close()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, fh := range fhs {
					fh.Write(line)
				}
				for n := 0; n < len(matched); {
					lines := (<-out).Lines
					n += len(lines)
					for k := range lines {
						lines[k].Ack()
					}
				}
			}
			b.ReportMetric(float64(setup.Milliseconds()), "setup_ms")
		})
	}
}
