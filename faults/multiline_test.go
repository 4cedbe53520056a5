package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logagent/logagent/internal/testenv"
)

// Multiline records (#17) on the built binary: stack-trace-like records
// of 1 to 8 lines, a rename rotation in the middle of one (the writer
// finishes it in the old file), and a stop (SIGTERM, or kill -9) while a
// record is half written and held by the agent; the rest is written while
// it is stopped. Every record arrives whole, with its first line's offset:
// none split by the rotation or the restart, none lost; none twice after
// SIGTERM.
func TestMultilineRestart(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			forClients(t, oneClient, func(t *testing.T, client string) {
				multilineRestart(t, "17-multiline-"+strings.ReplaceAll(sig.String(), " ", "-"), client, sig)
			})
		})
	}
}

// mlRecord is record i as written: a first line with its number, frames,
// sometimes a Caused by.
func mlRecord(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rec %06d 2026-12-06 10:00:00 ERROR request failed\n", i)
	if i%2 == 1 {
		b.WriteString("java.lang.IllegalStateException: pool closed\n")
	}
	for j := 0; j < i%5; j++ {
		fmt.Fprintf(&b, "\tat com.example.Frame%d.call(Frame.java:%d)\n", j, 10+j)
	}
	if i%7 == 0 {
		b.WriteString("Caused by: java.io.IOException: Broken pipe\n\t... 12 more\n")
	}
	return b.String()
}

func multilineRestart(t *testing.T, name, client string, sig syscall.Signal) {
	const n = 2000
	e := newEnv(t, name, client, envOpts{})
	path := filepath.Join(e.dir, "app.log")
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// The offset each record starts at, in its file.
	offs := make([]int64, n)
	var off int64
	writeRec := func(s string) {
		if _, err := fh.WriteString(s); err != nil {
			t.Fatal(err)
		}
		off += int64(len(s))
	}
	e.putRaw(fmt.Sprintf(`[{"path": %q, "topic": "ml", "read_from": "beginning",
	  "multiline": {"start": "^rec \\d+ ", "timeout": "3s"}}]`, path))
	a := e.startAgent()
	a.waitLog("collecting", 15*time.Second)

	for i := 0; i < n/2; i++ {
		r := mlRecord(i)
		offs[i] = off
		if i != n/4 {
			writeRec(r)
			continue
		}
		// Renamed away in the middle of a record: the writer ends it in
		// the old file, then opens the new one.
		cut := strings.IndexByte(r, '\n') + 1
		writeRec(r[:cut])
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		writeRec(r[cut:])
		fh.Close()
		if fh, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			t.Fatal(err)
		}
		off = 0
	}
	// Half of the next record: held by the agent, which stops then.
	half := mlRecord(n / 2)
	cut := strings.IndexByte(half, '\n') + 1
	offs[n/2] = off
	writeRec(half[:cut])

	c, err := testenv.NewConsumer(e.brokers(), "ml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	counts := make([]int, n)
	bad := 0
	seen := 0
	consume := func(want int, within time.Duration) {
		deadline := time.Now().Add(within)
		for seen < want && time.Now().Before(deadline) {
			recs, _ := c.Poll(context.Background(), 200*time.Millisecond)
			for _, r := range recs {
				v := string(r.Value)
				i, err := strconv.Atoi(strings.Fields(v + " x")[1])
				if !strings.HasPrefix(v, "rec ") || err != nil || i < 0 || i >= n {
					bad++
					t.Errorf("not a record: %q", clip(r.Value))
					continue
				}
				if want := strings.TrimSuffix(mlRecord(i), "\n"); v != want {
					bad++
					t.Errorf("record %d split or damaged: %q, want %q", i, v, want)
				}
				if o := strconv.FormatInt(offs[i], 10); r.Headers["offset"] != o {
					bad++
					t.Errorf("record %d: offset header %s, want %s", i, r.Headers["offset"], o)
				}
				if counts[i] == 0 {
					seen++
				}
				counts[i]++
			}
		}
	}
	// Every record before the half-written one, which the half's first
	// line ended.
	consume(n/2, 60*time.Second)
	if seen < n/2 {
		t.Fatalf("%d of %d records arrived before the stop", seen, n/2)
	}
	if sig == syscall.SIGTERM {
		a.stop()
	} else {
		a.kill()
	}
	writeRec(half[cut:])
	for i := n/2 + 1; i < n; i++ {
		offs[i] = off
		writeRec(mlRecord(i))
	}
	fh.Close()
	a2 := e.startAgent()
	// The last record comes once its timeout passes: the file is quiet.
	consume(n, 60*time.Second)
	a2.stop()
	lost, dup := 0, 0
	for i, k := range counts {
		if k == 0 {
			lost++
			if lost < 5 {
				t.Errorf("record %d lost", i)
			}
		}
		dup += max(0, k-1)
	}
	e.report(lost, dup, n, fmt.Sprintf("bad=%d", bad))
	if lost > 0 {
		t.Fatalf("%d records lost", lost)
	}
	if sig == syscall.SIGTERM && dup > 0 {
		t.Fatalf("%d records sent twice after a clean stop", dup)
	}
}
