package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
	"github.com/logagent/logagent/taillog"
)

// Every integration test runs against each producer backend.
var clients = []string{conf.ClientSarama, conf.ClientFranzGo}

type tlogWriter struct {
	mu sync.Mutex
	t  testing.TB
}

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(&tlogWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type harness struct {
	t      testing.TB
	dir    string
	client string
	etcd   *testenv.Etcd
	kafka  *testenv.Kafka
	cli    *clientv3.Client
	cons   *testenv.Consumer
	seen   []testenv.Record
	extra  string // more ini lines

	cancel context.CancelFunc
	done   chan error
	agent  *Agent
}

const host = "test-host"

func newHarness(t testing.TB, client string) *harness {
	t.Helper()
	return newHarnessOn(t, client, func() (*testenv.Kafka, error) { return testenv.StartKafka(0) })
}

// newHarnessOn is newHarness with the Kafka startKafka starts.
func newHarnessOn(t testing.TB, client string, startKafka func() (*testenv.Kafka, error)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), client: client}
	var err error
	if h.etcd, err = testenv.StartEtcd(h.dir, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.etcd.Close)
	if h.kafka, err = startKafka(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.kafka.Close)
	h.cli, err = newEtcdClient(conf.Etcd{Endpoints: []string{h.etcd.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cli.Close() })
	h.cons, err = testenv.NewConsumer(h.kafka.Addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.cons.Close)
	return h
}

func (h *harness) config() *conf.Config {
	h.t.Helper()
	p, err := testenv.WriteConfig(h.dir, host, h.kafka.Addrs, h.etcd.Endpoint, "[kafka]\nclient = "+h.client+"\n"+h.extra)
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := conf.Load(p)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) start() {
	h.t.Helper()
	a, err := New(h.config(), testLogger(h.t), "test")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.agent, h.cancel, h.done = a, cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// enableAuth turns etcd's authentication on, with the user root.
func (h *harness) enableAuth(password string) {
	h.t.Helper()
	ctx := context.Background()
	for _, step := range []func() error{
		func() error { _, err := h.cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := h.cli.UserAdd(ctx, "root", password); return err },
		func() error { _, err := h.cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := h.cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			h.t.Fatal(err)
		}
	}
}

// stop stops the agent and fails if it takes longer than the bound.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		h.t.Fatal("agent did not stop within 15s")
	}
}

// kafkaDown stops Kafka; back starts it again on the same port (empty)
// and returns when it is up.
func (h *harness) kafkaDown() (back func() time.Time) {
	h.t.Helper()
	_, port, err := net.SplitHostPort(h.kafka.Addrs[0])
	if err != nil {
		h.t.Fatal(err)
	}
	h.kafka.Close()
	return func() time.Time {
		h.t.Helper()
		p, _ := strconv.Atoi(port)
		if h.kafka, err = testenv.StartKafka(p); err != nil {
			h.t.Fatal(err)
		}
		h.t.Cleanup(h.kafka.Close)
		return time.Now()
	}
}

func (h *harness) put(entries ...etcd.Entry) {
	h.t.Helper()
	b, _ := json.Marshal(entries)
	h.putRaw(string(b))
	for _, e := range entries {
		h.cons.AddTopics(e.Topic)
	}
}

func (h *harness) putRaw(v string) {
	h.t.Helper()
	if _, err := h.cli.Put(context.Background(), fleet.ConfigKey(host), v); err != nil {
		h.t.Fatal(err)
	}
}

