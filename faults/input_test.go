package faults

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logagent/logagent/internal/testenv"
)

// Case 8a: malformed JSON and wrong types in the etcd value. The agent
// keeps the last good config (the lines of its entry keep arriving) and
// logs a clear error naming the key.
func TestBadConfigValue(t *testing.T) {
	forClients(t, oneClient, func(t *testing.T, client string) {
		e := newEnv(t, "8a-bad-config-value", client, envOpts{})
		path := filepath.Join(e.dir, "app.log")
		w := newWriter(t, path)
		e.putConfig(entry{Path: path, Topic: "badvalue", ReadFrom: "beginning"})
		a := e.startAgent()
		a.waitLog("file opened", 15*time.Second)
		c := e.newChecker(path, "badvalue")
		w.write(100)
		if !c.waitLines(100, 100, 20*time.Second, 0) {
			t.Fatalf("the first lines did not arrive: %d of 100", c.distinct(100))
		}
		bad := []struct{ name, value, want string }{
			{"malformed JSON", `[{"path": "` + path + `", "topic": `, "not a JSON array"},
			// slog's text format quotes the error: field \"path\".
			{"wrong type", `[{"path": 5, "topic": "badvalue"}]`, `field \"path\" must be a string`},
			{"object, not array", `{"path": "` + path + `", "topic": "badvalue"}`, "not a JSON array"},
			{"null", `null`, "not a JSON array"},
		}
		for i, b := range bad {
			e.putRaw(b.value)
			a.waitLogN("collect config rejected", i+1, 10*time.Second)
			line := nthLine(a.logText(), "collect config rejected", i)
			if !strings.Contains(line, configKey) || !strings.Contains(line, b.want) || !strings.Contains(line, "level=ERROR") {
				t.Errorf("%s: the error does not name the key %s and say %q:\n%s", b.name, configKey, b.want, line)
			}
			w.write(100)
			n := w.written()
			if !c.waitLines(n, n, 20*time.Second, 0) {
				t.Errorf("after the %s value, the lines of the last good config stopped: %d of %d", b.name, c.distinct(n), n)
			}
		}
		total := w.written()
		c.waitAll(total, 10*time.Second)
		lost, dup := c.result(total, w)
		e.report(lost, dup, total, fmt.Sprintf("rejected=%d", strings.Count(a.logText(), "collect config rejected")))
		if strings.Contains(a.logText(), "stopped collecting") {
			t.Errorf("a rejected value stopped the last good config's file")
		}
		if lost != 0 {
			t.Fatalf("lost=%d dup=%d while bad values were put, want lost=0", lost, dup)
		}
	})
}

// nthLine returns the n-th (from 0) line of log containing s.
func nthLine(log, s string, n int) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			if n == 0 {
				return l
			}
			n--
		}
	}
	return ""
}

