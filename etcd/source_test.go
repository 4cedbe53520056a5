package etcd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
)

// waitFor bounds every wait on an event; a healthy run sees each one in
// milliseconds.
const waitFor = 5 * time.Second

// logSink routes the source's logs to t.Log and keeps them, so that a
// test can wait for a line instead of sleeping.
type logSink struct {
	t       testing.TB
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func (w *logSink) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	w.t.Log(line)
	w.mu.Lock()
	w.lines = append(w.lines, line)
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

// wait returns once a line containing every one of words was logged.
func (w *logSink) wait(t *testing.T, words ...string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		w.mu.Lock()
		for _, l := range w.lines {
			if containsAll(l, words...) {
				w.mu.Unlock()
				return
			}
		}
		w.mu.Unlock()
		select {
		case <-w.changed:
		case <-deadline:
			t.Fatalf("no log line with %q within %v", words, waitFor)
		}
	}
}

func containsAll(s string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// etcdServer is an embedded etcd that may be closed by the test and again
// by its cleanup.
type etcdServer struct {
	*testenv.Etcd
	once sync.Once
}

func (e *etcdServer) Close() { e.once.Do(e.Etcd.Close) }

// startEtcd starts an embedded etcd with its data in dir, stopped when the
// test ends (after the sources and clients registered later).
func startEtcd(t *testing.T, dir string, port int) *etcdServer {
	t.Helper()
	e, err := testenv.StartEtcd(dir, port)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	s := &etcdServer{Etcd: e}
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// unreachable returns an endpoint where nothing listens.
func unreachable(t *testing.T) (endpoint string, port int) {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port), port
}

// harness runs a Source and records what it applies and reports.
type harness struct {
	src     *Source
	logs    *logSink
	applied chan []Entry
	revs    chan int64
	rejects chan error
	restart atomic.Int64
	cancel  context.CancelFunc
	done    chan struct{}

	// onApplied, when set before run, is called from the Applied hook.
	onApplied func(rev int64)
}

func newHarness(t *testing.T, cli *clientv3.Client, host, dataDir string, timeout time.Duration) *harness {
	h := &harness{
		// Large buffers: apply must never block Run in a test.
		applied: make(chan []Entry, 1000),
		revs:    make(chan int64, 1000),
		rejects: make(chan error, 1000),
		logs:    &logSink{t: t, changed: make(chan struct{}, 1)},
	}
	hooks := Hooks{
		Applied: func(rev int64) {
			h.revs <- rev
			if h.onApplied != nil {
				h.onApplied(rev)
			}
		},
		Rejected:     func(err error) { h.rejects <- err },
		WatchRestart: func() { h.restart.Add(1) },
	}
	h.src = NewSource(Ready(cli), host, dataDir, timeout, hooks, slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return h
}

// run starts Run; the test's cleanup stops it and fails if it hangs.
func (h *harness) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	var calls atomic.Int32
	go func() {
		defer close(h.done)
		h.src.Run(ctx, func(e []Entry) {
			// apply is never called concurrently.
			if calls.Add(1) != 1 {
				t.Error("apply called concurrently")
			}
			h.applied <- e
			calls.Add(-1)
		})
	}()
	t.Cleanup(func() { h.stop(t) })
}

// stop cancels Run and waits (bounded) for it to return.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.stopWithin(t, waitFor)
}

func (h *harness) stopWithin(t *testing.T, d time.Duration) {
	t.Helper()
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(d):
		t.Fatalf("Run did not return within %v of its context being cancelled", d)
	}
}

func (h *harness) next(t *testing.T, within time.Duration) []Entry {
	t.Helper()
	select {
	case e := <-h.applied:
		return e
	case <-time.After(within):
		t.Fatalf("nothing applied within %v", within)
		return nil
	}
}

func (h *harness) expect(t *testing.T, within time.Duration, want []Entry) {
	t.Helper()
	if got := h.next(t, within); !reflect.DeepEqual(got, want) {
		t.Fatalf("applied %+v, want %+v", got, want)
	}
}

func (h *harness) nextReject(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.rejects:
		return err
	case <-time.After(waitFor):
		t.Fatalf("nothing rejected within %v", waitFor)
		return nil
	}
}

func put(t *testing.T, cli *clientv3.Client, key, value string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	resp, err := cli.Put(ctx, key, value)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp.Header.Revision
}

