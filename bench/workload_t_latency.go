package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logagent/logagent/internal/testenv"
)

// resultTLat is workload T's append → searchable run.
type resultTLat struct {
	rate            int
	dur, poll       time.Duration
	written, seen   int64
	dups            int64
	p50, p99, max   time.Duration
	kp50, kp99      time.Duration // append → consumed from Kafka (the bench's own consumer)
	ip50, ip99      time.Duration // append → indexed (a realtime GET by id finds it)
	indexedSamples  int
	bulkMean        time.Duration // the transfer's mean bulk request
	bulks           int64
	trCPU, agentCPU float64 // % of a core over the writing period
	osCPU           float64
	refreshInterval string
	err             error
}

// searchLatency: agent → Kafka → transfer → OpenSearch at tRate lines/s.
func (e *env) searchLatency(ctx context.Context, node *testenv.OpenSearch, osPid int, dir string) *resultTLat {
	r := &resultTLat{rate: e.opts.tRate, dur: e.opts.tLatDur, poll: e.opts.tPoll}
	r.err = e.searchLatencyRun(ctx, node, osPid, filepath.Join(dir, "lat"), r)
	if r.err != nil {
		logf("T latency FAILED: %v", r.err)
	} else {
		logf("T latency: %d/%d lines searchable, p50 %s p99 %s max %s (append → Kafka p50 %s p99 %s; append → indexed p50 %s p99 %s); mean bulk %s",
			r.seen, r.written, r.p50, r.p99, r.max, r.kp50, r.kp99, r.ip50, r.ip99, r.bulkMean)
	}
	return r
}

