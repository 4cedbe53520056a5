package taillog

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// globOpts polls once an hour: a match found in these tests was found by
// inotify.
func globOpts() Options {
	o := testOpts()
	o.PollInterval = time.Hour
	return o
}

func lineSet(l []got) map[string]int {
	m := map[string]int{}
	for _, g := range l {
		m[filepath.Base(g.path)+":"+g.data]++
	}
	return m
}

func checkSet(t *testing.T, l []got, want ...string) {
	t.Helper()
	got := lineSet(l)
	for _, w := range want {
		if got[w] != 1 {
			t.Errorf("%q arrived %d times, want once", w, got[w])
		}
		delete(got, w)
	}
	for k, n := range got {
		t.Errorf("unexpected %q (%d times)", k, n)
	}
}

// TestGlobFollowsMatches: a glob follows the files that match it, each
// with its own position (an existing file from its end, one created later
// from its beginning), not the excluded ones nor those in other
// directories; the status shows each match under its entry.
func TestGlobFollowsMatches(t *testing.T) {
	f := newFixture(t, globOpts())
	pattern := filepath.Join(f.dir, "*.log")
	write(t, filepath.Join(f.dir, "a.log"), "old\n")
	f.m.Reconcile([]Entry{{Path: pattern, Topic: "t", Exclude: []string{"debug-*.log", filepath.Join(f.dir, "skip.log")}}})
	f.waitState(t, filepath.Join(f.dir, "a.log"), StateRunning)
	write(t, filepath.Join(f.dir, "a.log"), "new\n")
	write(t, filepath.Join(f.dir, "b.log"), "first\n")
	write(t, filepath.Join(f.dir, "debug-1.log"), "excluded\n")
	write(t, filepath.Join(f.dir, "skip.log"), "excluded\n")
	write(t, filepath.Join(f.dir, "c.txt"), "not matched\n")
	os.Mkdir(filepath.Join(f.dir, "sub"), 0o755)
	write(t, filepath.Join(f.dir, "sub", "d.log"), "not matched\n")
	write(t, filepath.Join(f.dir, "e.log"), "last\n")
	l := f.col.wait(t, 3)
	checkSet(t, l, "a.log:new", "b.log:first", "e.log:last")
	for _, s := range f.m.Status() {
		if s.Entry != pattern {
			t.Errorf("status %s has entry %q, want %q", s.Path, s.Entry, pattern)
		}
		if strings.Contains(s.Path, "debug") || strings.Contains(s.Path, "skip") {
			t.Errorf("excluded file followed: %+v", s)
		}
	}
}

// TestGlobDoubleStarNewDirectories: ** finds files in directories created
// after the start, at any depth, by inotify (the poll is an hour away).
func TestGlobDoubleStarNewDirectories(t *testing.T) {
	f := newFixture(t, globOpts())
	f.m.Reconcile([]Entry{{Path: filepath.Join(f.dir, "**", "*.log"), Topic: "t"}})
	f.waitState(t, filepath.Join(f.dir, "**", "*.log"), StateWaiting)
	deep := filepath.Join(f.dir, "x", "y", "z")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(deep, "a.log"), "deep\n")
	write(t, filepath.Join(f.dir, "top.log"), "top\n")
	l := f.col.wait(t, 2)
	checkSet(t, l, "a.log:deep", "top.log:top")
	// A directory moved in with a file already in it.
	other := t.TempDir()
	write(t, filepath.Join(other, "m.log"), "moved in\n")
	if err := os.Rename(other, filepath.Join(f.dir, "x", "moved")); err != nil {
		t.Fatal(err)
	}
	checkSet(t, f.col.wait(t, 3), "a.log:deep", "top.log:top", "m.log:moved in")
}

