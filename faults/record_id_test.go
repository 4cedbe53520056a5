package faults

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/logagent/logagent/internal/testenv"
)

// Case 14: a record's id (its key, host:file:offset) identifies its line
// exactly. The lines are written across two kill -9, rename rotations, a
// copytruncate (whose copy is then left where a missed rotation would be
// looked for) and a clean restart: keeping one record per key gives
// exactly the lines written, no more and no fewer, though the kills make
// the agent send lines twice. (Rotations while the agent is down are
// issue #24's.)
func TestRecordIDsDeduplicate(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		e := newEnv(t, "14-record-ids", client, envOpts{})
		path := filepath.Join(e.dir, "app.log")
		w := newWriter(t, path)
		e.putConfig(entry{Path: path, Topic: "ids", ReadFrom: "beginning"})
		ids := newIDChecker(t, e, "ids")
		a := e.startAgent()
		a.waitLog("file opened", 15*time.Second)

		// written waits until every line written so far was delivered.
		delivered := func(what string) {
			t.Helper()
			if n := w.written(); !ids.wait(n, 30*time.Second) {
				t.Fatalf("%s: %d of %d lines delivered", what, ids.distinctSeqs(n), n)
			}
		}
		// Kill -9 while lines are on their way: those delivered since the
		// last positions flush are sent again by the next run.
		w.write(20000)
		ids.wait(5000, 30*time.Second)
		a.kill()
		a = e.startAgent()
		delivered("after the first kill")
		w.rotate()
		w.write(5000)
		delivered("after a rotation")

		// copytruncate, then the application recreates its log: the copy
		// (path-1) must not be read again as a missed rotation.
		copyFile(t, path, path+"-1")
		w.truncate()
		w.write(3000)
		delivered("after copytruncate")
		w.rotate()
		w.write(3000)
		delivered("after the rotation that follows copytruncate")

		// A clean stop, lines written while the agent is down, and a
		// second kill -9 while lines are on their way.
		a.stop()
		w.write(2000)
		a = e.startAgent()
		w.write(20000)
		ids.wait(w.written()-10000, 30*time.Second)
		a.kill()
		a = e.startAgent()
		delivered("after the second kill")
		ids.settle(time.Second)
		a.stop()

		n := w.written()
		lost, dup := ids.result(n)
		e.report(lost, dup, n, fmt.Sprintf("records=%d ids=%d resent=%d", ids.records, len(ids.byKey), ids.records-len(ids.byKey)))
		if ids.bad > 0 {
			t.Fatalf("%d bad records, e.g. %q", ids.bad, ids.samples)
		}
		if lost != 0 || dup != 0 || len(ids.byKey) != n {
			t.Fatalf("one record per id: %d ids for %d lines written (lost=%d, lines under two ids or shipped twice=%d), want exactly one each",
				len(ids.byKey), n, lost, dup)
		}
	})
}

// idChecker consumes a topic and keeps every record's id.
type idChecker struct {
	t *testing.T
	c *testenv.Consumer

	records int
	byKey   map[string]int   // id → seq of the line
	keys    map[int][]string // seq → distinct ids it was sent under
	bad     int
	samples []string
}

func newIDChecker(t *testing.T, e *env, topic string) *idChecker {
	c, err := testenv.NewConsumer(e.brokers(), topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &idChecker{t: t, c: c, byKey: map[string]int{}, keys: map[int][]string{}}
}

var fileIDRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

func (c *idChecker) badf(format string, args ...any) {
	c.bad++
	if len(c.samples) < 5 {
		c.samples = append(c.samples, fmt.Sprintf(format, args...))
	}
}

func (c *idChecker) poll(d time.Duration) {
	recs, err := c.c.Poll(context.Background(), d)
	if err != nil {
		c.t.Logf("consumer: %v", err)
	}
	for _, r := range recs {
		c.records++
		seq, ok := parseSeq(r.Value)
		if !ok {
			c.badf("not a numbered line: %q", clip(r.Value))
			continue
		}
		file, key := r.Headers["file"], string(r.Key)
		if !fileIDRE.MatchString(file) || key != host+":"+file+":"+r.Headers["offset"] {
			c.badf("seq %d: key %q, headers %v", seq, key, r.Headers)
		}
		if other, ok := c.byKey[key]; ok && other != seq {
			c.badf("lines %d and %d share the id %s", other, seq, key)
			continue
		}
		if _, ok := c.byKey[key]; !ok {
			c.byKey[key] = seq
			c.keys[seq] = append(c.keys[seq], key)
		}
	}
}

// distinctSeqs is how many of lines 0..n-1 arrived.
func (c *idChecker) distinctSeqs(n int) int {
	d := 0
	for seq := range c.keys {
		if seq < n {
			d++
		}
	}
	return d
}

// wait polls until lines 0..n-1 have arrived, or within passes.
func (c *idChecker) wait(n int, within time.Duration) bool {
	for deadline := time.Now().Add(within); c.distinctSeqs(n) < n; {
		if time.Now().After(deadline) {
			return false
		}
		c.poll(200 * time.Millisecond)
	}
	return true
}

// settle polls d longer, for late records.
func (c *idChecker) settle(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		c.poll(200 * time.Millisecond)
	}
}

// result counts the lines 0..n-1 with no id (lost) and the lines under
// more than one id (dup: de-duplicating by id would keep them twice).
func (c *idChecker) result(n int) (lost, dup int) {
	for seq := 0; seq < n; seq++ {
		switch k := len(c.keys[seq]); {
		case k == 0:
			lost++
		case k > 1:
			dup += k - 1
			if dup <= 3 {
				c.t.Logf("line %d sent under the ids %v", seq, c.keys[seq])
			}
		}
	}
	for seq := range c.keys {
		if seq >= n {
			c.badf("seq %d was never written (%d lines were)", seq, n)
		}
	}
	return lost, dup
}

// copyFile copies src to dst, as logrotate's copytruncate does before it
// truncates src.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
