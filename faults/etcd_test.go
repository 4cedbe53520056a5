package faults

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// Case 7a: etcd unreachable at start. A first run with etcd up leaves the
// collect config cached in data_dir; after a clean stop etcd goes away and
// the agent starts again: it runs on the cached entries and ships their
// lines.
func TestEtcdDownAtStart(t *testing.T) {
	forClients(t, oneClient, func(t *testing.T, client string) {
		e := newEnv(t, "7a-etcd-down-at-start", client, envOpts{})
		path := filepath.Join(e.dir, "app.log")
		w := newWriter(t, path)
		e.putConfig(entry{Path: path, Topic: "etcdstart", ReadFrom: "beginning"})
		a := e.startAgent()
		a.waitLog("file opened", 15*time.Second)
		c := e.newChecker(path, "etcdstart")
		w.write(1000)
		if !c.waitLines(1000, 1000, 20*time.Second, 0) {
			t.Fatalf("the first lines did not arrive: %d of 1000", c.distinct(1000))
		}
		a.stop()

		e.stopEtcd()
		a2 := e.startAgent()
		a2.waitLog("running on the cached collect config", 20*time.Second)
		a2.waitLog("file opened", 10*time.Second)
		w.write(2000)
		total := w.written()
		if !c.waitAll(total, 30*time.Second) {
			t.Errorf("not every line arrived within 30s: %d of %d", c.distinct(total), total)
		}
		lost, dup := c.result(total, w)
		e.report(lost, dup, total, "")
		a2.stop()
		if c.bad > 0 {
			t.Errorf("%d bad records", c.bad)
		}
		if lost != 0 {
			t.Fatalf("lost=%d dup=%d running on the cached config, want lost=0", lost, dup)
		}
	})
}

// Case 7b: etcd goes away while the agent runs: it keeps shipping. Nothing
// can change while etcd is down; once it is back (same data dir and port)
// a new config adding a second file is put, and that file's lines arrive:
// the agent reconnected and applied it.
func TestEtcdDownWhileRunning(t *testing.T) {
	forClients(t, oneClient, func(t *testing.T, client string) {
		// 14 s of lines: 1 s, etcd's Close (up to 7 s: it lets open watch
		// streams finish for its request timeout), 3 s down, the restart
		// and the new config.
		const (
			rate  = 2000
			total = 14 * rate
		)
		e := newEnv(t, "7b-etcd-down-while-running", client, envOpts{})
		path := filepath.Join(e.dir, "app.log")
		w := newWriter(t, path)
		e.putConfig(entry{Path: path, Topic: "etcdrun1", ReadFrom: "beginning"})
		a := e.startAgent()
		a.waitLog("file opened", 15*time.Second)
		c := e.newChecker(path, "etcdrun1")

		done := w.run(rate, total, 0, nil)
		time.Sleep(time.Second)
		closing := time.Now()
		e.stopEtcd()
		downAt := w.written()
		t.Logf("etcd closed in %s", time.Since(closing).Round(time.Millisecond))
		time.Sleep(3 * time.Second)
		whileDown := w.written()
		if downAt >= total || whileDown == downAt {
			t.Fatalf("the writer did not write while etcd was down (lines %d..%d of %d)", downAt, whileDown, total)
		}
		if !c.waitLines(whileDown, whileDown, 15*time.Second, 0) {
			t.Errorf("lines written while etcd was down did not arrive: %d of %d", c.distinct(whileDown), whileDown)
		}
		t.Logf("etcd down at line %d; lines up to %d, written while it was down, delivered", downAt, whileDown)
		if a.exited() {
			t.Fatalf("the agent exited while etcd was down: %v", a.Err())
		}

		e.startEtcd()
		path2 := filepath.Join(e.dir, "second.log")
		w2 := newWriter(t, path2)
		w2.write(500)
		putStart := time.Now()
		e.putConfig(entry{Path: path, Topic: "etcdrun1", ReadFrom: "beginning"},
			entry{Path: path2, Topic: "etcdrun2", ReadFrom: "beginning"})
		t.Logf("etcd restarted; the new config put in %s", time.Since(putStart).Round(time.Millisecond))
		w2.write(500)
		c2 := e.newChecker(path2, "etcdrun2")
		if !c2.waitAll(1000, 30*time.Second) {
			t.Errorf("the second file's lines did not arrive within 30s: %d of 1000", c2.distinct(1000))
		}
		<-done
		if !c.waitAll(total, 30*time.Second) {
			t.Errorf("not every line of the first file arrived: %d of %d", c.distinct(total), total)
		}
		lost, dup := c.result(total, w)
		lost2, dup2 := c2.result(1000, w2)
		e.report(lost+lost2, dup+dup2, total+1000, fmt.Sprintf("second_file_lost=%d", lost2))
		a.stop()
		if c.bad+c2.bad > 0 {
			t.Errorf("%d bad records", c.bad+c2.bad)
		}
		if lost != 0 || lost2 != 0 {
			t.Fatalf("lost=%d (first file) and %d (second file, added after etcd came back), want 0", lost, lost2)
		}
	})
}
