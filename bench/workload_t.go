package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
)

// Workload T: `logagent transfer` (Kafka → OpenSearch) on a real
// OpenSearch node started by scripts/opensearch.sh.
//
//  1. Throughput: the same documents, already in Kafka, indexed by the
//     transfer (a process: records consumed → offsets committed) and by a
//     bare bulk loop (a child process posting pre-encoded 5 MiB _bulk
//     bodies one after the other, as the transfer's bulk_bytes), runs
//     interleaved, medians.
//  2. Latency: an agent follows a file written at -t-rate lines/s; a
//     transfer indexes the topic; the bench searches the index every
//     -t-poll for what became searchable and takes search answer − write
//     (workload_t_latency.go; the report's section: workload_t_report.go).

// childBulk is the bare bulk loop's hidden subcommand.
const childBulk = "__bare-bulk"

// tBulkBytes is the transfer's default bulk_bytes, which the bare loop uses
// too.
const tBulkBytes = 5 << 20

type resultT struct {
	docs      int
	lineBytes int // mean line length
	osVersion string
	bare, tr  []tSample // one per run, in run order
	same      string    // how one document compares between the two indices
	lat       *resultTLat
	err       error
}

// tSample is one indexing run of docs documents.
type tSample struct {
	wall   time.Duration // first document sent (bare) or consumed (transfer) → last indexed and committed
	cpu    time.Duration // the contender's CPU over wall
	osCPU  time.Duration // OpenSearch's CPU over wall
	rssKiB int64
	start  time.Duration // transfer: process start → first record consumed (group join, template)
	err    error
}

func (s tSample) rate(docs int) float64 { return float64(docs) / s.wall.Seconds() }

func (e *env) workloadT(ctx context.Context) *resultT {
	r := &resultT{docs: e.opts.tDocs}
	logf("workload T: logagent transfer vs a bare bulk loop, %d documents, %d interleaved runs; then append → searchable at %d lines/s for %s",
		r.docs, e.opts.tRuns, e.opts.tRate, e.opts.tLatDur)
	ctx, cancel := context.WithTimeout(ctx, e.opts.tMax)
	defer cancel()
	r.err = e.transferBench(ctx, r)
	if r.err != nil {
		logf("T FAILED: %v", r.err)
	}
	return r
}

