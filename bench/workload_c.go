package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

type resultC struct {
	client    string
	files     int
	dirs      int
	topics    int
	startup   time.Duration // agent start until every file is followed
	written   int64
	delivered int64
	rate      float64 // lines/s actually written during the window
	cpuPct    float64 // agent CPU over the window, % of one core
	switches  float64 // the agent's threads' context switches per second over the window
	rssKiB    int64   // peak VmRSS over the window
	end       agentMetrics
	err       error
}

// workloadC runs each client -c-runs times, the clients interleaved and
// their order alternating: on this kind of machine one client's CPU
// varies by a third from run to run, with drift over minutes.
func (e *env) workloadC(ctx context.Context) []*resultC {
	var out []*resultC
	clients := []string{"sarama", "franz-go"}
	for run := 1; run <= e.opts.cRuns; run++ {
		for _, client := range clients {
			if !e.wantContender("logagent-"+client) || ctx.Err() != nil {
				continue
			}
			logf("workload C run %d: logagent client=%s, %d files × %d lines/s, warm-up %s, window %s", run, client,
				e.opts.files, e.opts.fileRate, e.opts.warmup, e.opts.window)
			r := e.manyFiles(ctx, client, run)
			if r.err != nil {
				logf("C %s FAILED: %v", client, r.err)
			} else {
				logf("C %s: cpu %.1f%% of a core, peak rss %.0f MiB, %d/%d lines delivered", client, r.cpuPct,
					float64(r.rssKiB)/1024, r.delivered, r.written)
			}
			out = append(out, r)
		}
		slices.Reverse(clients)
	}
	return out
}

func (e *env) manyFiles(ctx context.Context, client string, run int) *resultC {
	o := e.opts
	r := &resultC{client: client, files: o.files}
	ctx, cancel := context.WithTimeout(ctx, o.warmup+o.window+2*o.timeout/3)
	defer cancel()
	r.dirs = min(10, max(1, (o.files+99)/100))
	r.topics = min(10, o.files)
	base := filepath.Join(e.dir, "c-"+client)
	var topics []string
	for i := 0; i < r.topics; i++ {
		t := fmt.Sprintf("bench-c-%s-%s-%d", client, e.runID, i)
		if r.err = e.kafka.createTopic(ctx, t); r.err != nil {
			return r
		}
		topics = append(topics, t)
	}
	defer func() {
		for _, t := range topics {
			e.kafka.deleteTopic(context.Background(), t)
		}
	}()
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

	a, err := e.startAgent(ctx, filepath.Join(base, "agent"), "c-"+client, client, entries)
	if err != nil {
		r.err = err
		return r
	}
	defer func() {
		if err := a.finish(); err != nil && r.err == nil {
			r.err = err
		}
	}()
	if _, at, err := a.waitMetrics(ctx, 200*time.Millisecond, func(m agentMetrics) bool { return m.running >= o.files }); err != nil {
		r.err = fmt.Errorf("waiting for %d files to be followed: %w", o.files, err)
		return r
	} else {
		r.startup = at.Sub(a.start)
	}

	// Writers: a few goroutines, each appending to its share of the files,
	// one line per file per interval. Each file is written at its own
	// moment within the interval (its slot), as files written by
	// unrelated processes are: files written all in step would let the
	// agent read them all in step too, and its figures would flatter it.
	var written atomic.Int64
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	const writers = 4
	const slot = time.Millisecond
	interval := time.Second / time.Duration(max(1, o.fileRate))
	slots := max(1, int(interval/slot))
	for w := 0; w < writers; w++ {
		// bySlot[k]: the writer's files written in slot k, spread by a
		// fixed shuffle of the file numbers.
		bySlot := make([][]int, slots)
		for i := w; i < len(files); i += writers {
			k := (i * 7919) % slots
			bySlot[k] = append(bySlot[k], i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(slot)
			defer t.Stop()
			start := time.Now()
			seq := make([]int64, len(files))
			var buf []byte
			for done := 0; ; {
				// Every slot due since the last tick, so that a late
				// tick does not lower the rate.
				for due := int(time.Since(start) / slot); done <= due; done++ {
					for _, i := range bySlot[done%slots] {
						seq[i]++
						buf = fmt.Appendf(buf[:0], "file=%04d seq=%08d 10.0.%d.%d \"GET /api/v1/orders/%d HTTP/1.1\" 200 %d\n",
							i, seq[i], i%250, seq[i]%250, seq[i]*7%100000, 100+seq[i]%900)
						if _, err := files[i].Write(buf); err == nil {
							written.Add(1)
						}
					}
				}
				select {
				case <-wctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	stop := func() { stopWriters(); wg.Wait() }
	select {
	case <-time.After(o.warmup):
	case <-ctx.Done():
	}
	cpu0, err0 := procCPU(a.pid())
	sw0, swErr0 := procSwitches(a.pid())
	w0 := written.Load()
	rssStop := sampleRSS(a.pid(), &r.rssKiB)
	t0 := time.Now()
	prof := a.profile(ctx, filepath.Join(os.Getenv("BENCH_PROFILE"), fmt.Sprintf("C-%s-r%d.pprof", client, run)), int(o.window/time.Second)/2)
	select {
	case <-time.After(o.window):
	case <-ctx.Done():
	}
	el := time.Since(t0)
	<-prof
	cpu1, err1 := procCPU(a.pid())
	sw1, swErr1 := procSwitches(a.pid())
	r.rate = float64(written.Load()-w0) / el.Seconds()
	rssStop()
	r.end, _ = a.scrape(ctx) // after the window: the scrape of 1,000 files is not measured
	stop()
	r.written = written.Load()
	if err0 != nil || err1 != nil {
		r.err = fmt.Errorf("read /proc/%d/stat: %v %v", a.pid(), err0, err1)
		return r
	}
	r.cpuPct = 100 * (cpu1 - cpu0).Seconds() / el.Seconds()
	if swErr0 == nil && swErr1 == nil {
		r.switches = float64(sw1-sw0) / el.Seconds()
	}
	if ctx.Err() != nil {
		r.err = ctx.Err()
		return r
	}
	// Every line written must arrive.
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := e.kafka.endOffsets(ctx, topics)
		if err == nil {
			r.delivered = 0
			for _, n := range m {
				r.delivered += n
			}
			if r.delivered >= r.written {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.err = fmt.Errorf("only %d of %d lines in Kafka 30s after the writers stopped (err %v)", r.delivered, r.written, err)
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r
}
