package taillog

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Real stack traces, each a record of several lines after a line that
// begins with a timestamp.
const (
	javaTrace = "2026-12-06 10:00:01.123 ERROR [http-nio-8080-exec-3] c.e.api.Handler - request failed\n" +
		"java.lang.IllegalStateException: connection pool closed\n" +
		"\tat com.example.db.Pool.take(Pool.java:88)\n" +
		"\tat com.example.api.Handler.serve(Handler.java:41)\n" +
		"\tat org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)\n" +
		"Caused by: java.io.IOException: Broken pipe\n" +
		"\tat java.base/sun.nio.ch.SocketDispatcher.write0(Native Method)\n" +
		"\tat java.base/sun.nio.ch.SocketDispatcher.write(SocketDispatcher.java:62)\n" +
		"\t... 12 more\n"
	pythonTrace = "2026-12-06 10:00:02,456 ERROR worker crashed\n" +
		"Traceback (most recent call last):\n" +
		"  File \"/srv/app/worker.py\", line 42, in run\n" +
		"    result = job()\n" +
		"  File \"/srv/app/jobs.py\", line 7, in job\n" +
		"    return 1 / 0\n" +
		"ZeroDivisionError: division by zero\n"
	goPanic = "2026-12-06T10:00:03Z FATAL handler panicked\n" +
		"panic: runtime error: invalid memory address or nil pointer dereference\n" +
		"[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a5b3c]\n" +
		"\n" +
		"goroutine 1 [running]:\n" +
		"main.(*Server).handle(0x0, {0x7ffd5c, 0x3})\n" +
		"\t/src/server.go:88 +0x1c\n" +
		"main.main()\n" +
		"\t/src/main.go:12 +0x25\n" +
		"\n" +
		"goroutine 7 [chan receive]:\n" +
		"main.worker(0xc000012345)\n" +
		"\t/src/worker.go:21 +0x45\n" +
		"created by main.main in goroutine 1\n" +
		"\t/src/main.go:10 +0x65\n"
)