func (e *env) transferBench(ctx context.Context, r *resultT) error {
	dir := filepath.Join(e.dir, "T")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logf("T: starting OpenSearch (scripts/opensearch.sh start)")
	node, err := testenv.StartOpenSearch(e.opts.repo, filepath.Join(dir, "opensearch"))
	if err != nil {
		return err
	}
	defer node.Stop() //nolint:errcheck
	osPid, err := readPid(filepath.Join(dir, "opensearch", "node.pid"))
	if err != nil {
		return err
	}
	if b, err := node.Do("GET", "/", ""); err == nil {
		var v struct {
			Version struct{ Number string } `json:"version"`
		}
		json.Unmarshal(b, &v) //nolint:errcheck
		r.osVersion = v.Version.Number
	}
	logf("T: OpenSearch %s at %s (pid %d)", r.osVersion, node.URL, osPid)

	topic := "bench-t-" + e.runID
	if err := e.kafka.createTopic(ctx, topic); err != nil {
		return err
	}
	defer e.kafka.deleteTopic(context.Background(), topic)
	ts := time.Now().Truncate(time.Millisecond)
	var total int
	tLines(r.docs, func(_ int, line []byte, _ int64) { total += len(line) })
	r.lineBytes = total / max(r.docs, 1)
	if err := e.produceT(ctx, topic, r.docs, ts); err != nil {
		return err
	}
	idx := func(who string, run int) string { return fmt.Sprintf("bench-t-%s-%s-%d", who, e.runID, run) }
	day := "-" + ts.UTC().Format("2006.01.02")

	// A warm-up of the same size (not counted): the node's first bulk
	// requests are several times slower (the JVM compiling its hot paths).
	if s := e.bareBulk(ctx, node, osPid, topic, idx("warm", 0), r.docs, ts); s.err != nil {
		return fmt.Errorf("warm-up: %w", s.err)
	}
	node.Do("DELETE", "/"+idx("warm", 0)+day, "") //nolint:errcheck

	for run := 1; run <= e.opts.tRuns && ctx.Err() == nil; run++ {
		// Alternate the order, so that neither contender always runs
		// on a node that has just been busy.
		order := []string{"bare", "transfer"}
		if run%2 == 0 {
			slices.Reverse(order)
		}
		for _, who := range order {
			var s tSample
			if who == "bare" {
				s = e.bareBulk(ctx, node, osPid, topic, idx("bare", run), r.docs, ts)
				r.bare = append(r.bare, s)
			} else {
				s = e.transferRun(ctx, node, osPid, topic, idx("tr", run), fmt.Sprintf("bench-t-%s-%d", e.runID, run), r.docs)
				r.tr = append(r.tr, s)
			}
			if s.err != nil {
				logf("T run %d %s FAILED: %v", run, who, s.err)
			} else {
				logf("T run %d %s: %d docs in %s (%.0f docs/s), CPU %s, OpenSearch CPU %s", run, who, r.docs,
					s.wall.Round(time.Millisecond), s.rate(r.docs), secs(s.cpu), secs(s.osCPU))
			}
		}
		if run == 1 {
			r.same = sameDocument(node, idx("bare", 1)+day, idx("tr", 1)+day, r.docs/2)
		}
		for _, who := range []string{"bare", "tr"} {
			node.Do("DELETE", "/"+idx(who, run)+day+"?ignore_unavailable=true", "") //nolint:errcheck
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.lat = e.searchLatency(ctx, node, osPid, dir)
	return nil
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// The documents of workload T: access-log lines as the agent ships them
// (the headers host, path, offset, file; the key host:file:offset).
const (
	tHost = "bench-t"
	tPath = "/var/log/nginx/access.log"
	tFile = "bench-file-1"
)

// tLines calls fn with each of n lines and its byte offset in the file.
func tLines(n int, fn func(i int, line []byte, offset int64)) {
	var off int64
	var b []byte
	for i := range n {
		b = fmt.Appendf(b[:0], `10.0.%d.%d - - [06/Dec/2026:07:00:00 +0000] "GET /api/v1/items/%d HTTP/1.1" 200 %d "-" "Mozilla/5.0 (bench)"`,
			i/250%250, i%250, i, 100+i%9000)
		fn(i, b, off)
		off += int64(len(b)) + 1
	}
}

// produceT puts n lines into partition 0 of topic (kafka_offset = line
// number, as the bare loop's documents say), timestamped ts, lz4 as the
// agent's default.
func (e *env) produceT(ctx context.Context, topic string, n int, ts time.Time) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	var mu sync.Mutex
	var first error
	tLines(n, func(_ int, line []byte, off int64) {
		o := strconv.FormatInt(off, 10)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: 0, Timestamp: ts, Value: bytes.Clone(line),
			Key: []byte(tHost + ":" + tFile + ":" + o),
			Headers: []kgo.RecordHeader{{Key: "host", Value: []byte(tHost)}, {Key: "path", Value: []byte(tPath)},
				{Key: "offset", Value: []byte(o)}, {Key: "file", Value: []byte(tFile)}}},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			})
	})
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("produce to %s: %w", topic, err)
	}
	if first != nil {
		return fmt.Errorf("produce to %s: %w", topic, first)
	}
	return nil
}

// transferProc is one `logagent transfer` process.
type transferProc struct {
	*proc
	metrics string
}

// startTransfer routes topic to index in etcd and starts `logagent
// transfer` with the defaults of conf/transfer.ini in a group of its own.
func (e *env) startTransfer(ctx context.Context, dir, name, topic, index, osURL string) (*transferProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	routes := fmt.Sprintf(`[{"topic": %q, "index": %q}]`, topic, index)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = e.etcd.Put(pctx, fleet.TransferConfigKey, routes)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("etcd put %s: %w", fleet.TransferConfigKey, err)
	}
	ini := fmt.Sprintf(`; written by go run ./bench: the defaults of conf/transfer.ini except the servers
[transfer]
instance = %s
data_dir = %s
http_addr = 127.0.0.1:%d
log_level = warn
[kafka]
brokers = %s
group = %s
[opensearch]
urls = %s
[etcd]
endpoints = %s
`, name, filepath.Join(dir, "data"), port, e.kafka.list(), name, osURL, e.etcdEndpoint)
	cfg := filepath.Join(dir, "transfer.ini")
	if err := os.WriteFile(cfg, []byte(ini), 0o644); err != nil {
		return nil, err
	}
	p, err := startProc(filepath.Join(dir, "transfer.log"), nil, e.agentBin, "transfer", "-config", cfg)
	if err != nil {
		return nil, err
	}
	return &transferProc{proc: p, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port)}, nil
}

