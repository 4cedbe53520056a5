package transfer

// Integration tests: the Transfer against etcd (embed), Kafka (kfake) and
// a real OpenSearch node started by scripts/opensearch.sh.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopSharedOpenSearch()
	os.Exit(code)
}

// openSearch returns the package's OpenSearch node, started on first use.
func openSearch(t testing.TB) *testenv.OpenSearch {
	t.Helper()
	root, _ := filepath.Abs("..")
	return testenv.SharedOpenSearch(t, root)
}

// env is one test's servers and a transfer's config for them.
type env struct {
	t     testing.TB
	etcd  *clientv3.Client
	kafka *testenv.Kafka
	os    *testenv.OpenSearch
	cfg   *conf.TransferConfig
	prod  *kgo.Client
}

func newEnv(t testing.TB) *env {
	t.Helper()
	node := openSearch(t)
	dir := t.TempDir()
	e, err := testenv.StartEtcd(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	k, err := testenv.StartKafka(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	prod, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	cfg := conf.DefaultTransfer()
	cfg.Transfer.DataDir = filepath.Join(dir, "data")
	cfg.Transfer.HTTPAddr = ""
	cfg.Transfer.RetryBackoff = 20 * time.Millisecond
	cfg.Transfer.RetryMax = 200 * time.Millisecond
	cfg.Kafka.Brokers = k.Addrs
	cfg.OpenSearch.URLs = []string{node.URL}
	cfg.Etcd.Endpoints = []string{e.Endpoint}
	return &env{t: t, etcd: cli, kafka: k, os: node, cfg: &cfg, prod: prod}
}

// uniq is a name unique to this test, for topics and indices on the
// shared OpenSearch node.
func uniq(t testing.TB) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
}

func (e *env) put(key, value string) {
	e.t.Helper()
	if _, err := e.etcd.Put(context.Background(), key, value); err != nil {
		e.t.Fatal(err)
	}
}

// start runs a transfer until the test ends (or the returned stop).
func (e *env) start(name string) (*Transfer, func()) {
	e.t.Helper()
	cfg := *e.cfg
	cfg.Transfer.Instance = name
	cfg.Transfer.DataDir = filepath.Join(e.cfg.Transfer.DataDir, name)
	log := slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("transfer", name)
	tr, err := New(&cfg, log, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return tr, stop
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// line is a record as the agent makes it: the line id from host, file
// and offset.
func line(topic, host, file string, offset int64, text string) *kgo.Record {
	return &kgo.Record{Topic: topic, Value: []byte(text), Key: []byte(fmt.Sprintf("%s:%s:%d", host, file, offset)),
		Headers: []kgo.RecordHeader{{Key: "host", Value: []byte(host)}, {Key: "path", Value: []byte("/var/log/app.log")},
			{Key: "offset", Value: []byte(strconv.FormatInt(offset, 10))}, {Key: "file", Value: []byte(file)}}}
}

func (e *env) produce(recs ...*kgo.Record) {
	e.t.Helper()
	if err := e.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// waitFor polls cond (no timing is asserted: the bound only ends a stuck test).
func waitFor(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

// waitIDs waits until the index pattern holds exactly want (each once).
func (e *env) waitIDs(pattern string, want []string) {
	e.t.Helper()
	want = slices.Sorted(slices.Values(want))
	waitFor(e.t, fmt.Sprintf("%d documents in %s", len(want), pattern), func() (bool, string) {
		ids, err := e.os.IDs(pattern)
		if err != nil {
			return false, err.Error()
		}
		slices.Sort(ids)
		return slices.Equal(ids, want), fmt.Sprintf("%d ids: %v", len(ids), truncate(fmt.Sprint(ids), 400))
	})
}

// committed is the group's committed offset of topic's partition 0.
func (e *env) committed(topic string) int64 {
	adm := kadm.NewClient(e.prod)
	offs, err := adm.FetchOffsets(context.Background(), e.cfg.Kafka.Group)
	if err != nil {
		return -1
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok {
		return -1
	}
	return o.At
}

// TestIndexesEachLineOnce: lines resent by the agent at new Kafka offsets
// (its crash) and records without headers are indexed once each, into the
// record day's index, and the offsets are committed to the end.
func TestIndexesEachLineOnce(t *testing.T) {
	e := newEnv(t)
	topic, index := uniq(t), uniq(t)
	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}]`, topic, index))
	var want []string
	var recs []*kgo.Record
	for i := range 50 {
		recs = append(recs, line(topic, "web-1", "f1", int64(i*10), fmt.Sprintf("line %d", i)))
		want = append(want, fmt.Sprintf("web-1:f1:%d", i*10))
	}
	// The agent resent lines 40..49 after a crash: new Kafka offsets, same ids.
	recs = append(recs, recs[40:50]...)
	foreign := &kgo.Record{Topic: topic, Value: []byte("not from logagent")}
	recs = append(recs, foreign)
	e.produce(recs...)
	want = append(want, fmt.Sprintf("%s+0+%d", topic, len(recs)-1))
	tr, _ := e.start("t1")
	e.waitIDs(index+"-*", want)
	waitFor(t, "offsets committed to the end", func() (bool, string) {
		c := e.committed(topic)
		return c == int64(len(recs)), fmt.Sprintf("committed %d of %d", c, len(recs))
	})
	if m := httpGet(t, tr.Handler(), "/metrics"); !strings.Contains(m, `logtransfer_consumer_lag{partition="0",topic="`+topic+`"} 0`) ||
		!strings.Contains(m, fmt.Sprintf(`logtransfer_records_consumed_total{topic="%s"} %d`, topic, len(recs))) ||
		!strings.Contains(m, "logtransfer_bulk_duration_seconds_count") {
		t.Errorf("/metrics:\n%s", m)
	}
	// The document carries the line and its place.
	day := indexName(index, time.Now())
	data, err := e.os.Do("GET", "/"+day+"/_doc/web-1:f1:30", "")
	if err != nil {
		t.Fatalf("the record's daily index %s: %v", day, err)
	}
	var doc struct {
		Source map[string]any `json:"_source"`
	}
	json.Unmarshal(data, &doc)
	if doc.Source["message"] != "line 3" || doc.Source["host"] != "web-1" || doc.Source["offset"] != float64(30) || doc.Source["path"] != "/var/log/app.log" {
		t.Errorf("document: %v", doc.Source)
	}
	// The template maps host as a keyword.
	data, _ = e.os.Do("GET", "/"+day+"/_mapping", "")
	if !strings.Contains(string(data), `"host":{"type":"keyword"}`) {
		t.Errorf("mapping: %s", data)
	}
}

// TestRefusedDocumentGoesToDeadLetter: a document OpenSearch refuses for
// good (a mapping error) goes to <topic>.dlq with the reason, and the
// partition goes on: the records after it are indexed and committed.
func TestRefusedDocumentGoesToDeadLetter(t *testing.T) {
	e := newEnv(t)
	topic, index := uniq(t), uniq(t)
	// Today's index exists already with message as a number: a text
	// message is a mapping error there.
	day := indexName(index, time.Now())
	if _, err := e.os.Do("PUT", "/"+day, `{"settings": {"number_of_replicas": 0}, "mappings": {"properties": {"message": {"type": "long"}}}}`); err != nil {
		t.Fatal(err)
	}
	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}]`, topic, index))
	e.produce(line(topic, "h", "f", 0, "1"), line(topic, "h", "f", 2, "not a number"), line(topic, "h", "f", 15, "3"))
	tr, _ := e.start("t1")
	e.waitIDs(day, []string{"h:f:0", "h:f:15"})
	c, err := testenv.NewConsumer(e.kafka.Addrs, topic+".dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var dlq []testenv.Record
	waitFor(t, "the dead-letter record", func() (bool, string) {
		rs, _ := c.Poll(context.Background(), 200*time.Millisecond)
		dlq = append(dlq, rs...)
		return len(dlq) > 0, ""
	})
	r := dlq[0]
	if string(r.Value) != "not a number" || r.Headers["offset"] != "2" || r.Headers[HeaderDLQTopic] != topic ||
		r.Headers[HeaderDLQOffset] != "1" || !testenv.MappingError(r.Headers[HeaderDLQReason]) {
		t.Errorf("dead-letter record: %q %v", r.Value, r.Headers)
	}
	waitFor(t, "offsets committed past the refused record", func() (bool, string) {
		return e.committed(topic) == 3, fmt.Sprint(e.committed(topic))
	})
	if st := tr.Status(); st.DeadLettered != 1 || !testenv.MappingError(st.LastDLQ) {
		t.Errorf("status: %+v", st)
	}
}

// faultProxy stands between the transfer and OpenSearch and fails its
// bulk requests on demand: mode down closes the connection unanswered,
// mode busy answers 429, mode items answers 200 with every document 429
// (OpenSearch's answer when its write queue is full), mode one-doc
// answers 413 to a bulk of more than one document; other requests pass.
type faultProxy struct {
	url   string
	mode  atomic.Value // "", "down" or "busy"
	bulks atomic.Int64 // bulk requests failed
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	p := &faultProxy{}
	p.mode.Store("")
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_bulk" {
			switch p.mode.Load() {
			case "down":
				p.bulks.Add(1)
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			case "busy":
				p.bulks.Add(1)
				http.Error(w, `{"error":"too many requests"}`, http.StatusTooManyRequests)
				return
			case "one-doc":
				// http.max_content_length is smaller than two documents.
				body, _ := io.ReadAll(r.Body)
				if strings.Count(string(body), "\n") > 2 {
					p.bulks.Add(1)
					http.Error(w, "too large", http.StatusRequestEntityTooLarge)
					return
				}
				r.Body = io.NopCloser(strings.NewReader(string(body)))
			case "items":
				p.bulks.Add(1)
				body, _ := io.ReadAll(r.Body)
				items := make([]string, strings.Count(string(body), "\n")/2)
				for i := range items {
					items[i] = `{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"write queue full"}}}`
				}
				fmt.Fprintf(w, `{"errors":true,"items":[%s]}`, strings.Join(items, ","))
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func httpGet(t *testing.T, h http.Handler, path string) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return fmt.Sprintf("%d %s", rec.Code, rec.Body.String())
}

// TestOpenSearchDownAndBusy: while OpenSearch is unreachable, then
// answers 429, nothing is committed, /healthz says why, and every record
// is indexed once it takes bulks again.
func TestOpenSearchDownAndBusy(t *testing.T) {
	e := newEnv(t)
	topic, index := uniq(t), uniq(t)
	p := newFaultProxy(t, e.os.URL)
	p.mode.Store("down")
	e.cfg.OpenSearch.URLs = []string{p.url}
	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}]`, topic, index))
	var want []string
	for i := range 20 {
		e.produce(line(topic, "h", "f", int64(i), "x"))
		want = append(want, fmt.Sprintf("h:f:%d", i))
	}
	tr, _ := e.start("t1")
	waitFor(t, "bulks failing and retried", func() (bool, string) {
		return p.bulks.Load() >= 2 && tr.Health() != nil, fmt.Sprintf("bulks %d, health %v", p.bulks.Load(), tr.Health())
	})
	if h := httpGet(t, tr.Handler(), "/healthz"); !strings.HasPrefix(h, "503 ") || !strings.Contains(h, "opensearch") {
		t.Errorf("/healthz while down: %s", h)
	}
	p.mode.Store("busy")
	n := p.bulks.Load()
	waitFor(t, "bulks answered 429", func() (bool, string) {
		return p.bulks.Load() >= n+2 && strings.Contains(fmt.Sprint(tr.Health()), "429"), fmt.Sprint(tr.Health())
	})
	p.mode.Store("items")
	n = p.bulks.Load()
	waitFor(t, "documents answered 429", func() (bool, string) {
		return p.bulks.Load() >= n+2 && strings.Contains(fmt.Sprint(tr.Health()), "es_rejected_execution_exception"), fmt.Sprint(tr.Health())
	})
	if c := e.committed(topic); c > 0 {
		t.Fatalf("committed %d while OpenSearch refused every document", c)
	}
	p.mode.Store("")
	e.waitIDs(index+"-*", want)
	waitFor(t, "offsets committed", func() (bool, string) { return e.committed(topic) == 20, fmt.Sprint(e.committed(topic)) })
	waitFor(t, "healthy again", func() (bool, string) { return tr.Health() == nil, fmt.Sprint(tr.Health()) })
	if m := httpGet(t, tr.Handler(), "/metrics"); !strings.Contains(m, "logtransfer_records_retried_total") ||
		!strings.Contains(m, `logtransfer_records_indexed_total{topic="`+topic+`"} 20`) {
		t.Errorf("/metrics:\n%s", m)
	}
}

// TestConfigChanges: a malformed /logtransfer/config keeps the last good
// routes (status and /healthz say why); a new route applies while
// running.
func TestConfigChanges(t *testing.T) {
	e := newEnv(t)
	t1, t2, index := uniq(t)+"-a", uniq(t)+"-b", uniq(t)
	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}]`, t1, index))
	e.produce(line(t1, "h", "f", 0, "a0"))
	tr, _ := e.start("t1")
	e.waitIDs(index+"-*", []string{"h:f:0"})

	e.put(fleet.TransferConfigKey, `{"topic": "x", "index": "y"}`)
	waitFor(t, "the bad value rejected", func() (bool, string) {
		return strings.Contains(tr.Status().ConfigError, "not a JSON array of routes"), tr.Status().ConfigError
	})
	if h := httpGet(t, tr.Handler(), "/healthz"); !strings.HasPrefix(h, "503 ") || !strings.Contains(h, "config") {
		t.Errorf("/healthz with a rejected config: %s", h)
	}
	e.produce(line(t1, "h", "f", 3, "a1"))
	e.waitIDs(index+"-*", []string{"h:f:0", "h:f:3"})

	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}, {"topic": %q, "index": %q}]`, t1, index, t2, index))
	e.produce(line(t2, "h", "g", 0, "b0"))
	e.waitIDs(index+"-*", []string{"h:f:0", "h:f:3", "h:g:0"})
	if st := tr.Status(); st.ConfigError != "" || len(st.Routes) != 2 {
		t.Errorf("status after a good value: %+v", st)
	}

	// A route to a topic that does not exist does not create it (a typo
	// must not make topics on the brokers); the others go on.
	missing := uniq(t) + "-typo"
	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}, {"topic": %q, "index": %q}]`, t1, index, missing, index))
	e.produce(line(t1, "h", "f", 6, "a2"))
	e.waitIDs(index+"-*", []string{"h:f:0", "h:f:3", "h:g:0", "h:f:6"})
	topics, err := kadm.NewClient(e.prod).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has(missing) {
		t.Errorf("the transfer created the routed topic %s", missing)
	}
}