func (e *env) searchLatencyRun(ctx context.Context, node *testenv.OpenSearch, osPid int, dir string, r *resultTLat) error {
	ctx, cancel := context.WithTimeout(ctx, r.dur+e.opts.timeout)
	defer cancel()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	topic := "bench-t-lat-" + e.runID
	index := "bench-t-lat-" + e.runID
	if err := e.kafka.createTopic(ctx, topic); err != nil {
		return err
	}
	defer e.kafka.deleteTopic(context.Background(), topic)
	file := filepath.Join(dir, "follow.log")
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()

	tp, err := e.startTransfer(ctx, filepath.Join(dir, "transfer"), "bench-t-lat-"+e.runID, topic, index, node.URL)
	if err != nil {
		return err
	}
	defer func() {
		tp.stop(20 * time.Second)                                    //nolint:errcheck
		node.Do("DELETE", "/"+index+"-2*", "")                       //nolint:errcheck
		node.Do("DELETE", "/_index_template/logtransfer-"+index, "") //nolint:errcheck
	}()
	a, err := e.startAgent(ctx, filepath.Join(dir, "agent"), "bench-t-lat-"+e.runID, "franz-go",
		[]collectEntry{{Path: file, Topic: topic, ReadFrom: "beginning"}})
	if err != nil {
		return err
	}
	defer a.finish() //nolint:errcheck
	if _, _, err := a.waitMetrics(ctx, 50*time.Millisecond, func(m agentMetrics) bool { return m.running >= 1 }); err != nil {
		return fmt.Errorf("waiting for the file to be followed: %w", err)
	}

	// The bench's own consumer: append → in Kafka, to tell the hops apart.
	var kmu sync.Mutex
	var klats []time.Duration
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	cctx, ccancel := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			fs := cl.PollFetches(cctx)
			now := time.Now().UnixNano()
			kmu.Lock()
			fs.EachRecord(func(rec *kgo.Record) {
				if ts, seq, ok := parseLat(rec.Value); ok && seq > 0 {
					klats = append(klats, time.Duration(now-ts))
				}
			})
			kmu.Unlock()
		}
	}()
	defer func() { ccancel(); <-consumed; cl.Close() }()

	s := &searcher{node: node, pattern: index + "-2*", seen: map[int64]bool{}, lastOffset: -1}
	// Warm-up line (seq 0): the whole path is up, the index created,
	// before the clock starts.
	f.Write(latLine(nil, time.Now().UnixNano(), 0)) //nolint:errcheck
	if err := s.until(ctx, r.poll, func() bool { return s.warm }, tp, a); err != nil {
		return fmt.Errorf("warm-up line not searchable: %w", err)
	}
	if b, err := node.Do("GET", "/"+index+"-2*/_settings?include_defaults=true&filter_path=**.refresh_interval", ""); err == nil {
		r.refreshInterval = refreshOf(b)
	}

	m0, _ := promSums(ctx, tp.metrics, "logtransfer_bulk_duration_seconds_sum", "logtransfer_bulk_duration_seconds_count")
	tr0, _ := procCPU(tp.pid())
	ag0, _ := procCPU(a.pid())
	os0, _ := procCPU(osPid)
	start := time.Now()
	done := make(chan struct{})
	var werr error
	go func() {
		defer close(done)
		r.written, werr = writeAtRate(ctx, f, r.rate, r.dur)
	}()
	sampled := make(chan []time.Duration, 1)
	day, idPrefix := index+"-"+time.Now().UTC().Format("2006.01.02"), a.host+":"+s.file+":"
	go func() {
		sampled <- sampleIndexed(ctx, node, day, idPrefix, latOffsets(int(float64(r.rate)*r.dur.Seconds())), start, r.rate, done)
	}()
	// Search while writing, then until every line is found (at most a
	// minute more: a line never found is reported, not waited for).
	var doneAt time.Time
	serr := s.until(ctx, r.poll, func() bool {
		select {
		case <-done:
			if doneAt.IsZero() {
				doneAt = time.Now()
			}
			return int64(len(s.lats)) >= r.written || time.Since(doneAt) > time.Minute
		default:
			return false
		}
	}, tp, a)
	<-done
	el := time.Since(start)
	tr1, _ := procCPU(tp.pid())
	ag1, _ := procCPU(a.pid())
	os1, _ := procCPU(osPid)
	m1, _ := promSums(ctx, tp.metrics, "logtransfer_bulk_duration_seconds_sum", "logtransfer_bulk_duration_seconds_count")
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / el.Seconds() }
	r.trCPU, r.agentCPU, r.osCPU = pct(tr1-tr0), pct(ag1-ag0), pct(os1-os0)
	if n := m1["logtransfer_bulk_duration_seconds_count"] - m0["logtransfer_bulk_duration_seconds_count"]; n > 0 {
		r.bulks = int64(n)
		r.bulkMean = time.Duration((m1["logtransfer_bulk_duration_seconds_sum"] - m0["logtransfer_bulk_duration_seconds_sum"]) / n * float64(time.Second))
	}
	r.seen, r.dups = int64(len(s.lats)), s.dups
	if len(s.lats) > 0 {
		r.p50, r.p99, r.max = quantile(s.lats, 0.50), quantile(s.lats, 0.99), quantile(s.lats, 1)
	}
	if il := <-sampled; len(il) > 0 {
		r.indexedSamples = len(il)
		r.ip50, r.ip99 = quantile(il, 0.50), quantile(il, 0.99)
	}
	ccancel()
	<-consumed
	kmu.Lock()
	if len(klats) > 0 {
		r.kp50, r.kp99 = quantile(klats, 0.50), quantile(klats, 0.99)
	}
	kmu.Unlock()
	if werr != nil {
		return werr
	}
	if serr == nil && r.seen < r.written {
		serr = fmt.Errorf("%d of %d lines found a minute after the last was written", r.seen, r.written)
	}
	return serr
}

// latOffsets returns the byte offset of each line 0..n that the latency
// run writes: the warm-up line (seq 0), then lines 1..n (writeAtRate's,
// whose length does not depend on the 19-digit time stamp's value).
func latOffsets(n int) []int64 {
	offs := make([]int64, n+1)
	now := time.Now().UnixNano()
	var b []byte
	for seq := 1; seq <= n; seq++ {
		b = latLine(b[:0], now, int64(seq-1))
		offs[seq] = offs[seq-1] + int64(len(b))
	}
	return offs
}

