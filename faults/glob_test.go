package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logagent/logagent/internal/testenv"
)

// A glob entry (#17) on the built binary: files created after the start in
// directories created after it (**), excluded names, and a kill -9 while
// files are written, more files appearing while the agent is stopped.
// Every line of every matched file arrives, with its file's path; no line
// of an excluded file does.
func TestGlobKillRestart(t *testing.T) {
	forClients(t, oneClient, func(t *testing.T, client string) {
		const files, per = 24, 400
		e := newEnv(t, "17-glob-kill-restart", client, envOpts{})
		logs := filepath.Join(e.dir, "logs")
		if err := os.Mkdir(logs, 0o755); err != nil {
			t.Fatal(err)
		}
		e.putRaw(fmt.Sprintf(`[{"path": %q, "topic": "globbed", "exclude": ["*-debug.log"]}]`, filepath.Join(logs, "**", "*.log")))
		a := e.startAgent()
		a.waitLog("collecting glob", 15*time.Second)

		path := func(k int) string {
			return filepath.Join(logs, fmt.Sprintf("svc-%d", k%6), "sub", fmt.Sprintf("app-%02d.log", k))
		}
		written := make([]int, files)
		writeSome := func(from, to, n int) {
			for k := from; k < to; k++ {
				os.MkdirAll(filepath.Dir(path(k)), 0o755)
				fh, err := os.OpenFile(path(k), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n && written[k] < per; i++ {
					fmt.Fprintf(fh, "file %02d line %05d\n", k, written[k])
					written[k]++
				}
				fh.Close()
				dbg := filepath.Join(filepath.Dir(path(k)), fmt.Sprintf("app-%02d-debug.log", k))
				os.WriteFile(dbg, []byte("excluded\n"), 0o644)
			}
		}
		writeSome(0, files/2, per/2)
		time.Sleep(500 * time.Millisecond) // the agent reads some of them
		a.kill()
		writeSome(0, files/2, per)       // the rest of the first files
		writeSome(files/2, files, per/2) // new files while stopped
		a2 := e.startAgent()
		writeSome(files/2, files, per)

		c, err := testenv.NewConsumer(e.brokers(), "globbed")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		counts := make([][]int, files)
		for k := range counts {
			counts[k] = make([]int, per)
		}
		seen, bad := 0, 0
		for deadline := time.Now().Add(60 * time.Second); seen < files*per && time.Now().Before(deadline); {
			recs, _ := c.Poll(context.Background(), 200*time.Millisecond)
			for _, r := range recs {
				var k, i int
				if _, err := fmt.Sscanf(string(r.Value), "file %d line %d", &k, &i); err != nil || k >= files || i >= per {
					bad++
					t.Errorf("unexpected record %q (path %s)", clip(r.Value), r.Headers["path"])
					continue
				}
				if r.Headers["path"] != path(k) {
					bad++
					t.Errorf("file %d line %d: path header %q, want %q", k, i, r.Headers["path"], path(k))
				}
				if counts[k][i] == 0 {
					seen++
				}
				counts[k][i]++
			}
		}
		a2.stop()
		lost, dup := 0, 0
		for k := range counts {
			for i, n := range counts[k] {
				if n == 0 {
					lost++
					if lost < 5 {
						t.Errorf("file %d line %d lost", k, i)
					}
				}
				dup += max(0, n-1)
			}
		}
		e.report(lost, dup, files*per, fmt.Sprintf("bad=%d", bad))
		if lost > 0 || bad > 0 {
			t.Fatalf("lost=%d bad=%d", lost, bad)
		}
	})
}
