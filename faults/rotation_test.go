package faults

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Case 3: rename rotation (logrotate's create mode, lumberjack): the file
// is renamed to path.N and a new path created, every 20k lines, 9 times,
// while the writer writes 50k lines/s. Nothing lost, nothing sent twice.
func TestRenameRotation(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		renameRotation(t, "3-rename-rotation", client, 50000, 0)
	})
}

// Case 3, far behind: the 9 rotations are written as fast as the writer
// can, so that each rotation comes before the agent has caught up with the
// file before it.
//
// Files live about 7 ms each here, less than the agent takes to look: it
// finds the ones renamed away unseen by scanning the directory when the
// next generation appears (taillog adoptMissed).
func TestRenameRotationFarBehind(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		renameRotation(t, "3-rename-rotation-far-behind", client, 0, 0)
	})
}

// Case 3, far behind but paced: each file of 20k lines is written at once
// and lives 100 ms under the path before the next rotation. The agent is
// still far behind in reading (it reads about 100k lines/s), but each name
// lives long enough to be seen: this separates a file never opened (the
// case above) from a file opened and not drained.
func TestRenameRotationFarBehindPaced(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		renameRotation(t, "3-rename-rotation-far-behind-paced", client, 0, 100*time.Millisecond)
	})
}

func renameRotation(t *testing.T, name, client string, rate float64, pause time.Duration) {
	const (
		every     = 20000
		rotations = 9
		total     = every * (rotations + 1)
	)
	e := newEnv(t, name, client, envOpts{})
	path := filepath.Join(e.dir, "app.log")
	w := newWriter(t, path)
	e.putConfig(entry{Path: path, Topic: "rotate", ReadFrom: "beginning"})
	a := e.startAgent()
	a.waitLog("file opened", 15*time.Second)

	start := time.Now()
	<-w.run(rate, total, every, func() {
		time.Sleep(pause)
		w.rotate()
	})
	took := time.Since(start)
	t.Logf("wrote %d lines in %d files in %s (%.0f lines/s)", total, w.rotations+1, took.Round(time.Millisecond),
		total/took.Seconds())

	c := e.newChecker(path, "rotate")
	c.stall = 5 * time.Second
	if !c.waitAll(total, 60*time.Second) {
		t.Errorf("not every line arrived within 60s: %d of %d", c.distinct(total), total)
	}
	lost, dup := c.result(total, w)
	log := a.logText()
	// Every file the agent opened logs "file opened": 10 when it saw them all.
	e.report(lost, dup, total, fmt.Sprintf("rotations=%d files_opened=%d write_s=%.2f", w.rotations,
		strings.Count(log, "file opened"), took.Seconds()))
	if c.bad > 0 {
		t.Errorf("%d bad records", c.bad)
	}
	if lost != 0 || dup != 0 {
		t.Fatalf("lost=%d dup=%d across %d rename rotations (%d of %d files opened), want 0 and 0",
			lost, dup, w.rotations, strings.Count(log, "file opened"), w.rotations+1)
	}
}

// Case 4a: a plain truncate. Lines are written and delivered, the file is
// truncated to 0, more lines are written: they are all delivered, read
// again from offset 0.
func TestTruncate(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		e := newEnv(t, "4a-truncate", client, envOpts{})
		path := filepath.Join(e.dir, "app.log")
		w := newWriter(t, path)
		e.putConfig(entry{Path: path, Topic: "trunc", ReadFrom: "beginning"})
		a := e.startAgent()
		a.waitLog("file opened", 15*time.Second)
		c := e.newChecker(path, "trunc")

		const before = 5000
		w.write(before)
		if !c.waitLines(before, before, 20*time.Second, 0) {
			t.Fatalf("the first %d lines did not arrive: %d", before, c.distinct(before))
		}
		w.truncate()
		// Fewer bytes than before at once, more a moment later: the agent
		// notices the truncation by the size (smaller than its offset).
		w.write(1000)
		time.Sleep(300 * time.Millisecond)
		w.write(3000)
		total := w.written()
		if !c.waitAll(total, 20*time.Second) {
			t.Errorf("not every line arrived within 20s: %d of %d", c.distinct(total), total)
		}
		lost, dup := c.result(total, w)
		e.report(lost, dup, total, fmt.Sprintf("truncations_logged=%d", strings.Count(a.logText(), "file truncated")))
		if c.bad > 0 {
			t.Errorf("%d bad records (offset headers checked against the file)", c.bad)
		}
		if before < len(c.hdrOff) && c.counts[before] > 0 && c.hdrOff[before] != 0 {
			t.Errorf("the first line after the truncate has offset %d, want 0", c.hdrOff[before])
		}
		if lost != 0 {
			t.Fatalf("lost=%d dup=%d after a truncate, want lost=0", lost, dup)
		}
	})
}