func readCache(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "collect_config.json"))
	if err != nil {
		t.Fatalf("read cache: %v", err)
	}
	return string(b)
}

func entriesJSON(topic string, paths ...string) string {
	parts := make([]string, len(paths))
	for i, p := range paths {
		parts[i] = fmt.Sprintf(`{"path": %q, "topic": %q}`, p, topic)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func entries(topic string, paths ...string) []Entry {
	out := make([]Entry, len(paths))
	for i, p := range paths {
		out[i] = Entry{Path: p, Topic: topic}
	}
	return out
}

// fixture is one etcd, a client, and a data dir for the source.
type fixture struct {
	dir     string
	etcd    *etcdServer
	cli     *clientv3.Client
	dataDir string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	e := startEtcd(t, dir, 0)
	f := &fixture{dir: dir, etcd: e, cli: newClient(t, e.Endpoint), dataDir: filepath.Join(dir, "data")}
	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSourceInitialGet: the value in etcd at start is applied first, its
// revision reported and the value cached; the cache does not compete
// with a reachable etcd.
func TestSourceInitialGet(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A stale cache from an earlier run: etcd answers, so it must not be applied.
	stale := entriesJSON("stale", "/var/log/stale.log")
	if err := os.WriteFile(filepath.Join(f.dataDir, "collect_config.json"), []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	value := `[{"path": "/var/log/nginx/access.log", "topic": "web_log"},
	           {"path": "/var/log/app/../syslog", "topic": "sys", "read_from": "beginning"}]`
	rev := put(t, f.cli, fleet.ConfigKey("h1"), value)
	put(t, f.cli, fleet.ConfigKey("h2"), entriesJSON("other", "/other.log")) // another host's key

	h := newHarness(t, f.cli, "h1", f.dataDir, 2*time.Second)
	if got := h.src.Key(); got != "/logagent/h1/collect_config" {
		t.Errorf("Key() = %q", got)
	}
	h.run(t)
	h.expect(t, waitFor, []Entry{
		{Path: "/var/log/nginx/access.log", Topic: "web_log"},
		{Path: "/var/log/syslog", Topic: "sys", ReadFrom: "beginning"},
	})
	if got := <-h.revs; got != rev {
		t.Errorf("Applied hook revision = %d, want %d", got, rev)
	}
	st := h.src.State()
	if st.Revision != rev || st.LastError != "" || len(st.Problems) != 0 {
		t.Errorf("State() = %+v, want revision %d and no error", st, rev)
	}
	if got := readCache(t, f.dataDir); got != value {
		t.Errorf("cache = %q, want the applied value %q", got, value)
	}
}

// TestSourceNoKey: no key at start means nothing to collect, and the key
// put later is picked up.
func TestSourceNoKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := newHarness(t, f.cli, "h1", f.dataDir, 2*time.Second)
	h.run(t)
	h.expect(t, waitFor, nil)
	put(t, f.cli, fleet.ConfigKey("h1"), entriesJSON("t", "/a.log"))
	h.expect(t, waitFor, entries("t", "/a.log"))
}

// TestSourceFollowsPuts: each PUT is applied within a second (the
// contract), in order, and the cache holds the latest one. Changes to
// other keys are not applied.
func TestSourceFollowsPuts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := fleet.ConfigKey("h1")
	put(t, f.cli, key, entriesJSON("t", "/a.log"))
	h := newHarness(t, f.cli, "h1", f.dataDir, 2*time.Second)
	h.run(t)
	h.expect(t, waitFor, entries("t", "/a.log"))
	<-h.revs

	// One at a time: each within a second.
	for i, paths := range [][]string{{"/a.log", "/b.log"}, {"/b.log"}, {"/c.log", "/b.log", "/a.log"}} {
		value := entriesJSON(fmt.Sprintf("t%d", i), paths...)
		rev := put(t, f.cli, key, value)
		h.expect(t, time.Second, entries(fmt.Sprintf("t%d", i), paths...))
		if got := <-h.revs; got != rev {
			t.Errorf("put %d: applied revision %d, want %d", i, got, rev)
		}
		if st := h.src.State(); st.Revision != rev {
			t.Errorf("put %d: State().Revision = %d, want %d", i, st.Revision, rev)
		}
		if got := readCache(t, f.dataDir); got != value {
			t.Errorf("put %d: cache = %q, want %q", i, got, value)
		}
	}

	// A burst, with writes to neighbouring keys in between: every value of
	// this key arrives, in order, and nothing else does.
	var want [][]Entry
	for i := range 10 {
		put(t, f.cli, key, entriesJSON("burst", fmt.Sprintf("/burst/%d.log", i)))
		put(t, f.cli, fleet.ConfigKey("h10"), entriesJSON("x", "/h10.log"))
		put(t, f.cli, fleet.StatusKey("h1"), `{"state": "running"}`)
		want = append(want, entries("burst", fmt.Sprintf("/burst/%d.log", i)))
	}
	for i, w := range want {
		if got := h.next(t, waitFor); !reflect.DeepEqual(got, w) {
			t.Fatalf("burst %d: applied %+v, want %+v", i, got, w)
		}
	}
	// Had a write to the other host's key or to the status key been
	// applied, it would come out of applied before this value.
	put(t, f.cli, key, entriesJSON("end", "/end.log"))
	h.expect(t, waitFor, entries("end", "/end.log"))
	if got := readCache(t, f.dataDir); got != entriesJSON("end", "/end.log") {
		t.Errorf("cache = %q, want the last value", got)
	}
}

// TestSourceKeepsLastGoodConfig: a malformed value is not applied, is
// reported in State and the Rejected hook, and leaves the cache alone; a
// good value clears the error.
func TestSourceKeepsLastGoodConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := fleet.ConfigKey("h1")
	good := entriesJSON("t", "/a.log", "/b.log")
	goodRev := put(t, f.cli, key, good)
	h := newHarness(t, f.cli, "h1", f.dataDir, 2*time.Second)
	h.run(t)
	h.expect(t, waitFor, entries("t", "/a.log", "/b.log"))

	for _, bad := range []string{
		`[{"path": "/a.log", "topic": "t"}`, // cut short
		`{"path": "/a.log", "topic": "t"}`,  // not an array
		`[{"path": 7, "topic": "t"}]`,       // wrong type
		`null`,                              // would stop every file
		``,                                  // emptied by mistake
		`[{"pth": "/a.log", "topic": "t"}]`, // not one usable entry
	} {
		badRev := put(t, f.cli, key, bad)
		err := h.nextReject(t)
		for _, w := range []string{key, fmt.Sprint(badRev), "keeping the last good config"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("value %q: rejection %q does not contain %q", bad, err, w)
			}
		}
		st := h.src.State()
		if st.LastError != err.Error() {
			t.Errorf("value %q: State().LastError = %q, want %q", bad, st.LastError, err)
		}
		if st.Revision != goodRev {
			t.Errorf("value %q: State().Revision = %d, want the last good %d", bad, st.Revision, goodRev)
		}
		if got := readCache(t, f.dataDir); got != good {
			t.Errorf("value %q: cache = %q, want the last good value", bad, got)
		}
	}
	// Had a rejected value been applied, it would come out of applied
	// before this one: Run applies in revision order.
	next := entriesJSON("t", "/c.log")
	nextRev := put(t, f.cli, key, next)
	h.expect(t, waitFor, entries("t", "/c.log"))
	st := h.src.State()
	if st.LastError != "" || st.Revision != nextRev {
		t.Errorf("after a good value, State() = %+v, want revision %d and no error", st, nextRev)
	}
	if got := readCache(t, f.dataDir); got != next {
		t.Errorf("cache = %q, want %q", got, next)
	}

	// A value with one bad entry is applied without it; the problem is in State.
	partial := `[{"path": "/d.log", "topic": "t"}, {"path": "relative.log", "topic": "t"}]`
	put(t, f.cli, key, partial)
	h.expect(t, waitFor, entries("t", "/d.log"))
	st = h.src.State()
	if st.LastError != "" || len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "relative.log") {
		t.Errorf("State() = %+v, want one problem naming relative.log", st)
	}
	put(t, f.cli, key, entriesJSON("t", "/d.log"))
	h.expect(t, waitFor, entries("t", "/d.log"))
	if st := h.src.State(); len(st.Problems) != 0 {
		t.Errorf("problems not cleared by a clean value: %v", st.Problems)
	}
}