// sampleIndexed measures append → indexed on a sample of lines: a GET by
// id is realtime (it finds a document once its bulk is answered, before a
// refresh makes it searchable). Every 100 ms it takes the line due about
// 10 ms later and polls for it every 5 ms; it ends when done closes.
func sampleIndexed(ctx context.Context, node *testenv.OpenSearch, index, idPrefix string, offs []int64, start time.Time, rate int, done <-chan struct{}) []time.Duration {
	var lats []time.Duration
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return lats
		case <-ctx.Done():
			return lats
		case <-tick.C:
		}
		seq := int(time.Since(start).Seconds()*float64(rate)) + rate/100
		if seq < 1 || seq >= len(offs) {
			continue
		}
		path := "/" + index + "/_doc/" + idPrefix + strconv.FormatInt(offs[seq], 10)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			b, err := node.Do("GET", path, "")
			now := time.Now().UnixNano()
			if err == nil {
				var d struct {
					Source hit `json:"_source"`
				}
				if json.Unmarshal(b, &d) == nil {
					if ts, got, ok := parseLat([]byte(d.Source.Message)); ok && got == int64(seq) {
						lats = append(lats, time.Duration(now-ts))
					}
				}
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func refreshOf(settings []byte) string {
	i := bytes.Index(settings, []byte(`"refresh_interval":"`))
	if i < 0 {
		return "?"
	}
	v := settings[i+len(`"refresh_interval":"`):]
	if j := bytes.IndexByte(v, '"'); j >= 0 {
		return string(v[:j])
	}
	return "?"
}

// quantile sorts v in place and returns its q quantile.
func quantile(v []time.Duration, q float64) time.Duration {
	slices.Sort(v)
	return v[min(len(v)-1, int(q*float64(len(v))))]
}

// searcher finds the lines that became searchable: a search for offsets
// above the last one seen, newest answer time − each line's write time.
// A refresh makes every document indexed before it visible at once, and
// the transfer indexes one file's lines in order, so what is visible is a
// prefix of the file: the offset is a cursor.
type searcher struct {
	node       *testenv.OpenSearch
	pattern    string
	lastOffset int64
	seen       map[int64]bool
	lats       []time.Duration
	dups       int64
	warm       bool
	file       string // the followed file's id (the agent's file header)
}

// until searches every `every` until cond holds, ctx ends, or the agent or
// the transfer exits.
func (s *searcher) until(ctx context.Context, every time.Duration, cond func() bool, tp *transferProc, a *agentRun) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr error
	for {
		if err := s.once(); err != nil {
			lastErr = err
		}
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%v (%d lines found; last search error: %v); transfer log:\n%s", context.Cause(ctx), len(s.lats), lastErr, tp.logTail(10))
		case <-tp.done:
			return fmt.Errorf("transfer exited (%v); last log lines:\n%s", tp.err, tp.logTail(15))
		case <-a.done:
			return fmt.Errorf("logagent exited (%v); last log lines:\n%s", a.err, a.logTail(15))
		case <-t.C:
		}
	}
}

func (s *searcher) once() error {
	q := fmt.Sprintf(`{"size": 10000, "track_total_hits": false, "sort": [{"offset": "asc"}], "_source": ["message", "offset", "file"],
		"query": {"range": {"offset": {"gt": %d}}}}`, s.lastOffset)
	b, err := s.node.Do("POST", "/"+s.pattern+"/_search?allow_no_indices=true&ignore_unavailable=true", q)
	now := time.Now().UnixNano()
	if err != nil {
		return err
	}
	hits, err := parseHits(b)
	if err != nil {
		return err
	}
	for _, h := range hits {
		s.lastOffset = max(s.lastOffset, h.Offset)
		ts, seq, ok := parseLat([]byte(h.Message))
		if !ok {
			continue
		}
		if seq == 0 {
			s.warm, s.file = true, h.File
			continue
		}
		if s.seen[seq] {
			s.dups++
			continue
		}
		s.seen[seq] = true
		s.lats = append(s.lats, time.Duration(now-ts))
	}
	return nil
}

type hit struct {
	Message string `json:"message"`
	Offset  int64  `json:"offset"`
	File    string `json:"file"`
}

func parseHits(b []byte) ([]hit, error) {
	var ans struct {
		Hits struct {
			Hits []struct {
				Source hit `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("search answer: %w", err)
	}
	out := make([]hit, len(ans.Hits.Hits))
	for i, h := range ans.Hits.Hits {
		out[i] = h.Source
	}
	return out, nil
}
