package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type resultC struct {
	id        string // contender: logagent-sarama, logagent-franz-go, or a peer (kcat, sarama, franz-go)
	files     int
	dirs      int
	topics    int
	startup   time.Duration // agent start until every file is followed
	written   int64
	delivered int64
	rate      float64 // lines/s actually written during the window
	cpuPct    float64 // the contender's CPU over the window, % of one core
	switches  float64 // its threads' context switches per second over the window
	rssKiB    int64   // peak VmRSS over the window
	anonKiB   int64   // peak RssAnon over the window
	end       agentMetrics
	err       error
}

// contendersC: logagent with each client, and as peers the same records
// handed at the same pace to kcat and to the bare client loops, each
// reading them from a pipe. The peers have no files to follow: their CPU
// is what producing alone costs at this rate, the floor under the agent's.
var contendersC = []string{"logagent-sarama", "logagent-franz-go", "otelcol", "kcat", "sarama", "franz-go"}

// workloadC runs each contender -c-runs times, the contenders interleaved
// and their order alternating: on this kind of machine one process's CPU
// varies by a third from run to run, with drift over minutes.
func (e *env) workloadC(ctx context.Context) []*resultC {
	var out []*resultC
	ids := slices.Clone(contendersC)
	for run := 1; run <= e.opts.cRuns; run++ {
		for _, id := range ids {
			if !e.wantContender(id) || ctx.Err() != nil {
				continue
			}
			var r *resultC
			if strings.HasPrefix(id, "logagent-") || isOtelcol(id) {
				if isOtelcol(id) && e.otelcolAvailable() != nil {
					continue
				}
				logf("workload C run %d: %s, %d files × %d lines/s, warm-up %s, window %s", run, id,
					e.opts.files, e.opts.fileRate, e.opts.warmup, e.opts.window)
				r = e.manyFiles(ctx, id, run)
			} else {
				if _, err := tool("kcat"); id == "kcat" && err != nil {
					continue
				}
				logf("workload C run %d: peer %s, %d lines/s through a pipe, warm-up %s, window %s", run, id,
					e.opts.files*e.opts.fileRate, e.opts.warmup, e.opts.window)
				r = e.peerC(ctx, id, run)
			}
			if r.err != nil {
				logf("C %s FAILED: %v", id, r.err)
			} else {
				logf("C %s: cpu %.1f%% of a core, %.0f context switches/s, peak rss %.0f MiB, %d/%d lines delivered", id, r.cpuPct,
					r.switches, float64(r.rssKiB)/1024, r.delivered, r.written)
			}
			out = append(out, r)
		}
		slices.Reverse(ids)
	}
	return out
}

// manyFiles runs a follower (logagent, or the collector, which sends every
// line to one topic) over the files.
func (e *env) manyFiles(ctx context.Context, id string, run int) *resultC {
	o := e.opts
	r := &resultC{id: id, files: o.files}
	ctx, cancel := context.WithTimeout(ctx, o.warmup+o.window+2*o.timeout/3)
	defer cancel()
	r.dirs = min(10, max(1, (o.files+99)/100))
	r.topics = min(10, o.files)
	if isOtelcol(id) {
		r.topics = 1
	}
	base := filepath.Join(e.dir, fmt.Sprintf("c-%s-r%d", id, run))
	topics, err := e.topicsC(ctx, r.id, r.topics)
	defer e.deleteTopics(topics)
	if err != nil {
		r.err = err
		return r
	}
	files := make([]*os.File, o.files)
	entries := make([]collectEntry, o.files)
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i := range files {
		d := filepath.Join(base, fmt.Sprintf("dir%02d", i%r.dirs))
		os.MkdirAll(d, 0o755)
		p := filepath.Join(d, fmt.Sprintf("app%04d.log", i))
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			r.err = err
			return r
		}
		files[i] = f
		entries[i] = collectEntry{Path: p, Topic: topics[i%r.topics], ReadFrom: "beginning"}
	}

	if isOtelcol(id) {
		// One glob, as a user of the collector would write it (1,000
		// include patterns would each be matched at every poll).
		entries = []collectEntry{{Path: filepath.Join(base, "dir*", "app*.log"), Topic: topics[0]}}
	}
	a, err := e.startFollower(ctx, id, filepath.Join(base, "follower"), fmt.Sprintf("c-%s-r%d", id, run), entries)
	if err != nil {
		r.err = err
		return r
	}
	defer func() {
		if err := a.finish(); err != nil && r.err == nil {
			r.err = err
		}
	}()
	if r.startup, err = a.followed(ctx, o.files); err != nil {
		r.err = fmt.Errorf("waiting for %d files to be followed: %w", o.files, err)
		return r
	}

	// Writers: a few goroutines, each appending to its share of the files,
	// one line per file per interval, each line with its own write.
	const writers = 4
	var written atomic.Int64
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			e.paceC(wctx, w, writers, func(due []cLine) {
				for _, l := range due {
					buf = l.appendTo(buf[:0])
					if _, err := files[l.file].Write(buf); err == nil {
						written.Add(1)
					}
				}
			})
		}()
	}
	stop := func() { stopWriters(); wg.Wait() }
	r.err = e.windowC(ctx, a.proc, &written, r, func() func() {
		prof := a.profile(ctx, filepath.Join(os.Getenv("BENCH_PROFILE"), fmt.Sprintf("C-%s-r%d.pprof", id, run)), int(o.window/time.Second)/2)
		return func() { <-prof }
	})
	r.end = a.scrape(ctx) // after the window: the scrape of 1,000 files is not measured
	stop()
	r.written = written.Load()
	if r.err != nil {
		return r
	}
	r.err = e.awaitDelivered(ctx, topics, r)
	return r
}

