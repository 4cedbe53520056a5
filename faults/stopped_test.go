package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue #24: files change while the agent is stopped (upgrades, reboots;
// logrotate does not wait). 1,000 lines are shipped, the agent is stopped
// (SIGTERM unless said), the change is made, the agent started again:
// every line is shipped, once (kill -9: with its usual resend).
func TestChangesWhileStopped(t *testing.T) {
	cases := []struct {
		name string
		sig  syscall.Signal
		// change makes the change while the agent is down; the lines
		// written after it are shipped once the agent is back.
		change func(t *testing.T, w *writer)
		log    string // the agent's second run logs this
	}{
		{"nothing-changed", syscall.SIGTERM, func(t *testing.T, w *writer) {}, ""},
		{"rename", syscall.SIGTERM, func(t *testing.T, w *writer) {
			w.write(500)
			shiftRotate(t, w)
			w.write(1000)
		}, "file rotated while stopped"},
		{"rename-kill9", syscall.SIGKILL, func(t *testing.T, w *writer) {
			w.write(500)
			shiftRotate(t, w)
			w.write(1000)
		}, "file rotated while stopped"},
		{"two-rotations", syscall.SIGTERM, func(t *testing.T, w *writer) {
			w.write(500)
			shiftRotate(t, w) // a.log → a.log.1
			w.write(300)
			shiftRotate(t, w) // a.log.1 → a.log.2, a.log → a.log.1
			w.write(1000)
		}, "file rotated while stopped"},
		{"copytruncate-regrown", syscall.SIGTERM, func(t *testing.T, w *writer) {
			copyFile(t, w.path, w.path+".1")
			w.truncate()
			w.write(2000) // more bytes than the saved offset
		}, "file rewritten while stopped"},
		{"truncate-rewrite-same-size", syscall.SIGTERM, func(t *testing.T, w *writer) {
			w.truncate()
			w.write(1000)
		}, "file rewritten while stopped"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forClients(t, oneClient, func(t *testing.T, client string) {
				e, a, w, c := shipped1000(t, "24-stopped-"+tc.name, client)
				if tc.sig == syscall.SIGKILL {
					time.Sleep(1500 * time.Millisecond) // a flush of the positions
					a.kill()
				} else {
					a.stop()
				}
				tc.change(t, w)
				a = e.startAgent()
				w.write(100) // and the agent follows on
				total := w.written()
				if !c.waitAll(total, 30*time.Second) {
					t.Errorf("%d of %d lines", c.distinct(total), total)
				}
				lost, dup := c.result(total, w)
				log := a.logText()
				e.report(lost, dup, total, fmt.Sprintf("truncations_logged=%d", strings.Count(log, "truncated")+strings.Count(log, "rewritten")))
				if tc.log != "" && !strings.Contains(log, tc.log) {
					t.Errorf("the agent did not log %q", tc.log)
				}
				if tc.log == "" && (strings.Contains(log, "truncated") || strings.Contains(log, "rewritten")) {
					t.Errorf("a false truncation: %s", nthLine(log, "ritten", 0)+nthLine(log, "truncated", 0))
				}
				if c.bad > 0 {
					t.Errorf("%d bad records (offset headers checked against the file)", c.bad)
				}
				if lost != 0 || (tc.sig == syscall.SIGTERM && dup != 0) {
					t.Fatalf("lost=%d dup=%d, want 0 and 0", lost, dup)
				}
				a.stop()
			})
		})
	}
}

// Issue #24: a file deleted while the agent is stopped, with lines it had
// read but Kafka had not acknowledged (Kafka down at the stop): the start
// reports the bytes lost, once, in the log and the status.
func TestDeletedWhileStopped(t *testing.T) {
	forClients(t, oneClient, func(t *testing.T, client string) {
		e, a, w, _ := shipped1000(t, "24-stopped-deleted", client)
		path := w.path
		e.stopKafka()
		w.write(500)
		a.stop() // waits shutdown_timeout (10 s) for acks that do not come
		w.closeFile()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		e.startKafka()
		a = e.startAgent()
		const lostBytes = 500 * lineLen
		a.waitLog("file deleted while stopped", 15*time.Second)
		if l := nthLine(a.logText(), "file deleted while stopped", 0); !strings.Contains(l, fmt.Sprintf("lost_bytes=%d", lostBytes)) {
			t.Errorf("logged %q, want lost_bytes=%d", l, lostBytes)
		}
		var files map[string]fileStatus
		var lost int64
		if !within(40*time.Second, func() bool {
			files = e.statusFiles()
			lost = files[path].LostBytes
			return lost != 0
		}) || lost != lostBytes {
			t.Errorf("status lost_bytes %d, want %d", lost, lostBytes)
		}
		e.report(500, 0, 1500, fmt.Sprintf("lost_bytes_reported=%d", lost))
		a.stop()
		a = e.startAgent()
		a.waitLog("collecting", 15*time.Second)
		a.stop()
		if n := strings.Count(a.logText(), "file deleted while stopped"); n != 0 {
			t.Errorf("the loss was reported again at the next start")
		}
	})
}

// shipped1000 is a case's agent that follows a.log (topic "stopped")
// and has shipped its first 1,000 lines.
func shipped1000(t *testing.T, name, client string) (*env, *agentProc, *writer, *checker) {
	t.Helper()
	e := newEnv(t, name, client, envOpts{})
	path := filepath.Join(e.dir, "a.log")
	w := newWriter(t, path)
	e.putConfig(entry{Path: path, Topic: "stopped", ReadFrom: "beginning"})
	a := e.startAgent()
	a.waitLog("file opened", 15*time.Second)
	c := e.newChecker(path, "stopped")
	w.write(1000)
	if !c.waitLines(1000, 1000, 20*time.Second, 0) {
		t.Fatalf("%d of the first 1000 lines", c.distinct(1000))
	}
	return e, a, w, c
}

// shiftRotate rotates the way logrotate does without dateext: a.log.1 →
// a.log.2, a.log → a.log.1, a new a.log.
func shiftRotate(t *testing.T, w *writer) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := os.Stat(w.path + ".1"); err == nil {
		if err := os.Rename(w.path+".1", w.path+".2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		t.Fatal(err)
	}
	w.f.Close()
	if err := w.open(); err != nil {
		t.Fatal(err)
	}
}