// TestGlobRotatedCopiesReadOnce: a glob that also matches the rotated
// copies (app.log*) reads each line once: app.log.1 is app.log's rotation,
// read by app.log's tailer, never followed as a match of its own.
func TestGlobRotatedCopiesReadOnce(t *testing.T) {
	f := newFixture(t, testOpts()) // rotated files are closed at a poll

	app := filepath.Join(f.dir, "app.log")
	write(t, app+".1", "rotated before the start\n")
	write(t, app+".2.gz", "compressed\n")
	write(t, filepath.Join(f.dir, "other.gz"), "compressed\n")
	fh, err := os.OpenFile(app, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.m.Reconcile([]Entry{{Path: filepath.Join(f.dir, "*"), Topic: "t", ReadFrom: "beginning"}})
	fh.WriteString(numbered(0, 100))
	f.waitOpen(t, app, fh)
	f.col.wait(t, 100)
	for g := 0; g < 3; g++ {
		if err := os.Rename(app, fmt.Sprintf("%s-2026120%d", app, g)); err != nil {
			t.Fatal(err)
		}
		fh.WriteString(numbered(100+g*200, 200+g*200)) // still written after the rename
		fh.Close()
		if fh, err = os.OpenFile(app, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err != nil {
			t.Fatal(err)
		}
		fh.WriteString(numbered(200+g*200, 300+g*200))
	}
	fh.Close()
	const n = 700
	l := f.col.wait(t, n)
	// Every rotated copy closed, none opened by a tailer of its own.
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t, f.dir) > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := openFDs(t, f.dir); n > 1 {
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.HasPrefix(l, f.dir) {
				t.Log("open:", l)
			}
		}
		t.Errorf("%d files open", n)
	}
	seen := map[string]int{}
	for _, g := range f.col.wait(t, n) {
		seen[g.data]++
	}
	for i := 0; i < n; i++ {
		if w := fmt.Sprintf("line %05d", i); seen[w] != 1 {
			t.Errorf("%s arrived %d times", w, seen[w])
		}
	}
	if len(l) != n || len(f.col.wait(t, n)) != n {
		t.Errorf("got %d records, want %d", len(f.col.wait(t, n)), n)
	}
	for _, s := range f.m.Status() {
		if s.Path != app {
			t.Errorf("followed %s: a rotated copy or a compressed one", s.Path)
		}
	}
}

// TestGlobTwoThousandFiles: 2,000 matches, each followed; and a glob
// matching more than max_files_per_entry is refused, with the error in
// its status, while the other entry goes on.
func TestGlobTwoThousandFiles(t *testing.T) {
	opts := globOpts()
	opts.MaxFilesPerEntry = 2000
	f := newFixture(t, opts)
	many := filepath.Join(f.dir, "many")
	over := filepath.Join(f.dir, "over")
	os.Mkdir(many, 0o755)
	os.Mkdir(over, 0o755)
	const n = 2000
	var want []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%04d.log", i)
		write(t, filepath.Join(many, name), "hello "+name+"\n")
		want = append(want, name+":hello "+name)
	}
	for i := 0; i < n+1; i++ {
		write(t, filepath.Join(over, fmt.Sprintf("f%04d.log", i)), "refused\n")
	}
	f.m.Reconcile([]Entry{{Path: filepath.Join(many, "*.log"), Topic: "t", ReadFrom: "beginning"},
		{Path: filepath.Join(over, "*.log"), Topic: "t", ReadFrom: "beginning"}})
	s := f.waitState(t, filepath.Join(over, "*.log"), StateError)
	if !strings.Contains(s.LastError, "max_files_per_entry (2000)") {
		t.Errorf("refusal: %q", s.LastError)
	}
	checkSet(t, f.col.wait(t, n), want...)
	files := 0
	for _, s := range f.m.Status() {
		if s.Entry == filepath.Join(many, "*.log") {
			files++
		}
	}
	if files != n {
		t.Errorf("%d files in the status, want %d", files, n)
	}
}

// TestGlobRestartReadsNewFilesFromStart: a file that appeared while the
// agent was stopped is read from its beginning at the next start (the
// entry was there before); the files followed before resume at their
// positions.
func TestGlobRestartReadsNewFilesFromStart(t *testing.T) {
	f := newFixture(t, globOpts())
	pattern := filepath.Join(f.dir, "*.log")
	e := Entry{Path: pattern, Topic: "t"}
	write(t, filepath.Join(f.dir, "a.log"), "before\n")
	f.m.Reconcile([]Entry{e})
	f.waitState(t, filepath.Join(f.dir, "a.log"), StateRunning)
	write(t, filepath.Join(f.dir, "a.log"), "one\n")
	f.col.wait(t, 1)
	f.waitCommitted(t, filepath.Join(f.dir, "a.log"), int64(len("before\none\n")))
	f.m.Stop()
	if err := f.store.Flush(); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(f.dir, "a.log"), "two\n")
	write(t, filepath.Join(f.dir, "b.log"), "while stopped\n")
	col := f.restart(t, globOpts(), e)
	l := col.wait(t, 2)
	sort.Slice(l, func(i, j int) bool { return l[i].path < l[j].path })
	checkSet(t, l, "a.log:two", "b.log:while stopped")
}