// Case 8b: entries wrong on their own: an empty path, an empty topic, a
// path that is a directory, a path that cannot be read. Each gets a clear
// error in the log; the other entries are unaffected.
func TestBadConfigEntries(t *testing.T) {
	forClients(t, oneClient, func(t *testing.T, client string) {
		e := newEnv(t, "8b-bad-config-entries", client, envOpts{})
		path := filepath.Join(e.dir, "app.log")
		w := newWriter(t, path)
		dirPath := filepath.Join(e.dir, "adir")
		if err := os.Mkdir(dirPath, 0o755); err != nil {
			t.Fatal(err)
		}
		// Unreadable: a path whose parent is a regular file (ENOTDIR). Root
		// reads a file of mode 000 anyway, so chmod cannot make one.
		notDirParent := filepath.Join(e.dir, "plainfile")
		os.WriteFile(notDirParent, []byte("x\n"), 0o644)
		unreadable := filepath.Join(notDirParent, "app.log")
		entries := []entry{
			{Path: "", Topic: "empty_path"},
			{Path: filepath.Join(e.dir, "other.log"), Topic: ""},
			{Path: dirPath, Topic: "a_directory"},
			{Path: unreadable, Topic: "unreadable"},
			{Path: path, Topic: "good", ReadFrom: "beginning"},
		}
		mode000 := filepath.Join(e.dir, "mode000.log")
		asRoot := os.Geteuid() == 0
		if !asRoot {
			os.WriteFile(mode000, []byte("secret\n"), 0o000)
			entries = append(entries, entry{Path: mode000, Topic: "mode000", ReadFrom: "beginning"})
		}
		e.putConfig(entries...)
		a := e.startAgent()
		a.waitLog("file opened", 15*time.Second)
		c := e.newChecker(path, "good")
		w.write(500)
		if !c.waitAll(500, 20*time.Second) {
			t.Errorf("the good entry's lines did not arrive: %d of 500", c.distinct(500))
		}
		lost, dup := c.result(500, w)
		e.report(lost, dup, 500, "")

		for _, want := range []struct{ what, text string }{
			{"empty path", `entry 1 (\"\"): path is empty`},
			{"empty topic", "entry 2 (\\\"" + filepath.Join(e.dir, "other.log") + "\\\"): topic is empty"},
			{"directory", dirPath + " is a directory"},
			{"unreadable (parent is a file)", "stat " + unreadable + ": not a directory"},
		} {
			if !within(5*time.Second, func() bool { return strings.Contains(a.logText(), want.text) }) {
				t.Errorf("%s: no clear error %q in the log", want.what, want.text)
			} else if l := nthLine(a.logText(), want.text, 0); !strings.Contains(l, "level=ERROR") {
				t.Errorf("%s: logged, but not as an error: %s", want.what, l)
			}
		}
		t.Run("unreadable-chmod-000", func(t *testing.T) {
			if asRoot {
				t.Skip("running as root, which reads a file of mode 000 anyway; the unreadable case is covered by a path whose parent is a file")
			}
			if !within(5*time.Second, func() bool { return strings.Contains(a.logText(), "open "+mode000+": permission denied") }) {
				t.Errorf("no clear error for the mode-000 file in the log")
			}
		})
		if lost != 0 {
			t.Fatalf("lost=%d dup=%d on the good entry next to bad ones, want lost=0", lost, dup)
		}
	})
}

// wantRec is one record the agent must send: its value and offset header.
type wantRec struct {
	off int64
	val []byte
}

// compareRecords matches the records received against the expected ones
// by offset header: lost = expected and never received, dup = received
// more than once, bad = a wrong value, an unexpected offset or header, or
// out of order.
func compareRecords(t *testing.T, path string, got []testenv.Record, exp []wantRec) (lost, dup, bad int) {
	t.Helper()
	byOff := map[int64]wantRec{}
	for _, w := range exp {
		byOff[w.off] = w
	}
	seen := map[int64]int{}
	last := int64(-1)
	for _, r := range got {
		off, err := strconv.ParseInt(r.Headers["offset"], 10, 64)
		w, ok := byOff[off]
		switch {
		case err != nil || !ok:
			bad++
			t.Errorf("unexpected record at offset %q: %q", r.Headers["offset"], clip(r.Value))
			continue
		case !bytes.Equal(r.Value, w.val):
			bad++
			t.Errorf("offset %d: value %q (%d bytes), want %q (%d bytes)", off, clip(r.Value), len(r.Value), clip(w.val), len(w.val))
		case r.Headers["path"] != path || r.Headers["host"] != host:
			bad++
			t.Errorf("offset %d: headers %v", off, r.Headers)
		case off <= last && seen[off] == 0:
			bad++
			t.Errorf("offset %d arrived after offset %d", off, last)
		}
		last = max(last, off)
		seen[off]++
	}
	for _, w := range exp {
		switch n := seen[w.off]; {
		case n == 0:
			lost++
			t.Errorf("never received: offset %d, %q", w.off, clip(w.val))
		case n > 1:
			dup += n - 1
		}
	}
	return lost, dup, bad
}