// TestStatusKeyAndStop: the status key is there while the transfer runs
// and vanishes when it stops; a stop returns while a bulk is being
// retried (OpenSearch unreachable).
func TestStatusKeyAndStop(t *testing.T) {
	e := newEnv(t)
	topic, index := uniq(t), uniq(t)
	p := newFaultProxy(t, e.os.URL)
	e.cfg.OpenSearch.URLs = []string{p.url}
	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}]`, topic, index))
	e.produce(line(topic, "h", "f", 0, "x"))
	p.mode.Store("down")
	tr, stop := e.start("status-1")
	var st Status
	waitFor(t, "the status key", func() (bool, string) {
		resp, err := e.etcd.Get(context.Background(), fleet.TransferStatusKey("status-1"))
		if err != nil || len(resp.Kvs) == 0 {
			return false, fmt.Sprint(err)
		}
		if resp.Kvs[0].Lease == 0 {
			t.Fatal("status key written without a lease")
		}
		json.Unmarshal(resp.Kvs[0].Value, &st)
		return st.Instance == "status-1" && len(st.Routes) == 1, string(resp.Kvs[0].Value)
	})
	waitFor(t, "a failing bulk", func() (bool, string) { return tr.Health() != nil, "" })
	stop() // returns: the retry loop ends with the context
	resp, err := e.etcd.Get(context.Background(), fleet.TransferStatusKey("status-1"))
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("status key after stop: %v %v", resp.Kvs, err)
	}
	if c := e.committed(topic); c > 0 {
		t.Errorf("committed %d although nothing was indexed", c)
	}
}

// TestTemplatesAndRetention: routes whose index names are prefixes of
// each other so that the patterns overlap (logs-2* matches logs-2x-2026…)
// get templates that OpenSearch accepts together, the longer name's
// winning for its indices; retention deletes only the route's own
// daily indices older than the limit.
func TestTemplatesAndRetention(t *testing.T) {
	node := openSearch(t)
	s := newSearch(conf.OpenSearch{URLs: []string{node.URL}, Timeout: 10 * time.Second})
	ctx := context.Background()
	base := uniq(t)
	for _, idx := range []string{base, base + "-2x"} {
		if err := s.putTemplate(ctx, idx, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	today := time.Now().UTC()
	old := today.AddDate(0, 0, -10)
	for _, name := range []string{indexName(base, old), indexName(base, today), indexName(base+"-2x", old)} {
		if _, err := node.Do("PUT", "/"+name, ""); err != nil {
			t.Fatal(err)
		}
	}
	// The -2x index got the -2x template (priority by name length).
	data, _ := node.Do("GET", "/"+indexName(base+"-2x", old)+"/_settings", "")
	if !strings.Contains(string(data), `"provided_name":"`+indexName(base+"-2x", old)) || !strings.Contains(string(data), `"number_of_replicas":"0"`) {
		t.Errorf("settings: %s", data)
	}
	deleted, err := s.deleteOlder(ctx, base, 7, today)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(deleted) != fmt.Sprint([]string{indexName(base, old)}) {
		t.Fatalf("deleted %v, want only %s", deleted, indexName(base, old))
	}
	for _, name := range []string{indexName(base, today), indexName(base+"-2x", old)} {
		if _, err := node.Do("HEAD", "/"+name, ""); err != nil {
			t.Errorf("%s: %v (must stay)", name, err)
		}
	}
}