// Case 4b: copytruncate as logrotate does it, while the writer goes on:
// the file is copied to path.1, then truncated. Lines written after the
// copy and before the truncate are in neither file: that window is the
// method's inherent loss. The agent must lose no more than that.
func TestCopyTruncate(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		const (
			rate  = 20000
			total = 4 * rate
		)
		e := newEnv(t, "4b-copytruncate", client, envOpts{})
		path := filepath.Join(e.dir, "app.log")
		w := newWriter(t, path)
		e.putConfig(entry{Path: path, Topic: "copytrunc", ReadFrom: "beginning"})
		a := e.startAgent()
		a.waitLog("file opened", 15*time.Second)

		done := w.run(rate, total, 0, nil)
		time.Sleep(2 * time.Second)
		// logrotate copytruncate: copy the file, then truncate it in place.
		src, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(path + ".1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		dst.Close()
		src.Close()
		// logrotate sets the copy's owner and mode and closes it before it
		// truncates; 20 ms stands for those steps on a busy host.
		time.Sleep(20 * time.Millisecond)
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		<-done

		copied, partial := readSeqs(t, path+".1")
		after, _ := readSeqs(t, path)
		if len(copied) == 0 || len(after) == 0 {
			t.Fatalf("copy has %d lines, the truncated file %d", len(copied), len(after))
		}
		lastCopied, firstAfter := copied[len(copied)-1], after[0]
		window := firstAfter - lastCopied - 1
		t.Logf("copy holds lines 0..%d (partial last line: %v), the file after the truncate starts at %d: window %d lines",
			lastCopied, partial, firstAfter, window)

		c := e.newChecker(path, "copytrunc")
		c.waitLines(total, total-window, 30*time.Second, time.Second)
		lost, dup := c.result(total, nil) // offsets after the truncate are not the writer's
		e.report(lost, dup, total, fmt.Sprintf("window=%d bad=%d", window, c.bad))
		if lost > window {
			t.Fatalf("lost=%d dup=%d, more than the copytruncate window of %d lines (written after the copy, before the truncate)",
				lost, dup, window)
		}
	})
}

// Case 5: a file deleted with unread lines is drained, then its descriptor
// is released; the path created again is read from offset 0.
func TestDeletedWithUnreadLines(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		e := newEnv(t, "5-delete-recreate", client, envOpts{})
		path := filepath.Join(e.dir, "app.log")
		w := newWriter(t, path)
		e.putConfig(entry{Path: path, Topic: "deleted", ReadFrom: "beginning"})
		a := e.startAgent()
		a.waitLog("file opened", 15*time.Second)
		c := e.newChecker(path, "deleted")
		c.stall = 5 * time.Second
		w.write(1000)
		if !c.waitLines(1000, 1000, 20*time.Second, 0) {
			t.Fatalf("the first lines did not arrive: %d of 1000", c.distinct(1000))
		}

		// The agent cannot read while stopped: the lines are unread when
		// the file is deleted.
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		oldIno := fileIno(fi)
		a.cmd.Process.Signal(syscall.SIGSTOP)
		for i := 0; i < 100; i++ {
			w.write(1000)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		w.closeFile()
		a.cmd.Process.Signal(syscall.SIGCONT)
		drained := w.written()
		if !c.waitLines(drained, drained, 30*time.Second, 0) {
			t.Errorf("the deleted file was not drained within 30s: %d of %d lines", c.distinct(drained), drained)
		}
		deliveredAt := time.Now()

		// rotate_wait (1s) without growth, then it is closed.
		var links []string
		released := within(5*time.Second, func() bool {
			links = openLinks(a.pid(), path)
			return len(links) == 0
		})
		t.Logf("descriptor released %s after the last line arrived (released=%v)",
			time.Since(deliveredAt).Round(10*time.Millisecond), released)

		// The path again: a new file, read from 0. Created with its first
		// lines (a temp file renamed onto the path), then appended to. File
		// systems reuse a freed inode (ext4 gives a new file the lowest free
		// one of its group): the new file gets the deleted file's inode
		// when it can, as on a quiet disk. It is a new file all the same.
		tmp, reused := createWithInode(t, filepath.Dir(path), oldIno)
		w.createVia(tmp, 1000)
		w.write(1000)
		total := w.written()
		if !c.waitAll(total, 20*time.Second) {
			t.Errorf("not every line arrived within 20s: %d of %d", c.distinct(total), total)
		}
		lost, dup := c.result(total, w)
		e.report(lost, dup, total, fmt.Sprintf("fd_released=%v inode_reused=%v", released, reused))
		if c.bad > 0 {
			t.Errorf("%d bad records (offset headers checked against the files)", c.bad)
		}
		if drained < len(c.hdrOff) && c.counts[drained] > 0 && c.hdrOff[drained] != 0 {
			t.Errorf("the first line of the recreated file has offset %d, want 0", c.hdrOff[drained])
		}
		if lost > 0 && reused {
			t.Logf("the recreated file has the deleted file's inode %d: the agent took it for the same file", oldIno)
		}
		if !released {
			t.Errorf("5s after the deleted file was drained (rotate_wait 1s), the agent still holds it: %v", links)
		}
		if lost != 0 {
			t.Fatalf("lost=%d dup=%d with a deleted file, want lost=0", lost, dup)
		}
	})
}

func fileIno(fi os.FileInfo) uint64 { return fi.Sys().(*syscall.Stat_t).Ino }

// createWithInode creates an empty file in dir and returns its name;
// reused says whether it got inode ino (the test keeps creating files in
// dir, which take the lower free inodes, until one gets it, then removes
// the others).
func createWithInode(t *testing.T, dir string, ino uint64) (name string, reused bool) {
	t.Helper()
	var others []string
	defer func() {
		for _, o := range others {
			os.Remove(o)
		}
	}()
	for i := 0; i < 20000; i++ {
		name = filepath.Join(dir, fmt.Sprintf(".new-%d", i))
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if fileIno(fi) == ino {
			return name, true
		}
		if fileIno(fi) > ino {
			// Past it: the file system does not hand out the lowest free
			// inode (tmpfs, xfs), or the inode went to another file.
			return name, false
		}
		others = append(others, name)
	}
	t.Logf("inode %d was not reused in 20000 files", ino)
	last := others[len(others)-1]
	others = others[:len(others)-1]
	return last, false
}