// TestSourceDelete: deleting the key stops every file (an empty list is
// applied and cached); putting it back applies it again.
func TestSourceDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := fleet.ConfigKey("h1")
	put(t, f.cli, key, entriesJSON("t", "/a.log"))
	h := newHarness(t, f.cli, "h1", f.dataDir, 2*time.Second)
	h.run(t)
	h.expect(t, waitFor, entries("t", "/a.log"))

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	resp, err := f.cli.Delete(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.next(t, waitFor); len(got) != 0 {
		t.Fatalf("after DELETE applied %+v, want an empty list", got)
	}
	if st := h.src.State(); st.Revision != resp.Header.Revision || st.LastError != "" {
		t.Errorf("State() = %+v, want revision %d", st, resp.Header.Revision)
	}
	if got := readCache(t, f.dataDir); strings.TrimSpace(got) != "[]" {
		t.Errorf("cache after DELETE = %q, want []", got)
	}
	put(t, f.cli, key, entriesJSON("t", "/b.log"))
	h.expect(t, waitFor, entries("t", "/b.log"))
}

// TestSourceRecoversFromCompaction: the revision the watch starts from is
// compacted away (the key changed and etcd compacted between the Get and
// the Watch). The watch fails with ErrCompacted; the source must read the
// key again, apply its latest value, and keep following it.
func TestSourceRecoversFromCompaction(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := fleet.ConfigKey("h1")
	put(t, f.cli, key, entriesJSON("t", "/v0.log"))
	h := newHarness(t, f.cli, "h1", f.dataDir, 2*time.Second)

	// The Applied hook runs between the first Get and its Watch: change
	// the key and compact there, so that the Watch from the Get's
	// revision + 1 is refused.
	var once sync.Once
	var compactRev int64
	h.onApplied = func(int64) {
		// On Run's goroutine: t.Errorf, not t.Fatalf.
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			for i := 1; i <= 3; i++ {
				resp, err := f.cli.Put(ctx, key, entriesJSON("t", fmt.Sprintf("/v%d.log", i)))
				if err != nil {
					t.Errorf("put: %v", err)
					return
				}
				compactRev = resp.Header.Revision
			}
			if _, err := f.cli.Compact(ctx, compactRev, clientv3.WithCompactPhysical()); err != nil {
				t.Errorf("compact: %v", err)
			}
		})
	}
	h.run(t)
	h.expect(t, waitFor, entries("t", "/v0.log"))
	// v1 and v2 are gone with the compaction; the Get after it sees v3.
	h.expect(t, waitFor, entries("t", "/v3.log"))
	if n := h.restart.Load(); n < 1 {
		t.Errorf("WatchRestart called %d times, want at least 1", n)
	}
	if st := h.src.State(); st.Revision != compactRev {
		t.Errorf("State().Revision = %d, want %d", st.Revision, compactRev)
	}
	// And the new watch follows the key.
	put(t, f.cli, key, entriesJSON("t", "/v4.log"))
	h.expect(t, waitFor, entries("t", "/v4.log"))
	put(t, f.cli, key, entriesJSON("t", "/v5.log"))
	h.expect(t, waitFor, entries("t", "/v5.log"))
}