// TestTooLargeSplits: a bulk OpenSearch refuses as too large (413) is
// split until it is taken; nothing is dead-lettered.
func TestTooLargeSplits(t *testing.T) {
	e := newEnv(t)
	topic, index := uniq(t), uniq(t)
	p := newFaultProxy(t, e.os.URL)
	p.mode.Store("one-doc")
	e.cfg.OpenSearch.URLs = []string{p.url}
	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}]`, topic, index))
	var recs []*kgo.Record
	var want []string
	for i := range 7 {
		recs = append(recs, line(topic, "h", "f", int64(i), "x"))
		want = append(want, fmt.Sprintf("h:f:%d", i))
	}
	e.produce(recs...)
	tr, _ := e.start("t1")
	e.waitIDs(index+"-*", want)
	if p.bulks.Load() == 0 {
		t.Error("no bulk was refused: the test tested nothing")
	}
	if st := tr.Status(); st.DeadLettered != 0 {
		t.Errorf("dead-lettered %d", st.DeadLettered)
	}
}

// TestBufferBoundsTheSession: the transfer indexes lz4 lines that expand
// about twentyfold in memory (10× decompressed, the records' structures)
// through a 2 MiB buffer, exactly once, and its sessions never held more.
func TestBufferBoundsTheSession(t *testing.T) {
	e := newEnv(t)
	e.cfg.Transfer.BufferBytes = 2 << 20
	e.cfg.Transfer.BulkBytes = 256 << 10
	topic, index := uniq(t), uniq(t)
	const total = 20000
	produceLz4(t, e.kafka.Addrs, topic, total)
	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}]`, topic, index))
	tr, stop := e.start("t1")
	waitFor(t, "offsets committed to the end", func() (bool, string) {
		c := e.committed(topic)
		return c == total, fmt.Sprintf("committed %d of %d", c, total)
	})
	if m := httpGet(t, tr.Handler(), "/metrics"); !strings.Contains(m, "logtransfer_buffered_bytes ") {
		t.Errorf("/metrics has no logtransfer_buffered_bytes:\n%s", m)
	}
	stop()
	if _, err := e.os.Do("POST", "/"+index+"-*/_refresh", ""); err != nil {
		t.Fatal(err)
	}
	data, err := e.os.Do("GET", "/"+index+"-*/_count", "")
	if err != nil {
		t.Fatal(err)
	}
	var n struct{ Count int }
	if json.Unmarshal(data, &n); n.Count != total {
		t.Errorf("%d documents indexed, want %d: %s", n.Count, total, data)
	}
	tr.mu.Lock()
	peak := tr.heldPeak
	tr.mu.Unlock()
	t.Logf("peak held %d bytes of %d", peak, e.cfg.Transfer.BufferBytes)
	if peak <= 0 || peak > e.cfg.Transfer.BufferBytes {
		t.Errorf("the sessions held up to %d bytes of records, want 1 to buffer_bytes %d", peak, e.cfg.Transfer.BufferBytes)
	}
}