// promSums scrapes url and sums the samples of each metric named (all
// label sets together); a metric that is absent is 0.
func promSums(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(names))
	for _, l := range strings.Split(string(data), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		name, v, ok := splitSample(l)
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		if slices.Contains(names, name) {
			out[name] += v
		}
	}
	return out, nil
}

// committed is the sum over topic's partitions of group's committed offsets.
func (e *env) committed(ctx context.Context, group, topic string) (int64, error) {
	offs, err := kadm.NewClient(e.kafka.admin).FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			n += o.At
		}
	})
	return n, nil
}

// transferRun has a fresh transfer index the docs records of topic, from
// the first one consumed to the last offset committed.
func (e *env) transferRun(ctx context.Context, node *testenv.OpenSearch, osPid int, topic, index, group string, docs int) tSample {
	var s tSample
	ctx, cancel := context.WithTimeout(ctx, e.opts.timeout)
	defer cancel()
	tp, err := e.startTransfer(ctx, filepath.Join(e.dir, "T", group), group, topic, index, node.URL)
	if err != nil {
		s.err = err
		return s
	}
	defer node.Do("DELETE", "/_index_template/logtransfer-"+index, "") //nolint:errcheck
	stop := func() error {
		if err := tp.stop(20 * time.Second); err != nil {
			return fmt.Errorf("transfer exit: %v; last log lines:\n%s", err, tp.logTail(15))
		}
		return nil
	}
	poll := func(every time.Duration, cond func() bool) error {
		t := time.NewTicker(every)
		defer t.Stop()
		for !cond() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%v; transfer log:\n%s", context.Cause(ctx), tp.logTail(15))
			case <-tp.done:
				return fmt.Errorf("transfer exited (%v); last log lines:\n%s", tp.err, tp.logTail(15))
			case <-t.C:
			}
		}
		return nil
	}
	var t0 time.Time
	var cpu0, os0 time.Duration
	err = poll(10*time.Millisecond, func() bool {
		m, err := promSums(ctx, tp.metrics, "logtransfer_records_consumed_total")
		if err != nil || m["logtransfer_records_consumed_total"] == 0 {
			return false
		}
		t0 = time.Now()
		s.start = t0.Sub(tp.start)
		cpu0, _ = procCPU(tp.pid())
		os0, _ = procCPU(osPid)
		return true
	})
	if err == nil {
		err = poll(20*time.Millisecond, func() bool {
			n, err := e.committed(ctx, group, topic)
			return err == nil && n >= int64(docs)
		})
	}
	if err != nil {
		s.err = err
		stop() //nolint:errcheck
		return s
	}
	s.wall = time.Since(t0)
	cpu1, _ := procCPU(tp.pid())
	os1, _ := procCPU(osPid)
	s.cpu, s.osCPU = cpu1-cpu0, os1-os0
	s.err = stop()
	s.rssKiB = tp.hwmKiB.Load()
	return s
}

// sameDocument compares one document (the middle one) of the bare loop's
// index with the transfer's.
func sameDocument(node *testenv.OpenSearch, bareIndex, trIndex string, n int) string {
	var id string
	tLines(n+1, func(i int, _ []byte, off int64) {
		if i == n {
			id = tHost + ":" + tFile + ":" + strconv.FormatInt(off, 10)
		}
	})
	get := func(index string) (map[string]any, error) {
		b, err := node.Do("GET", "/"+index+"/_doc/"+id, "")
		if err != nil {
			return nil, err
		}
		var d struct {
			Source map[string]any `json:"_source"`
		}
		err = json.Unmarshal(b, &d)
		return d.Source, err
	}
	a, err := get(bareIndex)
	if err != nil {
		return "not compared: " + oneLine(err)
	}
	b, err := get(trIndex)
	if err != nil {
		return "not compared: " + oneLine(err)
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Sprintf("DIFFERENT: bare %v, transfer %v", a, b)
	}
	return fmt.Sprintf("identical (document %s, %d fields)", id, len(a))
}