// TestSourceSurvivesEtcdRestart: etcd stops while the source watches and
// comes back on the same data dir and port; a PUT after that is applied.
// Slow (closing etcd under an open watch stream waits for its request
// timeout), so it is skipped with -short.
func TestSourceSurvivesEtcdRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("closing etcd under a watch takes several seconds")
	}
	t.Parallel()
	dir := t.TempDir()
	_, port := unreachable(t)
	e := startEtcd(t, dir, port)
	cli := newClient(t, e.Endpoint)
	dataDir := t.TempDir()
	key := fleet.ConfigKey("h1")
	put(t, cli, key, entriesJSON("t", "/before.log"))
	h := newHarness(t, cli, "h1", dataDir, time.Second)
	h.run(t)
	h.expect(t, waitFor, entries("t", "/before.log"))

	e.Close()
	startEtcd(t, dir, port)
	rev := put(t, cli, key, entriesJSON("t", "/after.log"))
	// The value may come through the resumed watch, or through a Get
	// after the watch ended (then the old value may be applied again first).
	deadline := time.After(waitFor)
	for {
		select {
		case got := <-h.applied:
			if reflect.DeepEqual(got, entries("t", "/after.log")) {
				if st := h.src.State(); st.Revision != rev {
					t.Errorf("State().Revision = %d, want %d", st.Revision, rev)
				}
				// The client resumes the watch on its own, so WatchRestart
				// need not be called here (TestSourceRecoversFromCompaction
				// covers it).
				t.Logf("WatchRestart called %d times", h.restart.Load())
				later := entriesJSON("t", "/later.log")
				put(t, cli, key, later)
				h.expect(t, waitFor, entries("t", "/later.log"))
				if got := readCache(t, dataDir); got != later {
					t.Errorf("cache = %q, want %q", got, later)
				}
				// Stop the source before the cleanup closes the second etcd:
				// closing etcd under an open watch waits seconds.
				h.stop(t)
				return
			}
			if !reflect.DeepEqual(got, entries("t", "/before.log")) {
				t.Fatalf("applied %+v, want /before.log again or /after.log", got)
			}
		case <-deadline:
			t.Fatalf("PUT after the restart not applied within %v", waitFor)
		}
	}
}