// TestStopWhileABulkFails: a transfer stopped while OpenSearch refuses its
// bulks stops at once, and leaves no encoder of the next bulk behind (it
// encodes bulk n+1 while bulk n is in flight).
func TestStopWhileABulkFails(t *testing.T) {
	e := newEnv(t)
	topic, index := uniq(t), uniq(t)
	p := newFaultProxy(t, e.os.URL)
	p.mode.Store("down")
	e.cfg.OpenSearch.URLs = []string{p.url}
	e.cfg.Transfer.BulkBytes = 200 // one document a bulk: several bulks per poll
	e.put(fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": %q, "index": %q}]`, topic, index))
	for i := range 10 {
		e.produce(line(topic, "h", "f", int64(i), "x"))
	}
	_, stop := e.start("t1")
	waitFor(t, "bulks failing", func() (bool, string) { return p.bulks.Load() >= 2, fmt.Sprint(p.bulks.Load()) })
	stopped := time.Now()
	stop()
	if d := time.Since(stopped); d > 5*time.Second {
		t.Errorf("stopping took %v while OpenSearch was down", d)
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "(*Transfer).index") || strings.Contains(stacks, "(*Transfer).encodeChunk") {
		t.Errorf("an encoder is still running after the stop:\n%s", stacks)
	}
	if c := e.committed(topic); c > 0 {
		t.Errorf("committed %d while OpenSearch refused every bulk", c)
	}
}
