package faults

import (
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
		c := e.newChecker(path, "ids")
		ids := trackIDs(c)
		a := e.startAgent()
		a.waitLog("file opened", 15*time.Second)

		// delivered waits until every line written so far has arrived.
		delivered := func(what string) {
			t.Helper()
			if n := w.written(); !c.waitLines(n, n, 30*time.Second, 0) {
				t.Fatalf("%s: %d of %d lines delivered", what, c.distinct(n), n)
			}
		}
		// Kill -9 while lines are on their way: those delivered since the
		// last positions flush are sent again by the next run.
		w.write(20000)
		c.waitLines(5000, 5000, 30*time.Second, 0)
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
		c.waitLines(w.written()-10000, w.written()-10000, 30*time.Second, 0)
		a.kill()
		a = e.startAgent()
		delivered("after the second kill")
		c.waitAll(w.written(), time.Second) // and a second for late records
		a.stop()

		n := w.written()
		lost, dup := ids.result(t, n)
		e.report(lost, dup, n, fmt.Sprintf("records=%d ids=%d resent=%d", c.records, len(ids.byKey), c.records-len(ids.byKey)))
		if c.bad > 0 {
			t.Fatalf("%d bad records, e.g. %q", c.bad, c.samples)
		}
		if lost != 0 || dup != 0 || len(ids.byKey) != n {
			t.Fatalf("one record per id: %d ids for %d lines written (lost=%d, lines under two ids=%d), want exactly one each",
				len(ids.byKey), n, lost, dup)
		}
	})
}

// ids are the ids (record keys) a checker's records came with.
type ids struct {
	byKey map[string]int   // id → seq of its line
	keys  map[int][]string // seq → the distinct ids it came under
}

var fileIDRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// trackIDs keeps the id of every numbered line c sees; a malformed key or
// an id that names two lines is a bad record.
func trackIDs(c *checker) *ids {
	x := &ids{byKey: map[string]int{}, keys: map[int][]string{}}
	c.onRecord = func(seq int, r testenv.Record) {
		file, key := r.Headers["file"], string(r.Key)
		if !fileIDRE.MatchString(file) || key != host+":"+file+":"+r.Headers["offset"] {
			c.badf("seq %d: key %q, headers %v", seq, key, r.Headers)
		}
		other, ok := x.byKey[key]
		switch {
		case ok && other != seq:
			c.badf("lines %d and %d share the id %s", other, seq, key)
		case !ok:
			x.byKey[key] = seq
			x.keys[seq] = append(x.keys[seq], key)
		}
	}
	return x
}

// result counts the lines 0..n-1 that no id names (lost) and those under
// more than one id (dup: de-duplicating by id would keep them twice).
func (x *ids) result(t *testing.T, n int) (lost, dup int) {
	for seq := 0; seq < n; seq++ {
		switch k := len(x.keys[seq]); {
		case k == 0:
			lost++
		case k > 1:
			if dup += k - 1; dup <= 3 {
				t.Logf("line %d came under the ids %v", seq, x.keys[seq])
			}
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