// waitValue polls c (keeping every record) until a record with value v
// arrived, or d passed.
func waitValue(c *checker, v string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c.poll(200 * time.Millisecond)
		for _, r := range c.others {
			if string(r.Value) == v {
				return true
			}
		}
	}
	return false
}

// inputCase starts an agent on one file read from its beginning and
// returns its path, the agent and a checker that keeps every record.
func inputCase(t *testing.T, name, client, topic string) (*env, string, *agentProc, *checker) {
	e := newEnv(t, name, client, envOpts{})
	path := filepath.Join(e.dir, "app.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.putConfig(entry{Path: path, Topic: topic, ReadFrom: "beginning"})
	a := e.startAgent()
	a.waitLog("file opened", 15*time.Second)
	c := e.newChecker(path, topic)
	c.keep = true
	return e, path, a, c
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

// Case 8c: a 3 MiB line is split into pieces of max_line_bytes (512 KiB),
// each its own record with its own offset header; the pieces put together
// are the line; the next lines follow, the pipeline does not stall.
func TestLongLine(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		const maxLine = 512 << 10
		e, path, a, c := inputCase(t, "8c-3MiB-line", client, "longline")
		rng := rand.New(rand.NewPCG(1, 2))
		big := func(n int) []byte {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte('!' + rng.IntN(94)) // printable, never '\n'
			}
			return b
		}
		// One exactly 6 pieces long, one with a short last piece.
		lines := [][]byte{[]byte("before"), big(3 << 20), big(3<<20 + 12345)}
		for i := 0; i < 100; i++ {
			lines = append(lines, []byte(fmt.Sprintf("after-%d", i)))
		}
		var data []byte
		var exp []wantRec
		for _, l := range lines {
			off := int64(len(data))
			if len(l) <= maxLine {
				exp = append(exp, wantRec{off, l})
			}
			for p := 0; len(l) > maxLine && p < len(l); p += maxLine {
				exp = append(exp, wantRec{off + int64(p), l[p:min(p+maxLine, len(l))]})
			}
			data = append(append(data, l...), '\n')
		}
		start := time.Now()
		appendFile(t, path, data)
		if !waitValue(c, "after-99", 30*time.Second) {
			t.Errorf("the lines after the long ones did not arrive within 30s")
		}
		took := time.Since(start)
		for end := time.Now().Add(time.Second); time.Now().Before(end); {
			c.poll(200 * time.Millisecond)
		}
		lost, dup, bad := compareRecords(t, path, c.others, exp)
		e.report(lost, dup, len(exp), fmt.Sprintf("bad=%d pieces=%d delivered_s=%.2f oversized_logged=%d", bad, len(exp)-101,
			took.Seconds(), strings.Count(a.logText(), "line longer than max_line_bytes")))
		if lost != 0 || dup != 0 || bad != 0 {
			t.Fatalf("lost=%d dup=%d bad=%d records for two 3 MiB lines and 101 short ones", lost, dup, bad)
		}
	})
}

// Case 8d: invalid UTF-8 and NUL bytes pass byte for byte; \r\n is a
// terminator, a lone \r is not.
func TestBinaryBytes(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		e, path, _, c := inputCase(t, "8d-invalid-utf8-nul", client, "binary")
		lines := []struct{ raw, val string }{
			{"\xff\xfe\xfd invalid utf-8\n", "\xff\xfe\xfd invalid utf-8"},
			{"nul\x00in\x00the\x00middle\n", "nul\x00in\x00the\x00middle"},
			{"\x00\n", "\x00"},
			{"\n", ""},
			{"\xc3\x28\xa0\xa1\xed\xa0\x80 bad sequences\n", "\xc3\x28\xa0\xa1\xed\xa0\x80 bad sequences"},
			{"crlf line\r\n", "crlf line"},
			{"lone\rcr inside\n", "lone\rcr inside"},
			{"\x00\xff\r\n", "\x00\xff"},
			{"last\n", "last"},
		}
		var data []byte
		var exp []wantRec
		for _, l := range lines {
			exp = append(exp, wantRec{int64(len(data)), []byte(l.val)})
			data = append(data, l.raw...)
		}
		appendFile(t, path, data)
		if !waitValue(c, "last", 20*time.Second) {
			t.Errorf("the last line did not arrive within 20s")
		}
		for end := time.Now().Add(time.Second); time.Now().Before(end); {
			c.poll(200 * time.Millisecond)
		}
		lost, dup, bad := compareRecords(t, path, c.others, exp)
		e.report(lost, dup, len(exp), fmt.Sprintf("bad=%d", bad))
		if lost != 0 || dup != 0 || bad != 0 {
			t.Fatalf("lost=%d dup=%d bad=%d: bytes not passed through exactly", lost, dup, bad)
		}
	})
}

