package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// sample is one run of one contender.
type sample struct {
	wall     time.Duration // start of the process until every line is acked
	cpu      time.Duration // user+sys of the process (rusage)
	rssKiB   int64         // peak RSS (VmHWM)
	anonKiB  int64         // peak anonymous RSS (sampled)
	benchCPU time.Duration // the bench process's CPU meanwhile (kfake + pollers)
	otherCPU time.Duration // the rest of the machine meanwhile (noise)
	records  int64         // records in the topic afterwards
	quoted   bool          // the values are the lines JSON-quoted
	err      error
}

type contender struct {
	id, name    string
	unavailable error // why it cannot run here (shown in the table)
	run         func(ctx context.Context, dir, topic string) sample
}

type resultA struct {
	file      string
	bytes     int64
	contender []*contender
	samples   map[string][]sample
}

// genLine appends one access-log-like line (about 90 bytes) with sequence
// number seq. It is deterministic, and varied enough that lz4 has real work.
func genLine(b []byte, seq int, rng *uint64) []byte {
	next := func() uint64 {
		x := *rng
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		*rng = x
		return x
	}
	methods := [...]string{"GET", "GET", "GET", "POST", "PUT", "GET"}
	paths := [...]string{"/api/items/", "/api/users/", "/js/app.", "/cart/", "/search?q=", "/img/p"}
	status := [...]int{200, 200, 200, 200, 304, 404, 500, 201}
	r := next()
	sec := seq / 1000
	b = fmt.Appendf(b, "10.%d.%d.%d - - [25/Nov/2025:%02d:%02d:%02d +0000] \"%s %s%d HTTP/1.1\" %d %d #%07d\n",
		r&0xff, (r>>8)&0xff, (r>>16)&0xff, 10+(sec/3600)%10, (sec/60)%60, sec%60,
		methods[(r>>24)%6], paths[(r>>28)%6], (r>>32)%10000, status[(r>>48)%8], 100+(r>>52)%9000, seq)
	return b
}

const lineSeed = 0x9E3779B97F4A7C15

