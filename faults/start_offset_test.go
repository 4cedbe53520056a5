package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// asNobody makes e run its agent as user nobody (setpriv), with what that
// user needs: the binary and e's directory reachable, data_dir its own.
func asNobody(t *testing.T, e *env) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the agent as another user")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	for _, d := range []string{filepath.Dir(bin), filepath.Dir(e.dir), e.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(e.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(e.dataDir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	e.wrap = []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"}
}

// Issue #23, the agent running as nobody:
//   - app.log exists, 100 lines, unreadable (root's, mode 0600) when its
//     entry appears; 1,000 lines are appended; the agent is restarted
//     (SIGTERM) while the file is still unreadable; 500 more lines; the
//     file is made readable. Reading starts at the file's end when the
//     entry appeared: the 1,500 lines are shipped once, the 100 never.
//   - hidden/app.log, in a directory nobody cannot even search, so that
//     the stat fails too: it counts as a file that appears later, and all
//     its lines are shipped once the directory is opened up.
func TestStartOffsetOfUnreadableFile(t *testing.T) {
	forClients(t, oneClient, func(t *testing.T, client string) {
		e := newEnv(t, "23-start-offset-unreadable", client, envOpts{})
		asNobody(t, e)
		path := filepath.Join(e.dir, "app.log")
		hiddenDir := filepath.Join(e.dir, "hidden")
		hidden := filepath.Join(hiddenDir, "app.log")
		if err := os.Mkdir(hiddenDir, 0o700); err != nil {
			t.Fatal(err)
		}
		w := newWriter(t, path)
		wh := newWriter(t, hidden)
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		w.write(100)
		wh.write(100)
		e.putConfig(entry{Path: path, Topic: "start"}, entry{Path: hidden, Topic: "hidden"})
		a := e.startAgent()
		a.waitLogN("permission denied", 2, 15*time.Second)
		w.write(1000)
		wh.write(1000)
		a.stop()

		a = e.startAgent()
		a.waitLogN("permission denied", 2, 15*time.Second)
		w.write(500)
		wh.write(500)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(hiddenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(hidden, 0o644); err != nil {
			t.Fatal(err)
		}
		const total = 1600
		c := e.newChecker(path, "start")
		ch := e.newChecker(hidden, "hidden")
		c.waitLines(total, total-100, 30*time.Second, time.Second)
		ch.waitAll(total, 30*time.Second)
		lost, dup := c.result(total, w)
		hl, hd := ch.result(total, wh)
		// Of app.log, the 100 lines before the entry are not to be shipped.
		skipped := 100 - c.distinct(100)
		e.report(lost-skipped+hl, dup+hd, 2*total-skipped, fmt.Sprintf("before_entry_shipped=%d", c.distinct(100)))
		if c.distinct(100) != 0 {
			t.Errorf("%d of the 100 lines written before the entry appeared were shipped, want none", c.distinct(100))
		}
		if lost != 100 || dup != 0 || c.bad != 0 {
			t.Errorf("app.log: lost=%d dup=%d bad=%d, want the 100 lines before the entry lost, and only those", lost, dup, c.bad)
		}
		if hl != 0 || hd != 0 || ch.bad != 0 {
			t.Errorf("hidden/app.log (not even stat'ed when the entry appeared): lost=%d dup=%d bad=%d, want 0", hl, hd, ch.bad)
		}
		a.stop()
	})
}
