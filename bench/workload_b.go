package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type resultB struct {
	id        string // contender: logagent-sarama, logagent-franz-go, otelcol, otelcol-persistent
	written   int64
	received  int64
	dups      int64
	reordered int64 // lines consumed after a later line of the file
	quoted    bool  // the values were the lines JSON-quoted
	p50, p99  time.Duration
	p999, max time.Duration
	cpuPct    float64 // agent CPU over the writing period, % of one core
	rssKiB    int64   // peak VmRSS over the writing period
	anonKiB   int64   // peak RssAnon over the writing period
	end       agentMetrics
	err       error
}

// contendersB are the followers workload B runs.
var contendersB = []string{"logagent-sarama", "logagent-franz-go", "otelcol", "otelcol-persistent"}

func (e *env) workloadB(ctx context.Context) []*resultB {
	var out []*resultB
	for _, id := range contendersB {
		if !e.wantContender(id) || ctx.Err() != nil {
			continue
		}
		if isOtelcol(id) && e.otelcolAvailable() != nil {
			out = append(out, &resultB{id: id, err: e.otelcolAvailable()})
			continue
		}
		logf("workload B: %s, %d lines/s for %s", id, e.opts.latRate, e.opts.latDur)
		r := e.latency(ctx, id)
		if r.err != nil {
			logf("B %s FAILED: %v", id, r.err)
		} else {
			logf("B %s: %d/%d lines, p50 %s p99 %s max %s, cpu %.1f%%, %d out of order", id, r.received, r.written,
				r.p50, r.p99, r.max, r.cpuPct, r.reordered)
		}
		out = append(out, r)
	}
	return out
}

// latLine is `ts=<unix ns> seq=<n> <access-log tail>`, about 90 bytes.
func latLine(b []byte, ts int64, seq int64) []byte {
	return fmt.Appendf(b, "ts=%d seq=%08d 10.1.2.3 \"GET /api/v1/items/%d HTTP/1.1\" 200 %d\n", ts, seq, seq%100000, 100+seq%9000)
}

func parseLat(v []byte) (ts, seq int64, ok bool) {
	v, _ = bareValue(v)
	if !bytes.HasPrefix(v, []byte("ts=")) {
		return 0, 0, false
	}
	f := bytes.Fields(v)
	if len(f) < 2 || !bytes.HasPrefix(f[1], []byte("seq=")) {
		return 0, 0, false
	}
	ts, err1 := strconv.ParseInt(string(f[0][3:]), 10, 64)
	seq, err2 := strconv.ParseInt(string(f[1][4:]), 10, 64)
	return ts, seq, err1 == nil && err2 == nil
}