// TestSourceStartsOnCache: etcd is unreachable at start; the cached config
// is applied at once, and etcd's value once etcd answers.
func TestSourceStartsOnCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cached := `[{"path": "/cached.log", "topic": "c", "read_from": "beginning"}, {"path": "bad", "topic": "c"}]`
	if err := os.WriteFile(filepath.Join(dataDir, "collect_config.json"), []byte(cached), 0o644); err != nil {
		t.Fatal(err)
	}
	endpoint, port := unreachable(t)

	// etcd's value, written while etcd listens elsewhere, so that the
	// source's first successful Get already sees it.
	etcdDir := filepath.Join(dir, "etcd")
	e := startEtcd(t, etcdDir, 0)
	put(t, newClient(t, e.Endpoint), fleet.ConfigKey("h1"), entriesJSON("live", "/live.log"))
	e.Close()

	cli := newClient(t, endpoint)
	h := newHarness(t, cli, "h1", dataDir, 200*time.Millisecond)
	h.run(t)
	h.expect(t, waitFor, []Entry{{Path: "/cached.log", Topic: "c", ReadFrom: "beginning"}})
	if st := h.src.State(); st.Revision != 0 {
		t.Errorf("on the cache, State().Revision = %d, want 0", st.Revision)
	}

	startEtcd(t, etcdDir, port)
	// The backoff between Gets is at most a few seconds here.
	h.expect(t, 2*waitFor, entries("live", "/live.log"))
	if got := readCache(t, dataDir); got != entriesJSON("live", "/live.log") {
		t.Errorf("cache = %q, want etcd's value", got)
	}
	if st := h.src.State(); st.Revision == 0 {
		t.Errorf("State().Revision = 0 after etcd answered")
	}
	put(t, cli, fleet.ConfigKey("h1"), entriesJSON("live", "/live2.log"))
	h.expect(t, waitFor, entries("live", "/live2.log"))
	// Before the cleanup closes etcd: closing it under a watch is slow.
	h.stop(t)
}

// TestSourceRejectedAtStartKeepsCache: etcd answers at start with a value
// it cannot apply; the last good config is the cached one, and it runs.
func TestSourceRejectedAtStartKeepsCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cached := entriesJSON("c", "/cached.log")
	if err := os.WriteFile(filepath.Join(f.dataDir, "collect_config.json"), []byte(cached), 0o644); err != nil {
		t.Fatal(err)
	}
	put(t, f.cli, fleet.ConfigKey("h1"), `[{"path": "/a.log"`)
	h := newHarness(t, f.cli, "h1", f.dataDir, 2*time.Second)
	h.run(t)
	h.expect(t, waitFor, entries("c", "/cached.log"))
	if st := h.src.State(); st.LastError == "" {
		t.Errorf("State() = %+v, want the rejection", st)
	}
	if got := readCache(t, f.dataDir); got != cached {
		t.Errorf("cache = %q, want it kept", got)
	}
	put(t, f.cli, fleet.ConfigKey("h1"), entriesJSON("t", "/b.log"))
	h.expect(t, waitFor, entries("t", "/b.log"))
	h.stop(t)
}