// peerC hands the same lines at the same pace to a producer that reads
// them from a pipe: kcat -P, or a bare client loop (bench child). The
// bench writes each 1 ms slot's lines with one write; the peer produces
// them to one topic (the agent's are spread over r.topics, which only
// makes its batches smaller).
func (e *env) peerC(ctx context.Context, id string, run int) *resultC {
	o := e.opts
	r := &resultC{id: id, topics: 1}
	ctx, cancel := context.WithTimeout(ctx, o.warmup+o.window+2*o.timeout/3)
	defer cancel()
	topics, err := e.topicsC(ctx, id, 1)
	defer e.deleteTopics(topics)
	if err != nil {
		r.err = err
		return r
	}
	dir := filepath.Join(e.dir, fmt.Sprintf("c-peer-%s-r%d", id, run))
	os.MkdirAll(dir, 0o755)
	pr, pw, err := os.Pipe()
	if err != nil {
		r.err = err
		return r
	}
	defer pw.Close()
	var p *proc
	switch id {
	case "kcat":
		p, err = startProc(filepath.Join(dir, "kcat.log"), pr, "kcat", "-P", "-b", e.kafka.list(), "-t", topics[0],
			"-z", "lz4", "-X", "acks=all")
	default:
		kind := map[string]string{"sarama": childSarama, "franz-go": childFranz}[id]
		p, err = startProc(filepath.Join(dir, "bare.log"), pr, e.self, kind, "-brokers", e.kafka.list(),
			"-topic", topics[0], "-file", "/dev/stdin", "-timeout", (o.warmup + o.window + o.timeout).String())
	}
	pr.Close() // the child's now
	if err != nil {
		r.err = err
		return r
	}
	var written atomic.Int64
	wctx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		var buf []byte
		e.paceC(wctx, 0, 1, func(due []cLine) {
			buf = buf[:0]
			for _, l := range due {
				buf = l.appendTo(buf)
			}
			if _, err := pw.Write(buf); err == nil {
				written.Add(int64(len(due)))
			}
		})
	}()
	r.err = e.windowC(ctx, p, &written, r, nil)
	stopWriter()
	// EOF: the peer flushes, waits for its acks and exits. Closing also
	// ends a write blocked on a peer that stopped reading.
	pw.Close()
	<-writerDone
	r.written = written.Load()
	s := finishProc(ctx, p)
	if s.err != nil && (r.err == nil || p.exited()) {
		r.err = s.err // the peer's own failure, with its output, says more
	}
	if r.err != nil {
		return r
	}
	r.err = e.awaitDelivered(ctx, topics, r)
	return r
}

// cLine is the seq-th line of file number file in workload C.
type cLine struct {
	file int
	seq  int64
}