func (e *env) latency(ctx context.Context, id string) *resultB {
	r := &resultB{id: id}
	ctx, cancel := context.WithTimeout(ctx, e.opts.latDur+2*e.opts.timeout/3)
	defer cancel()
	topic := fmt.Sprintf("bench-b-%s-%s", id, e.runID)
	dir := filepath.Join(e.dir, "b-"+id)
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, "follow.log")
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.err = err
		return r
	}
	defer f.Close()
	if r.err = e.kafka.createTopic(ctx, topic); r.err != nil {
		return r
	}
	defer e.kafka.deleteTopic(context.Background(), topic)

	// Consumer: one time.Now() per fetch, latency = that − the line's ts.
	var lats []time.Duration
	var count seqCount
	var warm = make(chan struct{})
	var warmOnce sync.Once
	c, err := e.consume(ctx, topic, 500*time.Millisecond, func(now int64, rec *kgo.Record) {
		ts, seq, ok := parseLat(rec.Value)
		if !ok {
			return
		}
		if seq == 0 {
			warmOnce.Do(func() { close(warm) })
			return
		}
		if _, quoted := bareValue(rec.Value); quoted {
			r.quoted = true
		}
		if count.add(seq) {
			lats = append(lats, time.Duration(now-ts))
		}
	})
	if err != nil {
		r.err = err
		return r
	}
	defer c.stop()

	a, err := e.startFollower(ctx, id, filepath.Join(dir, "follower"), "b-"+id,
		[]collectEntry{{Path: file, Topic: topic, ReadFrom: "beginning"}})
	if err != nil {
		r.err = err
		return r
	}
	defer func() {
		if err := a.finish(); err != nil && r.err == nil {
			r.err = err
		}
	}()
	if _, err := a.followed(ctx, 1); err != nil {
		r.err = fmt.Errorf("waiting for the file to be followed: %w", err)
		return r
	}
	// Warm-up line (seq 0): the whole path is up before the clock starts.
	f.Write(latLine(nil, time.Now().UnixNano(), 0)) //nolint:errcheck
	select {
	case <-warm:
	case <-ctx.Done():
		r.err = fmt.Errorf("warm-up line not consumed; %s log:\n%s", id, a.logTail(10))
		return r
	}

	cpu0, _ := procCPU(a.pid())
	rssStop := sampleRSS(a.pid(), &r.rssKiB, &r.anonKiB)
	t0 := time.Now()
	prof := a.profile(ctx, filepath.Join(os.Getenv("BENCH_PROFILE"), "B-"+id+".pprof"), max(1, int(e.opts.latDur/time.Second)-1))
	r.written, err = writeAtRate(ctx, f, e.opts.latRate, e.opts.latDur)
	<-prof
	elapsed := time.Since(t0)
	cpu1, _ := procCPU(a.pid())
	rssStop()
	r.end = a.scrape(ctx)
	r.cpuPct = 100 * (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	if err != nil {
		r.err = err
		return r
	}
	// Wait for the tail of the run to arrive.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		n := int64(len(count.seen))
		c.mu.Unlock()
		if n >= r.written || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.stop()
	r.received, r.dups, r.reordered = int64(len(count.seen)), count.dups, count.reordered
	if r.received < r.written {
		r.err = fmt.Errorf("only %d of %d lines consumed (max seq %d)", r.received, r.written, count.max)
	}
	if len(lats) > 0 {
		slices.Sort(lats)
		q := func(p float64) time.Duration { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
		r.p50, r.p99, r.p999, r.max = q(0.50), q(0.99), q(0.999), lats[len(lats)-1]
	}
	return r
}

// writeAtRate appends lines at rate per second for d, stamping each with
// the time of the write call that carries it (one write per millisecond
// tick, as many lines as are due).
func writeAtRate(ctx context.Context, f io.Writer, rate int, d time.Duration) (int64, error) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	start := time.Now()
	var written int64
	var buf []byte
	for {
		el := time.Since(start)
		if el > d {
			el = d
		}
		due := int64(el.Seconds()*float64(rate)) - written
		if due > 0 {
			buf = buf[:0]
			now := time.Now().UnixNano()
			for i := int64(1); i <= due; i++ {
				buf = latLine(buf, now, written+i)
			}
			if _, err := f.Write(buf); err != nil {
				return written, err
			}
			written += due
		}
		if el >= d {
			return written, nil
		}
		select {
		case <-ctx.Done():
			return written, ctx.Err()
		case <-t.C:
		}
	}
}

// consumer reads a topic from its start in the background.
type consumer struct {
	mu     sync.Mutex // held while the records of a fetch are handed over
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// consume starts a consumer of topic that calls fn with each record, and
// the time its fetch returned, under c.mu.
func (e *env) consume(ctx context.Context, topic string, maxWait time.Duration, fn func(now int64, rec *kgo.Record)) (*consumer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(maxWait))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &consumer{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now().UnixNano()
			c.mu.Lock()
			fs.EachRecord(func(rec *kgo.Record) { fn(now, rec) })
			c.mu.Unlock()
		}
	}()
	return c, nil
}

// stop ends the consumer and waits for it; fn is not called after it.
// Safe to call twice.
func (c *consumer) stop() {
	c.once.Do(func() {
		c.cancel()
		<-c.done
		c.cl.Close()
	})
}

// sampleRSS records the peak VmRSS and RssAnon of pid every 250 ms until
// stopped.
func sampleRSS(pid int, peak, anon *int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := statusNumbers(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:", "RssAnon:"); err == nil {
				*peak, *anon = max(*peak, v[0]), max(*anon, v[1])
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}