var timestampStart = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[ T]`)

func single(i int) string {
	return fmt.Sprintf("2026-12-06 10:00:%02d INFO request %d served\n", i%60, i)
}

// traces is single lines with the three traces between them: the file's
// text and the records it holds, each with its offset.
func traces() (string, []got) {
	var b strings.Builder
	var want []got
	add := func(rec string) {
		want = append(want, got{offset: int64(b.Len()), data: strings.TrimSuffix(rec, "\n")})
		b.WriteString(rec)
	}
	for i, tr := range []string{javaTrace, pythonTrace, goPanic} {
		add(single(i * 2))
		add(tr)
		add(single(i*2 + 1))
	}
	return b.String(), want
}

func startRule(timeout time.Duration) *Multiline {
	return &Multiline{Start: timestampStart, MaxLines: 500, MaxBytes: 1 << 20, Timeout: timeout}
}

func checkRecords(t *testing.T, path string, got, want []got) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		w := want[i]
		w.path = path
		if got[i] != w {
			t.Errorf("record %d = %+v\nwant %+v", i, got[i], w)
		}
	}
}

// TestMultilineStackTraces: Java (with Caused by and "... 12 more"),
// Python and Go traces among single lines become one record each, at its
// first line's offset; the last record of the now quiet file is sent once
// its timeout passes, not held until the next write.
func TestMultilineStackTraces(t *testing.T) {
	f := newFixture(t, testOpts())
	path := filepath.Join(f.dir, "app.log")
	text, want := traces()
	f.m.Reconcile([]Entry{{Path: path, Topic: "t", Multiline: startRule(100 * time.Millisecond)}})
	f.waitState(t, path, StateWaiting)
	write(t, path, text)
	checkRecords(t, path, f.col.wait(t, len(want)), want)
	f.waitCommitted(t, path, int64(len(text)))
}

// TestMultilineContinue: the continue form joins the lines that match it
// to the record before them.
func TestMultilineContinue(t *testing.T) {
	f := newFixture(t, testOpts())
	path := filepath.Join(f.dir, "app.log")
	rule := &Multiline{Continue: regexp.MustCompile(`^(\s|Caused by:)`), MaxLines: 500, MaxBytes: 1 << 20, Timeout: 50 * time.Millisecond}
	f.m.Reconcile([]Entry{{Path: path, Topic: "t", Multiline: rule}})
	f.waitState(t, path, StateWaiting)
	// A trace as a JVM prints it: the exception's line, then frames
	// indented, and "Caused by:".
	trace := javaTrace[strings.Index(javaTrace, "java.lang"):]
	text := single(1) + trace + single(2)
	write(t, path, text)
	want := []got{{offset: 0, data: strings.TrimSuffix(single(1), "\n")},
		{offset: int64(len(single(1))), data: strings.TrimSuffix(trace, "\n")},
		{offset: int64(len(single(1) + trace)), data: strings.TrimSuffix(single(2), "\n")}}
	checkRecords(t, path, f.col.wait(t, 3), want)
}

// TestMultilineQuietFileTimeout: a trace that is the file's last record
// arrives although nothing is written after it.
// No poll comes (an hour away), and the read delay is longer than the
// timeout: the timer's poke alone has the record sent.
func TestMultilineQuietFileTimeout(t *testing.T) {
	opts := testOpts()
	opts.PollInterval, opts.MaxReadDelay = time.Hour, time.Second
	f := newFixture(t, opts)
	path := filepath.Join(f.dir, "app.log")
	f.m.Reconcile([]Entry{{Path: path, Topic: "t", Multiline: startRule(100 * time.Millisecond)}})
	f.waitState(t, path, StateWaiting)
	write(t, path, single(0)+pythonTrace)
	l := f.col.wait(t, 2)
	if l[1].data != strings.TrimSuffix(pythonTrace, "\n") {
		t.Fatalf("last record = %q", l[1].data)
	}
}

// TestMultilineAcrossRotation: a trace being written when the file is
// renamed away is completed from the old file (the writer still has it
// open), never split between the old file and the new.
func TestMultilineAcrossRotation(t *testing.T) {
	f := newFixture(t, testOpts())
	path := filepath.Join(f.dir, "app.log")
	// No timeout: only the rotated file's end completes its last record.
	f.m.Reconcile([]Entry{{Path: path, Topic: "t", Multiline: startRule(0)}})
	f.waitState(t, path, StateWaiting)
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	half := strings.Index(javaTrace, "Caused by")
	fh.WriteString(single(0) + javaTrace[:half])
	f.waitOpen(t, path, fh)
	f.col.wait(t, 1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, path, single(1)+goPanic+single(2))
	fh.WriteString(javaTrace[half:])
	fh.Close()
	// The last single line of the new file is held (no timeout). The
	// old file's last record comes once that file is done (RotateWait),
	// after the new file's first records.
	l := f.col.wait(t, 4)
	want := map[got]bool{
		{path, 0, strings.TrimSuffix(single(0), "\n")}:                     true,
		{path, int64(len(single(0))), strings.TrimSuffix(javaTrace, "\n")}: true,
		{path, 0, strings.TrimSuffix(single(1), "\n")}:                     true,
		{path, int64(len(single(1))), strings.TrimSuffix(goPanic, "\n")}:   true,
	}
	for _, g := range l {
		if !want[g] {
			t.Errorf("unexpected record %+v", g)
		}
		delete(want, g)
	}
}

// TestMultilineRestartResumesAtRecordStart: a record held when the agent
// stops is not committed past: the next start reads it again from its
// first line, whole, and nothing before it twice.
func TestMultilineRestartResumesAtRecordStart(t *testing.T) {
	f := newFixture(t, testOpts())
	path := filepath.Join(f.dir, "app.log")
	e := Entry{Path: path, Topic: "t", Multiline: startRule(0)}
	f.m.Reconcile([]Entry{e})
	f.waitState(t, path, StateWaiting)
	half := strings.Index(pythonTrace, "  File \"/srv/app/jobs.py\"")
	write(t, path, single(0)+pythonTrace[:half])
	f.col.wait(t, 1)
	f.waitCommitted(t, path, int64(len(single(0))))
	f.m.Stop()
	if err := f.store.Flush(); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.store.Get(path); p.Current.Offset != int64(len(single(0))) {
		t.Fatalf("committed offset %d inside or past the held record, want %d", p.Current.Offset, len(single(0)))
	}
	write(t, path, pythonTrace[half:]+single(1))
	col := f.restart(t, testOpts(), Entry{Path: path, Topic: "t", Multiline: startRule(100 * time.Millisecond)})
	l := col.wait(t, 2)
	if l[0].data != strings.TrimSuffix(pythonTrace, "\n") || l[0].offset != int64(len(single(0))) {
		t.Errorf("first record after restart = %+v", l[0])
	}
	if l[1].data != strings.TrimSuffix(single(1), "\n") || len(l) != 2 {
		t.Errorf("records after restart = %+v", l)
	}
}

// TestMultilineLimits: a record ends at max_lines and before max_bytes;
// the rest starts a new record, and each cut is counted.
func TestMultilineLimits(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rule  Multiline
		sizes []int // lines per record
	}{
		{"max_lines", Multiline{MaxLines: 4, MaxBytes: 1 << 20}, []int{4, 4, 2, 1}},
		{"max_bytes", Multiline{MaxLines: 500, MaxBytes: 3*8 + 4}, []int{3, 3, 3, 1, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testOpts())
			path := filepath.Join(f.dir, "app.log")
			rule := tt.rule
			rule.Start, rule.Timeout = regexp.MustCompile(`^S`), 50*time.Millisecond
			f.m.Reconcile([]Entry{{Path: path, Topic: "t", Multiline: &rule}})
			f.waitState(t, path, StateWaiting)
			var b strings.Builder
			n := 0
			for _, k := range tt.sizes {
				n += k
			}
			b.WriteString("S start\n") // 8 bytes per line
			for i := 1; i < n-1; i++ {
				fmt.Fprintf(&b, " more %d\n", i)
			}
			b.WriteString("S other\n")
			write(t, path, b.String())
			l := f.col.wait(t, len(tt.sizes))
			for i, k := range tt.sizes {
				if got := strings.Count(l[i].data, "\n") + 1; got != k {
					t.Errorf("record %d has %d lines, want %d: %q", i, got, k, l[i].data)
				}
			}
			if s := f.m.Status()[0]; s.RecordsSplit != int64(len(tt.sizes)-2) {
				t.Errorf("records_split = %d, want %d", s.RecordsSplit, len(tt.sizes)-2)
			}
		})
	}
}

// waitCommitted waits until path's committed offset is off.
func (f *fixture) waitCommitted(t *testing.T, path string, off int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, ok := f.store.Get(path); ok && p.Current.Offset == off {
			return
		}
		if time.Now().After(deadline) {
			p, _ := f.store.Get(path)
			t.Fatalf("committed offset %d, want %d", p.Current.Offset, off)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