// waitState waits until the agent's tailers are exactly paths, each in state.
func (h *harness) waitState(state string, paths ...string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := h.agent.Status()
		ok := len(st) == len(paths)
		for i := range st {
			if !ok || st[i].Path != paths[i] || st[i].State != state {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("tailers are %+v, want %v in state %s", st, paths, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// records waits until n records have arrived in total and returns them all.
func (h *harness) records(n int) []testenv.Record {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(h.seen) < n && time.Now().Before(deadline) {
		rs, err := h.cons.Poll(context.Background(), 500*time.Millisecond)
		if err != nil {
			h.t.Logf("poll: %v", err)
		}
		h.seen = append(h.seen, rs...)
	}
	if len(h.seen) < n {
		h.t.Fatalf("got %d records, want %d", len(h.seen), n)
	}
	return h.seen
}

// quiet asserts that no new record arrives for d.
func (h *harness) quiet(d time.Duration) {
	h.t.Helper()
	before := len(h.seen)
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		rs, _ := h.cons.Poll(context.Background(), time.Until(end))
		h.seen = append(h.seen, rs...)
	}
	if len(h.seen) != before {
		h.t.Fatalf("%d unexpected records: %q", len(h.seen)-before, values(h.seen[before:]))
	}
}

func values(rs []testenv.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	return out
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func forEachClient(t *testing.T, f func(t *testing.T, h *harness)) {
	for _, c := range clients {
		t.Run(c, func(t *testing.T) { f(t, newHarness(t, c)) })
	}
}

func TestRecordsAreByteExactWithHeaders(t *testing.T) {
	forEachClient(t, func(t *testing.T, h *harness) {
		log := filepath.Join(h.dir, "app.log")
		appendFile(t, log, "before the entry existed\n")
		h.start()
		h.put(etcd.Entry{Path: log, Topic: "app"})
		h.waitState("running", log)

		start := int64(len("before the entry existed\n"))
		lines := []string{"plain", "crlf ends here", "", "bad utf8 \xff\xfe", "nul \x00 inside", "tab\tand ünïcode"}
		appendFile(t, log, "plain\ncrlf ends here\r\n\nbad utf8 \xff\xfe\nnul \x00 inside\ntab\tand ünïcode\n")
		rs := h.records(len(lines))
		off := start
		for i, r := range rs {
			if r.Topic != "app" || !bytes.Equal(r.Value, []byte(lines[i])) {
				t.Errorf("record %d = %s %q, want app %q", i, r.Topic, r.Value, lines[i])
			}
			file := rs[0].Headers["file"]
			if !fileIDRE.MatchString(file) {
				t.Errorf("record %d: file header %q is not 16 hex digits", i, file)
			}
			want := map[string]string{"host": host, "path": log, "offset": strconv.FormatInt(off, 10), "file": file}
			if fmt.Sprint(r.Headers) != fmt.Sprint(want) {
				t.Errorf("record %d headers = %v, want %v", i, r.Headers, want)
			}
			if key := fleet.RecordID(host, file, strconv.FormatInt(off, 10)); string(r.Key) != key {
				t.Errorf("record %d key = %q, want %q", i, r.Key, key)
			}
			off += int64(len(lines[i])) + 1
			if i == 1 {
				off++ // \r
			}
		}
		h.quiet(300 * time.Millisecond)
	})
}

var fileIDRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestRecordIDs: every record's key is its line's id, host:file:offset;
// across a rename rotation, a truncation, a delete + recreate and a crash
// (positions older than what was delivered), no two different lines share
// an id, and a line sent again has the id it had the first time: keeping
// one record per key gives exactly the lines written.
func TestRecordIDs(t *testing.T) {
	forEachClient(t, func(t *testing.T, h *harness) {
		log := filepath.Join(h.dir, "app.log")
		positions := filepath.Join(h.dir, "data", "positions.json")
		h.start()
		h.put(etcd.Entry{Path: log, Topic: "ids"})
		h.waitState("waiting-for-file", log)
		next := 0
		write := func(n int) {
			var b strings.Builder
			for ; n > 0; n-- {
				fmt.Fprintf(&b, "line %03d\n", next)
				next++
			}
			appendFile(t, log, b.String())
			h.records(next)
		}
		write(5)
		if err := os.Rename(log, log+".1"); err != nil { // rename rotation
			t.Fatal(err)
		}
		write(5)
		if err := os.Truncate(log, 0); err != nil { // the truncate of copytruncate
			t.Fatal(err)
		}
		h.waitStatus(func(s taillog.Status) bool { return s.Truncations > 0 })
		write(5)
		if err := os.Remove(log); err != nil { // delete + recreate
			t.Fatal(err)
		}
		h.waitState("waiting-for-file", log)
		write(5)
		// What a crash leaves: positions saved before the lines below
		// were acknowledged.
		before, err := os.ReadFile(positions)
		if err != nil {
			t.Fatal(err)
		}
		write(5)
		h.stop()
		if err := os.WriteFile(positions, before, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(positions + taillog.RecentSuffix) // newer than before
		h.start()
		rs := h.records(next + 5) // at least the last five again
		h.quiet(500 * time.Millisecond)
		rs = h.seen

		byKey := map[string]string{}
		keyOf := map[string]string{}
		for _, r := range rs {
			k, v := string(r.Key), string(r.Value)
			if want := host + ":" + r.Headers["file"] + ":" + r.Headers["offset"]; k != want || !fileIDRE.MatchString(r.Headers["file"]) {
				t.Fatalf("record %q: key %q, want %q", v, k, want)
			}
			if w, ok := byKey[k]; ok && w != v {
				t.Fatalf("lines %q and %q share the id %s", w, v, k)
			}
			if w, ok := keyOf[v]; ok && w != k {
				t.Fatalf("line %q sent as %s, then again as %s", v, w, k)
			}
			byKey[k], keyOf[v] = v, k
		}
		if len(byKey) != next {
			t.Fatalf("%d distinct ids in %d records, want %d (one per line written)", len(byKey), len(rs), next)
		}
		for i := 0; i < next; i++ {
			if _, ok := keyOf[fmt.Sprintf("line %03d", i)]; !ok {
				t.Fatalf("line %03d missing", i)
			}
		}
	})
}

// TestKeyPath: with [kafka] key = path the record key is the configured
// path; the file header still carries the line's id.
func TestKeyPath(t *testing.T) {
	forEachClient(t, func(t *testing.T, h *harness) {
		h.extra = "key = path\n"
		log := filepath.Join(h.dir, "k.log")
		h.start()
		h.put(etcd.Entry{Path: log, Topic: "k"})
		h.waitState("waiting-for-file", log)
		appendFile(t, log, "one\ntwo\n")
		for _, r := range h.records(2) {
			if string(r.Key) != log || !fileIDRE.MatchString(r.Headers["file"]) {
				t.Fatalf("record %q: key %q, headers %v; want the key %q and a file header", r.Value, r.Key, r.Headers, log)
			}
		}
	})
}

// waitStatus waits until the agent's only file's status satisfies ok.
func (h *harness) waitStatus(ok func(taillog.Status) bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for st := h.agent.Status(); len(st) != 1 || !ok(st[0]); st = h.agent.Status() {
		if time.Now().After(deadline) {
			h.t.Fatalf("status never as awaited: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRecordTimestampIsReadTime: a record's timestamp is when the agent
// read its line, not when Kafka took it: lines read while Kafka is away
// keep their time. (sarama stamped a record when it batched it for a
// broker, after Kafka was back.)
func TestRecordTimestampIsReadTime(t *testing.T) {
	forEachClient(t, func(t *testing.T, h *harness) {
		kafkaBack := h.kafkaDown() // down when the agent starts, back below
		log := filepath.Join(h.dir, "ts.log")
		h.start()
		h.put(etcd.Entry{Path: log, Topic: "ts"})
		h.waitState("waiting-for-file", log)
		written := time.Now().Truncate(time.Millisecond)
		appendFile(t, log, "one\ntwo\n")
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if st := h.agent.Status(); len(st) == 1 && st[0].LinesRead == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the lines were not read: %+v", h.agent.Status())
			}
		}
		read := time.Now()
		time.Sleep(time.Second)
		back := kafkaBack()
		for i, r := range h.records(2) {
			if ts := r.Timestamp; ts.Before(written) || ts.After(read) {
				t.Errorf("record %d (%q): timestamp %s, want its read time (%s to %s); Kafka was back at %s", i, r.Value,
					ts.Format(time.StampMilli), written.Format(time.StampMilli), read.Format(time.StampMilli), back.Format(time.StampMilli))
			}
		}
	})
}

// TestRecordTimestampIsReadTimeWhenBufferFull: one read of many lines is
// cut into batches, and with Kafka down the buffer fills before the read's
// last batches are handed over; those lines still carry the read's time,
// not the time Kafka came back and their batches could be cut.
func TestRecordTimestampIsReadTimeWhenBufferFull(t *testing.T) {
	forEachClient(t, func(t *testing.T, h *harness) {
		kafkaBack := h.kafkaDown()
		h.extra = "[agent]\nbuffer_bytes = 256KiB\nmax_line_bytes = 64KiB\n"
		log := filepath.Join(h.dir, "full.log")
		h.start()
		h.put(etcd.Entry{Path: log, Topic: "full"})
		h.waitState("waiting-for-file", log)
		const n = 5000
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "line %05d %s\n", i, strings.Repeat("x", 80))
		}
		written := time.Now().Truncate(time.Millisecond)
		appendFile(t, log, b.String())
		// Wait until reading stops: the buffer is full.
		var read int64
		for stable, deadline := 0, time.Now().Add(10*time.Second); stable < 10; time.Sleep(50 * time.Millisecond) {
			st := h.agent.Status()
			if len(st) == 1 && st[0].BytesRead > 0 && st[0].BytesRead == read {
				stable++
			} else if len(st) == 1 {
				read, stable = st[0].BytesRead, 0
			}
			if time.Now().After(deadline) {
				t.Fatalf("reading did not stop: %+v", st)
			}
		}
		if read >= int64(b.Len()) {
			t.Fatalf("the whole file (%d bytes) was read with Kafka down: the buffer did not fill", read)
		}
		time.Sleep(time.Second)
		back := kafkaBack()
		late := 0
		for i, r := range h.records(n) {
			off, _ := strconv.ParseInt(r.Headers["offset"], 10, 64)
			end := off + int64(len(r.Value)) + 1
			if ts := r.Timestamp; ts.Before(written) || (end <= read && !ts.Before(back)) {
				if late++; late <= 3 {
					t.Errorf("record %d (offset %d, read before Kafka was back): timestamp %s, Kafka back at %s", i, off,
						ts.Format(time.StampMilli), back.Format(time.StampMilli))
				}
			}
		}
		if late > 0 {
			t.Fatalf("%d records of lines read before Kafka was back (its first %d bytes) stamped later", late, read)
		}
	})
}

func TestHotAddRemoveAndTopicChange(t *testing.T) {
	forEachClient(t, func(t *testing.T, h *harness) {
		a, b := filepath.Join(h.dir, "a.log"), filepath.Join(h.dir, "b.log")
		h.start()
		h.put(etcd.Entry{Path: a, Topic: "ta"})
		h.waitState("waiting-for-file", a)
		// A file that appears after its entry is read from its beginning.
		appendFile(t, a, "a1\n")
		h.records(1)

		// Hot add.
		h.put(etcd.Entry{Path: a, Topic: "ta"}, etcd.Entry{Path: b, Topic: "tb", ReadFrom: "beginning"})
		appendFile(t, b, "b1\n")
		appendFile(t, a, "a2\n")
		rs := h.records(3)
		got := map[string]string{}
		for _, r := range rs[1:] {
			got[string(r.Value)] = r.Topic
		}
		if got["b1"] != "tb" || got["a2"] != "ta" {
			t.Fatalf("after hot add got %v", got)
		}

		// Hot remove: lines appended after the removal never arrive.
		h.put(etcd.Entry{Path: b, Topic: "tb"})
		h.waitState("running", b)
		appendFile(t, a, "a3 after removal\n")
		appendFile(t, b, "b2\n")
		rs = h.records(4)
		if string(rs[3].Value) != "b2" {
			t.Fatalf("got %q, want b2", rs[3].Value)
		}
		h.quiet(500 * time.Millisecond)

		// Topic change: later lines go to the new topic, none is resent.
		h.put(etcd.Entry{Path: b, Topic: "tb2"})
		deadline := time.Now().Add(10 * time.Second)
		for st := h.agent.Status(); len(st) != 1 || st[0].Topic != "tb2"; st = h.agent.Status() {
			if time.Now().After(deadline) {
				t.Fatalf("topic not changed: %+v", st)
			}
			time.Sleep(20 * time.Millisecond)
		}
		appendFile(t, b, "b3\n")
		rs = h.records(5)
		if rs[4].Topic != "tb2" || string(rs[4].Value) != "b3" {
			t.Fatalf("got %s %q, want tb2 b3", rs[4].Topic, rs[4].Value)
		}

		// Added back, a resumes from its saved offset: a3 arrives once.
		h.put(etcd.Entry{Path: b, Topic: "tb2"}, etcd.Entry{Path: a, Topic: "ta"})
		rs = h.records(6)
		if string(rs[5].Value) != "a3 after removal" {
			t.Fatalf("got %q, want a3 after removal", rs[5].Value)
		}

		// Deleting the key stops everything.
		if _, err := h.cli.Delete(context.Background(), fleet.ConfigKey(host)); err != nil {
			t.Fatal(err)
		}
		h.waitState("")
		appendFile(t, a, "a4\n")
		h.quiet(500 * time.Millisecond)
	})
}

func TestRestartResumesWithoutLossOrDuplicate(t *testing.T) {
	forEachClient(t, func(t *testing.T, h *harness) {
		log := filepath.Join(h.dir, "r.log")
		h.start()
		h.put(etcd.Entry{Path: log, Topic: "r"})
		h.waitState("waiting-for-file", log)

		const n = 20000
		var b strings.Builder
		for i := 0; i < n/2; i++ {
			fmt.Fprintf(&b, "line %06d\n", i)
		}
		appendFile(t, log, b.String())
		h.stop()
		// Lines written while the agent is down are read on the next start.
		b.Reset()
		for i := n / 2; i < n; i++ {
			fmt.Fprintf(&b, "line %06d\n", i)
		}
		appendFile(t, log, b.String())
		h.start()
		rs := h.records(n)
		for i, r := range rs {
			if want := fmt.Sprintf("line %06d", i); string(r.Value) != want {
				t.Fatalf("record %d = %q, want %q", i, r.Value, want)
			}
		}
		h.quiet(500 * time.Millisecond)
	})
}

func TestMalformedConfigKeepsLastGood(t *testing.T) {
	h := newHarness(t, conf.ClientSarama)
	log := filepath.Join(h.dir, "m.log")
	h.start()
	h.put(etcd.Entry{Path: log, Topic: "m"})
	h.waitState("waiting-for-file", log)
	for _, bad := range []string{`{not json`, `{"path": "/x", "topic": "y"}`, `[{"path": 5, "topic": "t"}]`} {
		h.putRaw(bad)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(h.agent.src.State().LastError, "keeping the last good config") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not rejected: %+v", bad, h.agent.src.State())
			}
			time.Sleep(10 * time.Millisecond)
		}
		h.waitState("waiting-for-file", log)
	}
	appendFile(t, log, "still shipped\n")
	if rs := h.records(1); string(rs[0].Value) != "still shipped" {
		t.Fatalf("got %q", rs[0].Value)
	}
}

func TestStopIsBoundedWhenKafkaIsDown(t *testing.T) {
	for _, c := range clients {
		t.Run(c, func(t *testing.T) { stopBoundedWhenKafkaIsDown(t, c) })
	}
}

func stopBoundedWhenKafkaIsDown(t *testing.T, client string) {
	h := newHarness(t, client)
	log := filepath.Join(h.dir, "s.log")
	h.start()
	h.put(etcd.Entry{Path: log, Topic: "s"})
	h.waitState("waiting-for-file", log)
	appendFile(t, log, "one\n")
	h.records(1)
	h.kafka.Close()
	appendFile(t, log, "two\nthree\n")
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	h.stop() // fails the test beyond 15s; shutdown_timeout is 5s
	took := time.Since(start)
	t.Logf("stopped in %s with Kafka down", took)
	// One shutdown_timeout for the acks and the client's close together
	// (and a second for the close), not one each.
	if took > 5*time.Second+2500*time.Millisecond {
		t.Fatalf("stop took %s, more than shutdown_timeout 5s + 1s for the client", took)
	}
}

// TestStartsOnCacheWithEtcdAuthWhileEtcdDown: with etcd authentication the
// etcd client authenticates when it is made, so it cannot be made while etcd
// is down; the agent starts on its cached config all the same, and connects
// once etcd is back.
func TestStartsOnCacheWithEtcdAuthWhileEtcdDown(t *testing.T) {
	h := newHarness(t, conf.ClientFranzGo)
	log := filepath.Join(h.dir, "a.log")
	h.put(etcd.Entry{Path: log, Topic: "a"})
	h.enableAuth("secret")
	// A loaded machine can take more than a second to authenticate (bcrypt).
	h.extra = "[etcd]\nusername = root\npassword = secret\ndial_timeout = 10s\n"
	h.start() // authenticated: the config is applied and cached
	h.waitState("waiting-for-file", log)
	h.stop()
	h.extra = "[etcd]\nusername = root\npassword = wrong\ndial_timeout = 10s\n"
	if _, err := New(h.config(), testLogger(t), "test"); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("wrong etcd password: New = %v, want an authentication error", err)
	}
	h.extra = "[etcd]\nusername = root\npassword = secret\n"

	h.etcd.Close()
	h.start()
	h.waitState("waiting-for-file", log)
	appendFile(t, log, "while etcd is down\n")
	if rs := h.records(1); string(rs[0].Value) != "while etcd is down" {
		t.Fatalf("record = %q", rs[0].Value)
	}
	if err := h.agent.etcdHealthy(); err == nil || !strings.Contains(err.Error(), "not connected yet") {
		t.Fatalf("etcd health while down = %v, want not connected yet", err)
	}
	_, port, _ := strings.Cut(h.etcd.Endpoint, ":")
	portN, _ := strconv.Atoi(port)
	e, err := testenv.StartEtcd(h.dir, portN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	deadline := time.Now().Add(20 * time.Second)
	for h.agent.etcdHealthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not connected to etcd 20 s after it came back: %v", h.agent.etcdHealthy())
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.stop()
}