func (l cLine) appendTo(b []byte) []byte {
	i, seq := l.file, l.seq
	return fmt.Appendf(b, "file=%04d seq=%08d 10.0.%d.%d \"GET /api/v1/orders/%d HTTP/1.1\" 200 %d\n",
		i, seq, i%250, seq%250, seq*7%100000, 100+seq%900)
}

// paceC calls write with the lines due in each 1 ms slot, for the files
// this writer (w of writers) owns, until ctx ends: one line per file per
// interval, each file at a slot of its own within the interval (a fixed
// shuffle of the file numbers), as files written by unrelated processes
// are. Files written all in step would let the agent read them all in
// step too, and its figures would flatter it.
func (e *env) paceC(ctx context.Context, w, writers int, write func(due []cLine)) {
	const slot = time.Millisecond
	interval := time.Second / time.Duration(max(1, e.opts.fileRate))
	slots := max(1, int(interval/slot))
	bySlot := make([][]int, slots)
	for i := w; i < e.opts.files; i += writers {
		k := (i * 7919) % slots
		bySlot[k] = append(bySlot[k], i)
	}
	t := time.NewTicker(slot)
	defer t.Stop()
	start := time.Now()
	seq := make([]int64, e.opts.files)
	var due []cLine
	for done := 0; ; {
		// Every slot due since the last tick, so that a late tick does
		// not lower the rate.
		due = due[:0]
		for now := int(time.Since(start) / slot); done <= now; done++ {
			for _, i := range bySlot[done%slots] {
				seq[i]++
				due = append(due, cLine{file: i, seq: seq[i]})
			}
		}
		if len(due) > 0 {
			write(due)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// windowC waits out the warm-up, then measures p's CPU, context switches
// and peak RSS over the window, and the rate written meanwhile. inWindow,
// if not nil, is called as the window starts; the function it returns, as
// it ends, before the second CPU reading. A process that exits meanwhile
// ends the wait: the error says so.
func (e *env) windowC(ctx context.Context, p *proc, written *atomic.Int64, r *resultC, inWindow func() func()) error {
	pid := p.pid()
	select {
	case <-time.After(e.opts.warmup):
	case <-ctx.Done():
	case <-p.done:
		return fmt.Errorf("%s exited during the warm-up", p.name)
	}
	cpu0, err0 := procCPU(pid)
	sw0, swErr0 := procSwitches(pid)
	w0 := written.Load()
	rssStop := sampleRSS(pid, &r.rssKiB, &r.anonKiB)
	t0 := time.Now()
	end := func() {}
	if inWindow != nil {
		end = inWindow()
	}
	select {
	case <-time.After(e.opts.window):
	case <-ctx.Done():
	case <-p.done:
	}
	el := time.Since(t0)
	end()
	if p.exited() {
		rssStop()
		return fmt.Errorf("%s exited during the window", p.name)
	}
	cpu1, err1 := procCPU(pid)
	sw1, swErr1 := procSwitches(pid)
	r.rate = float64(written.Load()-w0) / el.Seconds()
	rssStop()
	if err0 != nil || err1 != nil {
		return fmt.Errorf("read /proc/%d/stat: %v %v", pid, err0, err1)
	}
	r.cpuPct = 100 * (cpu1 - cpu0).Seconds() / el.Seconds()
	if swErr0 == nil && swErr1 == nil {
		r.switches = float64(sw1-sw0) / el.Seconds()
	}
	return ctx.Err()
}

// awaitDelivered waits until every line written is in Kafka.
func (e *env) awaitDelivered(ctx context.Context, topics []string, r *resultC) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := e.kafka.endOffsets(ctx, topics)
		if err == nil {
			r.delivered = 0
			for _, n := range m {
				r.delivered += n
			}
			if r.delivered >= r.written {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("only %d of %d lines in Kafka 30s after the writers stopped (err %v)", r.delivered, r.written, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) topicsC(ctx context.Context, id string, n int) ([]string, error) {
	var topics []string
	for i := 0; i < n; i++ {
		t := fmt.Sprintf("bench-c-%s-%s-%d", id, e.runID, i)
		if err := e.kafka.createTopic(ctx, t); err != nil {
			return topics, err
		}
		topics = append(topics, t)
	}
	return topics, nil
}

func (e *env) deleteTopics(topics []string) {
	for _, t := range topics {
		e.kafka.deleteTopic(context.Background(), t)
	}
}
