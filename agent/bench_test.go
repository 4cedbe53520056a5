package agent

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logagent/logagent/etcd"
)

// BenchmarkShip measures the whole pipeline in process: a file of ~90-byte
// lines that exists at once, read from the beginning, shipped to kfake
// with acks, until every line is acknowledged.
func BenchmarkShip(b *testing.B) {
	for _, c := range clients {
		b.Run(c, func(b *testing.B) { benchShip(b, c) })
	}
}

func benchShip(b *testing.B, client string) {
	const lines = 200000
	h := newHarness(b, client)
	h.extra = "[kafka]\nlinger = 5ms\n[agent]\nlog_level = warn\n"
	h.start()
	b.SetBytes(lines * 90)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path := filepath.Join(h.dir, fmt.Sprintf("bench-%d.log", i))
		f, _ := os.Create(path)
		w := bufio.NewWriter(f)
		for j := 0; j < lines; j++ {
			fmt.Fprintf(w, "127.0.0.1 - - [25/Nov/2026:11:00:00 +0000] \"GET /api/v1/items/%08d HTTP/1.1\" 200 5123 \"-\"\n", j)
		}
		w.Flush()
		f.Close()
		b.StartTimer()
		h.put(etcd.Entry{Path: path, Topic: fmt.Sprintf("bench%d", i), ReadFrom: "beginning"})
		deadline := time.Now().Add(60 * time.Second)
		for {
			st := h.agent.Status()
			if len(st) == 1 && st[0].LinesAcked == lines {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("not all acked: %+v", st)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