// Case 8e: a last line without its newline is not sent until the newline
// comes; then it is sent once, whole.
func TestPartialLastLine(t *testing.T) {
	forClients(t, oneClient, func(t *testing.T, client string) {
		e, path, _, c := inputCase(t, "8e-partial-last-line", client, "partial")
		appendFile(t, path, []byte("complete-1\npartial-"))
		if !waitValue(c, "complete-1", 20*time.Second) {
			t.Fatalf("the complete line did not arrive within 20s")
		}
		// 1.5 s: 15 polls of the file, and inotify wake-ups, without a newline.
		for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
			c.poll(200 * time.Millisecond)
		}
		for _, r := range c.others {
			if strings.HasPrefix(string(r.Value), "partial") {
				t.Fatalf("an unfinished line was sent: %q at offset %s", r.Value, r.Headers["offset"])
			}
		}
		appendFile(t, path, []byte("end\ncomplete-2\n"))
		if !waitValue(c, "complete-2", 20*time.Second) {
			t.Errorf("the lines after the newline did not arrive within 20s")
		}
		for end := time.Now().Add(time.Second); time.Now().Before(end); {
			c.poll(200 * time.Millisecond)
		}
		exp := []wantRec{{0, []byte("complete-1")}, {11, []byte("partial-end")}, {23, []byte("complete-2")}}
		lost, dup, bad := compareRecords(t, path, c.others, exp)
		e.report(lost, dup, len(exp), fmt.Sprintf("bad=%d", bad))
		if lost != 0 || dup != 0 || bad != 0 {
			t.Fatalf("lost=%d dup=%d bad=%d: the partial line was not sent once, whole", lost, dup, bad)
		}
	})
}

// Case 8c, the newline later: a 3 MiB line (exactly 6 pieces) whose
// newline comes in a later write, as when a writer's buffer is flushed
// in parts. The pieces are sent as they come; the newline alone must not
// become a record of its own (an empty line that was never written).
func TestLongLineNewlineLater(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		const maxLine = 512 << 10
		e, path, _, c := inputCase(t, "8c-3MiB-line-newline-later", client, "longlater")
		line := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
		appendFile(t, path, line)
		time.Sleep(500 * time.Millisecond)
		appendFile(t, path, []byte("\nafter\n"))
		var exp []wantRec
		for p := 0; p < len(line); p += maxLine {
			exp = append(exp, wantRec{int64(p), line[p : p+maxLine]})
		}
		exp = append(exp, wantRec{int64(len(line)) + 1, []byte("after")})
		if !waitValue(c, "after", 20*time.Second) {
			t.Errorf("the line after the long one did not arrive within 20s")
		}
		for end := time.Now().Add(time.Second); time.Now().Before(end); {
			c.poll(200 * time.Millisecond)
		}
		lost, dup, bad := compareRecords(t, path, c.others, exp)
		e.report(lost, dup, len(exp), fmt.Sprintf("bad=%d", bad))
		if lost != 0 || dup != 0 || bad != 0 {
			t.Fatalf("lost=%d dup=%d bad=%d records for a 3 MiB line whose newline came later", lost, dup, bad)
		}
	})
}