// TestSourceCacheSurvivesRestart: what one run applied from etcd, the
// next run starts on while etcd is down (same data dir).
func TestSourceCacheSurvivesRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	put(t, f.cli, fleet.ConfigKey("h1"), entriesJSON("t", "/first.log"))
	h1 := newHarness(t, f.cli, "h1", f.dataDir, 2*time.Second)
	h1.run(t)
	h1.expect(t, waitFor, entries("t", "/first.log"))
	put(t, f.cli, fleet.ConfigKey("h1"), entriesJSON("t", "/second.log", "/third.log"))
	h1.expect(t, waitFor, entries("t", "/second.log", "/third.log"))
	h1.stop(t)

	endpoint, _ := unreachable(t)
	h2 := newHarness(t, newClient(t, endpoint), "h1", f.dataDir, 200*time.Millisecond)
	h2.run(t)
	h2.expect(t, waitFor, entries("t", "/second.log", "/third.log"))
}

// TestSourceBadCache: a missing or corrupt cache while etcd is down
// applies nothing (the agent collects nothing rather than guessing).
func TestSourceBadCache(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cache *string
		log   string // what the source logs instead of applying it
	}{
		{"missing", nil, "no cached collect config"},
		{"corrupt", ptr(`[{"path": "/a.log"`), "cached collect config is corrupt"},
		{"not an array", ptr(`{"path": "/a.log", "topic": "t"}`), "cached collect config is corrupt"},
		{"null", ptr(`null`), "cached collect config is corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			if tc.cache != nil {
				if err := os.WriteFile(filepath.Join(dataDir, "collect_config.json"), []byte(*tc.cache), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			endpoint, _ := unreachable(t)
			h := newHarness(t, newClient(t, endpoint), "h1", dataDir, 50*time.Millisecond)
			h.run(t)
			// The cache is read once, right after the first Get failed;
			// once that is logged, nothing else can apply it.
			h.logs.wait(t, tc.log)
			h.stop(t)
			select {
			case got := <-h.applied:
				t.Fatalf("applied %+v from a %s cache", got, tc.name)
			default:
			}
			if tc.cache != nil {
				if got := readCache(t, dataDir); got != *tc.cache {
					t.Errorf("cache rewritten to %q", got)
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestSourceStopsPromptly: Run returns soon after its context is
// cancelled, whether it is watching, waiting for an unreachable etcd, or
// watching an etcd that went away.
func TestSourceStopsPromptly(t *testing.T) {
	t.Parallel()
	t.Run("watching", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		put(t, f.cli, fleet.ConfigKey("h1"), entriesJSON("t", "/a.log"))
		h := newHarness(t, f.cli, "h1", f.dataDir, 2*time.Second)
		h.run(t)
		h.expect(t, waitFor, entries("t", "/a.log"))
		h.stop(t)
	})
	t.Run("etcd unreachable, in a Get", func(t *testing.T) {
		t.Parallel()
		endpoint, _ := unreachable(t)
		// A Get timeout far beyond the bound: cancelling must cut it short.
		h := newHarness(t, newClient(t, endpoint), "h1", t.TempDir(), time.Minute)
		h.run(t)
		h.stopWithin(t, time.Second)
	})
	t.Run("etcd unreachable, in the backoff", func(t *testing.T) {
		t.Parallel()
		endpoint, _ := unreachable(t)
		dataDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dataDir, "collect_config.json"), []byte(entriesJSON("t", "/a.log")), 0o644); err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, newClient(t, endpoint), "h1", dataDir, 20*time.Millisecond)
		h.run(t)
		// The cache is applied after the first Get failed.
		h.expect(t, waitFor, entries("t", "/a.log"))
		// The backoff between Gets doubles from 250ms: by now Run is in
		// a wait of about 2s, which cancelling must cut short. Time is
		// the condition here, so this one sleeps.
		time.Sleep(2 * time.Second)
		h.stopWithin(t, time.Second)
	})
	t.Run("etcd gone while watching", func(t *testing.T) {
		if testing.Short() {
			t.Skip("closing etcd under a watch takes several seconds")
		}
		t.Parallel()
		f := newFixture(t)
		put(t, f.cli, fleet.ConfigKey("h1"), entriesJSON("t", "/a.log"))
		h := newHarness(t, f.cli, "h1", f.dataDir, 2*time.Second)
		h.run(t)
		h.expect(t, waitFor, entries("t", "/a.log"))
		f.etcd.Close()
		h.stop(t)
	})
}
