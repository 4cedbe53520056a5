package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Case 9: data_dir full, then read-only, while the agent saves positions.
// The log says "cannot save positions", shipping goes on, and once the
// condition is fixed positions.json is saved again.
//
// data_dir is a 64 KiB tmpfs mounted for the case (root in a container may
// mount): filled with a file (ENOSPC), then remounted read-only (EROFS).
// Where mount is not permitted, data_dir is moved away and a regular file
// put in its place (ENOTDIR), which stops root too, unlike chmod.
func TestPositionsUnwritable(t *testing.T) {
	forClients(t, oneClient, func(t *testing.T, client string) {
		dataDir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dataDir, 0o750); err != nil {
			t.Fatal(err)
		}
		technique := "tmpfs"
		if os.Getenv("LOGAGENT_FAULT_NO_MOUNT") == "1" {
			technique = "file-in-place"
			t.Log("LOGAGENT_FAULT_NO_MOUNT=1: putting a file in data_dir's place")
		} else if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dataDir).CombinedOutput(); err != nil {
			technique = "file-in-place"
			t.Logf("mount tmpfs not permitted (%v: %s); putting a file in data_dir's place instead", err, strings.TrimSpace(string(out)))
		} else {
			// Runs after the agent is killed (registered later, runs first)
			// and before the temporary directory is removed.
			t.Cleanup(func() {
				if out, err := exec.Command("umount", dataDir).CombinedOutput(); err != nil {
					t.Errorf("umount %s: %v: %s", dataDir, err, out)
				}
			})
		}
		e := newEnv(t, "9-positions-unwritable", client, envOpts{dataDir: dataDir})
		path := filepath.Join(e.dir, "app.log")
		w := newWriter(t, path)
		e.putConfig(entry{Path: path, Topic: "positions", ReadFrom: "beginning"})
		a := e.startAgent()
		a.waitLog("file opened", 15*time.Second)
		c := e.newChecker(path, "positions")

		// ship writes lines, waits for them in Kafka, and returns the
		// file's size (the offset every line up to it is acked at).
		ship := func(what string) int64 {
			t.Helper()
			w.write(1000)
			n := w.written()
			if !c.waitLines(n, n, 20*time.Second, 0) {
				t.Fatalf("%s: lines stopped arriving: %d of %d", what, c.distinct(n), n)
			}
			return int64(n) * lineLen
		}
		saved := func() int64 { return savedOffset(t, filepath.Join(dataDir, "positions.json"), path) }
		waitSaved := func(what string, off int64) {
			t.Helper()
			if !within(5*time.Second, func() bool { return saved() == off }) {
				t.Fatalf("%s: positions.json holds offset %d, want %d", what, saved(), off)
			}
		}

		size := ship("before")
		waitSaved("before", size)

		type fault struct {
			name        string
			break_, fix func()
		}
		var faults []fault
		if technique == "tmpfs" {
			filler := filepath.Join(dataDir, "filler")
			faults = []fault{
				{"full", func() { fill(t, filler) }, func() { os.Remove(filler) }},
				{"read-only", func() { remount(t, dataDir, "ro") }, func() { remount(t, dataDir, "rw") }},
			}
		} else {
			away := dataDir + ".away"
			faults = []fault{{"not a directory", func() {
				if err := os.Rename(dataDir, away); err != nil {
					t.Fatal(err)
				}
				os.WriteFile(dataDir, []byte("not a directory\n"), 0o644)
			}, func() {
				os.Remove(dataDir)
				if err := os.Rename(away, dataDir); err != nil {
					t.Fatal(err)
				}
			}}}
		}
		for i, f := range faults {
			f.break_()
			stale := saved()
			off := ship(f.name)
			a.waitLogN("cannot save positions", i+1, 5*time.Second)
			l := nthLine(a.logText(), "cannot save positions", i)
			if !strings.Contains(l, "level=ERROR") {
				t.Errorf("%s: not logged as an error: %s", f.name, l)
			}
			t.Logf("%s: %s", f.name, l)
			if got := saved(); got != stale {
				t.Errorf("%s: positions.json changed (%d -> %d) while it could not be written", f.name, stale, got)
			}
			// Shipping goes on while positions cannot be saved.
			off = ship(f.name + ", still")
			f.fix()
			a.waitLogN("positions saved again", i+1, 5*time.Second)
			waitSaved(f.name+" fixed", off)
		}
		total := w.written()
		c.waitAll(total, 10*time.Second)
		lost, dup := c.result(total, w)
		e.report(lost, dup, total, fmt.Sprintf("technique=%s faults=%d save_errors_logged=%d", technique, len(faults),
			strings.Count(a.logText(), "cannot save positions")))
		a.stop()
		if lost != 0 || dup != 0 {
			t.Fatalf("lost=%d dup=%d while positions could not be saved, want 0 and 0", lost, dup)
		}
	})
}

// savedOffset reads the committed offset of path's current file from
// positions.json (-1 when absent or unreadable).
func savedOffset(t *testing.T, positions, path string) int64 {
	data, err := os.ReadFile(positions)
	if err != nil {
		return -1
	}
	var f struct {
		Files map[string]struct {
			Current struct {
				Offset int64 `json:"offset"`
			} `json:"current"`
		} `json:"files"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Errorf("positions.json is not valid JSON: %v: %q", err, data)
		return -1
	}
	p, ok := f.Files[path]
	if !ok {
		return -1
	}
	return p.Current.Offset
}

// fill writes name until the file system is full.
func fill(t *testing.T, name string) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := 0; i < 1<<14; i++ {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", name, err)
			}
			return
		}
	}
	t.Fatalf("%s never filled its file system", name)
}

func remount(t *testing.T, dir, mode string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, mode, err, out)
	}
}