// writeLinesFile writes n lines; every contender then reads it from the
// page cache.
func writeLinesFile(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := uint64(lineSeed)
	var buf []byte
	var total int64
	for i := 1; i <= n; i++ {
		buf = genLine(buf[:0], i, &rng)
		total += int64(len(buf))
		w.Write(buf) //nolint:errcheck // checked by Flush
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return total, f.Close()
}

func (e *env) contendersA() []*contender {
	all := []*contender{
		{id: "kcat", name: "kcat -P (librdkafka)", run: e.runKcat},
		{id: "sarama", name: "bare sarama AsyncProducer", run: e.runBare(childSarama)},
		{id: "franz-go", name: "bare franz-go kgo", run: e.runBare(childFranz)},
		{id: "logagent-sarama", name: "logagent client=sarama", run: e.runAgentA("sarama")},
		{id: "logagent-franz-go", name: "logagent client=franz-go", run: e.runAgentA("franz-go")},
		{id: "rsyslog", name: "rsyslog imfile→omkafka", run: e.runRsyslog},
		{id: "otelcol", name: "otelcol filelog→kafka, in-memory queue", run: e.runOtelcolA("otelcol")},
		{id: "otelcol-persistent", name: "otelcol filelog→kafka, queue in file_storage", run: e.runOtelcolA("otelcol-persistent")},
	}
	var out []*contender
	for _, c := range all {
		if !e.wantContender(c.id) {
			continue
		}
		switch c.id {
		case "kcat":
			_, c.unavailable = tool("kcat")
		case "rsyslog":
			c.unavailable = rsyslogAvailable()
		case "otelcol", "otelcol-persistent":
			c.unavailable = e.otelcolAvailable()
		}
		out = append(out, c)
	}
	return out
}

func (e *env) workloadA(ctx context.Context) *resultA {
	r := &resultA{file: filepath.Join(e.dir, "a", "access.log"), samples: map[string][]sample{}}
	os.MkdirAll(filepath.Dir(r.file), 0o755)
	var err error
	if r.bytes, err = writeLinesFile(r.file, e.opts.lines); err != nil {
		logf("workload A: %v", err)
		return r
	}
	rng := uint64(lineSeed)
	e.firstLine = strings.TrimSuffix(string(genLine(nil, 1, &rng)), "\n")
	logf("workload A: %d lines, %.1f MiB, avg %.1f bytes/line (with \\n) in %s", e.opts.lines,
		float64(r.bytes)/(1<<20), float64(r.bytes)/float64(e.opts.lines), r.file)
	r.contender = e.contendersA()
	for run := 1; run <= e.opts.runs; run++ {
		// Interleaved, and the order rotates from run to run so that no
		// contender always follows the same one.
		k := len(r.contender)
		order := append(slices.Clone(r.contender[(run-1)%max(k, 1):]), r.contender[:(run-1)%max(k, 1)]...)
		for _, c := range order {
			if c.unavailable != nil || ctx.Err() != nil {
				continue
			}
			s := e.oneRunA(ctx, c, run, r.file)
			r.samples[c.id] = append(r.samples[c.id], s)
			if s.err != nil {
				logf("A run %d %-18s FAILED: %v", run, c.id, s.err)
			} else {
				logf("A run %d %-18s wall %6.2fs  cpu %6.2fs  rss %5.0f MiB  bench-side cpu %5.2fs  other procs cpu %5.2fs", run, c.id,
					s.wall.Seconds(), s.cpu.Seconds(), float64(s.rssKiB)/1024, s.benchCPU.Seconds(), s.otherCPU.Seconds())
			}
		}
	}
	return r
}

func (e *env) oneRunA(ctx context.Context, c *contender, run int, file string) sample {
	topic := fmt.Sprintf("bench-a-%s-%s-r%d", c.id, e.runID, run)
	dir := filepath.Join(e.dir, "a", fmt.Sprintf("%s-r%d", c.id, run))
	os.MkdirAll(dir, 0o755)
	if err := e.kafka.createTopic(ctx, topic); err != nil {
		return sample{err: err}
	}
	defer func() {
		e.kafka.deleteTopic(context.Background(), topic)
		runtime.GC() // kfake's memory of the deleted topic
	}()
	rctx, cancel := context.WithTimeout(ctx, e.opts.timeout)
	defer cancel()
	b0, m0 := selfCPU(), machineBusy()
	s := c.run(rctx, dir, topic)
	s.benchCPU = selfCPU() - b0
	s.otherCPU = max(0, machineBusy()-m0-s.benchCPU-s.cpu)
	n, err := e.kafka.endOffset(ctx, topic)
	if err != nil {
		if s.err == nil {
			s.err = fmt.Errorf("count records: %w", err)
		}
		return s
	}
	s.records = n
	if s.err == nil && n < int64(e.opts.lines) {
		s.err = fmt.Errorf("only %d of %d records in Kafka", n, e.opts.lines)
	}
	// The bytes must be the line's, as it is in the file (no syslog header,
	// no newline): checked on the first record. The collector's can only be
	// the line JSON-quoted (see otelcolConfig): that is accepted and noted.
	if s.err == nil && e.opts.partitions == 1 {
		v, err := e.kafka.firstRecord(ctx, topic)
		line, quoted := bareValue(v)
		switch {
		case err != nil:
			s.err = err
		case string(v) == e.firstLine:
		case isOtelcol(c.id) && quoted && string(line) == e.firstLine:
			s.quoted = true
		default:
			s.err = fmt.Errorf("first record is %q, want %q", v, e.firstLine)
		}
	}
	return s
}

func (e *env) runKcat(ctx context.Context, dir, topic string) sample {
	f, err := os.Open(filepath.Join(e.dir, "a", "access.log"))
	if err != nil {
		return sample{err: err}
	}
	defer f.Close()
	p, err := startProc(filepath.Join(dir, "kcat.log"), f, "kcat", "-P", "-b", e.kafka.list(), "-t", topic,
		"-z", "lz4", "-X", "acks=all")
	if err != nil {
		return sample{err: err}
	}
	return finishProc(ctx, p)
}

// finishProc waits for a producer that exits by itself once everything is
// acked (kcat flushes on exit; the bare loops wait for their acks).
func finishProc(ctx context.Context, p *proc) sample {
	var s sample
	select {
	case <-p.done:
		s.err = p.err
	case <-ctx.Done():
		p.stop(5 * time.Second) //nolint:errcheck
		s.err = fmt.Errorf("%s: %v", p.name, context.Cause(ctx))
	}
	s.wall = p.end.Sub(p.start)
	s.cpu, s.rssKiB = p.usage()
	s.anonKiB = p.anonKiB.Load()
	if s.err != nil {
		s.err = fmt.Errorf("%v; output:\n%s", s.err, p.logTail(10))
	}
	return s
}

func (e *env) runBare(kind string) func(ctx context.Context, dir, topic string) sample {
	return func(ctx context.Context, dir, topic string) sample {
		p, err := startProc(filepath.Join(dir, "bare.log"), nil, e.self, kind, "-brokers", e.kafka.list(),
			"-topic", topic, "-file", filepath.Join(e.dir, "a", "access.log"), "-timeout", e.opts.timeout.String())
		if err != nil {
			return sample{err: err}
		}
		s := finishProc(ctx, p)
		if s.err == nil {
			var res childResult
			last := p.logTail(1)
			if err := json.Unmarshal([]byte(last), &res); err != nil {
				s.err = fmt.Errorf("child output %q: %v", last, err)
			} else if res.Err != "" || res.Acked != int64(e.opts.lines) {
				s.err = fmt.Errorf("child: acked %d of %d: %s", res.Acked, e.opts.lines, res.Err)
			}
		}
		return s
	}
}

func (e *env) runAgentA(client string) func(ctx context.Context, dir, topic string) sample {
	return func(ctx context.Context, dir, topic string) sample {
		host := strings.ReplaceAll(filepath.Base(dir), ".", "-")
		a, err := e.startAgent(ctx, dir, "a-"+host, client, []collectEntry{
			{Path: filepath.Join(e.dir, "a", "access.log"), Topic: topic, ReadFrom: "beginning"}})
		if err != nil {
			return sample{err: err}
		}
		want := int64(e.opts.lines)
		prof := a.profile(ctx, filepath.Join(os.Getenv("BENCH_PROFILE"), "A-"+client+"-"+filepath.Base(dir)+".pprof"), 3)
		_, at, werr := a.waitMetrics(ctx, 25*time.Millisecond, func(m agentMetrics) bool { return m.acked >= want })
		var s sample
		s.wall = at.Sub(a.start)
		<-prof
		ferr := a.finish()
		s.cpu, s.rssKiB = a.usage()
		s.anonKiB = a.anonKiB.Load()
		if werr != nil {
			s.err = werr
		} else if ferr != nil {
			s.err = ferr
		}
		return s
	}
}
