package taillog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// idLine is a delivered line with its identity: file generation + offset.
type idLine struct {
	file   GenID
	offset int64
	data   string
}

// idLines waits for n lines and returns them with their file ids.
func (c *collector) idLines(t *testing.T, n int) []idLine {
	t.Helper()
	c.wait(t, n)
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]idLine, len(c.lines))
	for i, l := range c.lines {
		out[i] = idLine{c.files[i], l.offset, l.data}
	}
	return out
}

// checkIDs asserts that no two different lines share an id (file +
// offset) and that every line has a file id.
func checkIDs(t *testing.T, lines []idLine) {
	t.Helper()
	type id struct {
		file   GenID
		offset int64
	}
	seen := map[id]string{}
	for _, l := range lines {
		if l.file == 0 {
			t.Fatalf("line %q at %d has no file id", l.data, l.offset)
		}
		k := id{l.file, l.offset}
		if d, ok := seen[k]; ok && d != l.data {
			t.Fatalf("lines %q and %q share the id %s:%d", d, l.data, l.file, l.offset)
		}
		seen[k] = l.data
	}
}

// fileIDFixture follows path from its beginning, with n lines delivered.
func fileIDFixture(t *testing.T, n int) (*fixture, string) {
	t.Helper()
	opts := testOpts()
	f := newFixture(t, opts)
	path := filepath.Join(f.dir, "app.log")
	f.m.Reconcile([]Entry{{Path: path, Topic: "t"}})
	f.waitState(t, path, StateWaiting)
	write(t, path, numbered(0, n))
	f.col.wait(t, n)
	return f, path
}