func TestRotationOfAny(t *testing.T) {
	names := map[string]bool{"app.log": true, "web.log": true, "app": true}
	for name, want := range map[string]bool{
		"app.log.1": true, "app.log-20261206": true, "app-2026-12-06.log": true, "app.log.2.gz": true,
		"app.log.gz": true, "web.log.10": true, "app-audit.log": false, "other.log.1": false, "app.1": true,
		"app.log": false, "x-1.log": false,
	} {
		if got := rotationOfAny(name, names); got != want {
			t.Errorf("rotationOfAny(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestGlobFilter: every match is put to Options.Filter with its links
// resolved (the allowlist's call site, #16): a link to a refused file is
// not followed, the other matches are.
func TestGlobFilter(t *testing.T) {
	opts := globOpts()
	outside := t.TempDir()
	opts.Filter = func(p string) error {
		if strings.HasPrefix(p, outside) {
			return fmt.Errorf("%s is outside the allowed paths", p)
		}
		return nil
	}
	f := newFixture(t, opts)
	write(t, filepath.Join(outside, "secret.log"), "secret\n")
	if err := os.Symlink(filepath.Join(outside, "secret.log"), filepath.Join(f.dir, "link.log")); err != nil {
		t.Fatal(err)
	}
	f.m.Reconcile([]Entry{{Path: filepath.Join(f.dir, "*.log"), Topic: "t", ReadFrom: "beginning"}})
	write(t, filepath.Join(f.dir, "a.log"), "allowed\n")
	checkSet(t, f.col.wait(t, 1), "a.log:allowed")
	for _, s := range f.m.Status() {
		if s.Path != filepath.Join(f.dir, "a.log") {
			t.Errorf("followed %s", s.Path)
		}
	}
}

// TestGlobDeletedMatchLetGo: a deleted match is read to its end by its
// tailer, which then stops (at a poll): a glob over short-lived files does
// not keep a tailer for each file it ever matched.
func TestGlobDeletedMatchLetGo(t *testing.T) {
	f := newFixture(t, testOpts())
	a := filepath.Join(f.dir, "a.log")
	f.m.Reconcile([]Entry{{Path: filepath.Join(f.dir, "*.log"), Topic: "t", ReadFrom: "beginning"}})
	write(t, a, "one\n")
	f.col.wait(t, 1)
	fh, err := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	fh.WriteString("two, after the delete\n")
	fh.Close()
	checkSet(t, f.col.wait(t, 2), "a.log:one", "a.log:two, after the delete")
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := f.m.Status()
		if len(st) == 1 && st[0].Path == filepath.Join(f.dir, "*.log") && st[0].State == StateWaiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted match is still followed: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitReleased(t, f.dir)
}

// TestGlobRenamedWhileStopped: a match renamed to a rotated name while
// the agent is stopped (no new file at its name yet) is read on from its
// saved offset by its own tailer, not taken for a new match and read again
// from its beginning.
func TestGlobRenamedWhileStopped(t *testing.T) {
	f := newFixture(t, testOpts())
	app := filepath.Join(f.dir, "app.log")
	e := Entry{Path: app + "*", Topic: "t", ReadFrom: "beginning"}
	write(t, app, "one\n")
	f.m.Reconcile([]Entry{e})
	f.col.wait(t, 1)
	f.waitCommitted(t, app, 4)
	f.m.Stop()
	if err := f.store.Flush(); err != nil {
		t.Fatal(err)
	}
	write(t, app, "two\n")
	if err := os.Rename(app, app+".1"); err != nil {
		t.Fatal(err)
	}
	col := f.restart(t, testOpts(), e)
	col.wait(t, 1)
	write(t, app, "three\n") // the new file: its lines come after the rotated file's
	checkSet(t, col.wait(t, 2), "app.log:two", "app.log:three")
}