// Each change of a path's content gives its lines a new file id: lines
// at the same offset of the old and the new content never share an id
// (with path + offset they did: both start at 0).
func TestFileIDIsNewForEachGeneration(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, f *fixture, path string)
	}{
		{"rename rotation", func(t *testing.T, f *fixture, path string) {
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
		}},
		{"copytruncate", func(t *testing.T, f *fixture, path string) {
			data, _ := os.ReadFile(path)
			if err := os.WriteFile(path+".1", data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"delete and recreate", func(t *testing.T, f *fixture, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			f.waitState(t, path, StateWaiting)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, path := fileIDFixture(t, 10)
			tc.change(t, f, path)
			write(t, path, numbered(10, 15))
			l := f.col.idLines(t, 15)
			checkSequence(t, l2got(l), 15)
			checkIDs(t, l)
			if l[0].file == l[10].file {
				t.Fatalf("old and new content share the file id %s", l[0].file)
			}
			if l[10].offset != 0 {
				t.Fatalf("first new line at %d, want 0", l[10].offset)
			}
		})
	}
}

func l2got(l []idLine) []got {
	out := make([]got, len(l))
	for i, x := range l {
		out[i] = got{offset: x.offset, data: x.data}
	}
	return out
}

// A new file that gets the inode of a deleted one back (ext4, tmpfs reuse
// a freed inode at once) is a new generation: device + inode alone would
// give its lines the old file's ids.
func TestFileIDIsNewForReusedInode(t *testing.T) {
	f, path := fileIDFixture(t, 10)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	old := fileID(fi)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	f.waitState(t, path, StateWaiting)
	// The deleted file is drained, then its descriptor released (after
	// RotateWait): only then can its inode be given again.
	waitReleased(t, f.dir)
	reused := false
	for i := 0; i < 200 && !reused; i++ {
		tmp := filepath.Join(f.dir, fmt.Sprintf("new-%d", i))
		if err := os.WriteFile(tmp, []byte(numbered(10, 15)), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if fileID(fi) == old {
			reused = true
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}
		// Other files are kept: a removed one would free its inode again.
	}
	if !reused {
		t.Skipf("the file system did not give inode %s again", old)
	}
	l := f.col.idLines(t, 15)
	checkSequence(t, l2got(l), 15)
	checkIDs(t, l)
	if l[0].file == l[10].file {
		t.Fatalf("the file on the reused inode has the old file's id %s", l[0].file)
	}
}

// A line sent again after a crash has the id it had the first time: the
// id of a new generation is saved before its first line is sent, so the
// positions a crash leaves behind (no flush since) still hold it.
func TestFileIDSurvivesCrash(t *testing.T) {
	opts := testOpts()
	opts.ShutdownTimeout = 0
	f, path := fileIDFixture(t, 10)
	first := f.col.idLines(t, 10)
	// A rotation, and the new file's lines delivered: two generations.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, path, numbered(10, 20))
	first = f.col.idLines(t, 20)
	// The crash: the store is not flushed on stop (nobody runs its
	// flush loop here), so the file holds what was saved before lines
	// were sent.
	f.m.Stop()

	col := f.restart(t, opts, Entry{Path: path, Topic: "t"})
	// The current file's lines are sent again (and the rotated file's
	// unacknowledged ones, if it was not closed before the crash).
	var again []idLine
	for n := 10; ; n++ {
		again = col.idLines(t, n)
		if again[len(again)-1].data == "line 00019" {
			break
		}
	}
	want := map[idLine]bool{}
	for _, l := range first {
		want[l] = true
	}
	for _, l := range again {
		if !want[l] {
			t.Fatalf("line %q sent again as %s:%d, first sent as one of %v", l.data, l.file, l.offset, first)
		}
	}
	checkIDs(t, append(first, again...))
}

// A copy of content already read (copytruncate's path.1) is not taken for
// a missed rotation when the path later names a new file: its lines are
// not sent twice. A file that held the name briefly and was never read is
// still read, even when it begins with the same header.
func TestCopyIsNotAMissedRotation(t *testing.T) {
	t.Run("copy", func(t *testing.T) {
		f, path := fileIDFixture(t, 10)
		data, _ := os.ReadFile(path)
		if err := os.WriteFile(path+".1", data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		f.waitTruncated(t, path)
		write(t, path, numbered(10, 12))
		f.col.wait(t, 12)
		// The application recreates its log: the path names a new file.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		write(t, path, numbered(12, 15))
		// An adopted copy would be read before the new file: its lines
		// would come before these.
		checkSequence(t, f.col.wait(t, 15), 15)
	})
	t.Run("missed rotation", func(t *testing.T) {
		const header = "# a header line every file of this log starts with\n"
		opts := testOpts()
		f := newFixture(t, opts)
		path := filepath.Join(f.dir, "app.log")
		f.m.Reconcile([]Entry{{Path: path, Topic: "t"}})
		f.waitState(t, path, StateWaiting)
		write(t, path, header+numbered(0, 10))
		f.col.wait(t, 11)
		// A generation renamed away before the agent looked: made under
		// another name here, so that it never holds the path.
		missed := filepath.Join(f.dir, "tmp")
		write(t, missed, header+numbered(10, 20))
		if err := os.Rename(path, path+".2"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(missed, path+".1"); err != nil {
			t.Fatal(err)
		}
		write(t, path, numbered(20, 30))
		l := f.col.wait(t, 32)
		var lines []got
		for _, g := range l {
			if g.data != strings.TrimSuffix(header, "\n") {
				lines = append(lines, g)
			}
		}
		checkSequence(t, lines, 30)
	})
}

// waitTruncated waits until the tailer of path has seen a truncation.
func (f *fixture) waitTruncated(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, s := range f.m.Status() {
			if s.Path == path && s.Truncations > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("truncation of %s not seen: %+v", path, f.m.Status())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitReleased waits until no file under dir is open (a deleted file's
// descriptor released).
func waitReleased(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t, dir) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("descriptor of the deleted file not released")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restart starts a new manager on the positions the fixture's left on
// disk, following entries; the test's cleanup stops it.
func (f *fixture) restart(t *testing.T, opts Options, entries ...Entry) *collector {
	t.Helper()
	store, err := LoadPositions(f.positions, discard())
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	m := NewManager(opts, store, col.out, testLogger(t))
	t.Cleanup(func() { m.Stop(); col.close() })
	m.Reconcile(entries)
	return col
}
