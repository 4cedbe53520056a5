package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// resultR is one follower through kills or rotations (workload R).
type resultR struct {
	id        string
	scenario  string // scenarioKill or scenarioRotate
	events    int    // kills or rotations done
	written   int64
	distinct  int64 // lines in Kafka at least once
	lost      int64 // lines written and not in Kafka by the end of the drain
	dups      int64
	reordered int64
	quoted    bool
	err       error
}

const (
	scenarioKill   = "kill -9"
	scenarioRotate = "rotation"
)

// contendersR are the followers workload R runs.
var contendersR = []string{"logagent-sarama", "logagent-franz-go", "otelcol", "otelcol-persistent"}

// drainR bounds the wait for the last lines after the writer stops; lines
// still missing then are counted as lost.
const drainR = 20 * time.Second

func (e *env) workloadR(ctx context.Context) []*resultR {
	var out []*resultR
	for _, scenario := range []string{scenarioKill, scenarioRotate} {
		for _, id := range contendersR {
			if !e.wantContender(id) || ctx.Err() != nil {
				continue
			}
			if isOtelcol(id) && e.otelcolAvailable() != nil {
				out = append(out, &resultR{id: id, scenario: scenario, err: e.otelcolAvailable()})
				continue
			}
			logf("workload R: %s, %s × %d while writing %d lines/s for %s", id, scenario, e.opts.rEvents, e.opts.rRate, e.opts.rDur)
			r := e.restarts(ctx, id, scenario)
			if r.err != nil {
				logf("R %s %s FAILED: %v", id, scenario, r.err)
			} else {
				logf("R %s %s: %d written, %d lost, %d duplicates, %d out of order", id, scenario, r.written, r.lost, r.dups, r.reordered)
			}
			out = append(out, r)
		}
	}
	return out
}

// seqCount tallies the lines of one file as a consumer reads them back in
// one partition's order; each line's seq numbers it from 1.
type seqCount struct {
	seen      map[int64]bool
	max       int64
	dups      int64
	reordered int64 // lines first seen after a later line
}

// add counts seq and reports whether it is the line's first copy.
func (c *seqCount) add(seq int64) bool {
	if c.seen == nil {
		c.seen = map[int64]bool{}
	}
	if c.seen[seq] {
		c.dups++
		return false
	}
	if seq < c.max {
		c.reordered++
	}
	c.seen[seq] = true
	c.max = max(c.max, seq)
	return true
}

// lost is how many of the lines 1..written were not seen.
func (c *seqCount) lost(written int64) int64 {
	var n int64
	for s := int64(1); s <= written; s++ {
		if !c.seen[s] {
			n++
		}
	}
	return n
}

// rotatingFile is the file the writer appends to; rotate renames it away
// (to path.1, path.2, …, as logrotate's dateext does) and creates it anew
// between two writes.
type rotatingFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
	n    int
}

func createRotating(path string) (*rotatingFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &rotatingFile{path: path, f: f}, nil
}

func (w *rotatingFile) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Write(b)
}

func (w *rotatingFile) rotate() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	if err := os.Rename(w.path, fmt.Sprintf("%s.%d", w.path, w.n)); err != nil {
		return err
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	w.f.Close()
	w.f = f
	return nil
}

func (w *rotatingFile) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// restarts writes one file at -r-rate for -r-duration while the follower is
// killed with SIGKILL and restarted on the same state (scenarioKill), or the
// file is rotated (scenarioRotate), -r-events times at even intervals; a
// consumer reads every record back.
func (e *env) restarts(ctx context.Context, id, scenario string) *resultR {
	r := &resultR{id: id, scenario: scenario}
	ctx, cancel := context.WithTimeout(ctx, e.opts.rDur+drainR+2*e.opts.timeout/3)
	defer cancel()
	name := map[string]string{scenarioKill: "kill", scenarioRotate: "rotate"}[scenario] + "-" + id
	topic := fmt.Sprintf("bench-r-%s-%s", name, e.runID)
	dir := filepath.Join(e.dir, "r-"+name)
	if r.err = os.MkdirAll(dir, 0o755); r.err != nil {
		return r
	}
	if r.err = e.kafka.createTopic(ctx, topic); r.err != nil {
		return r
	}
	defer e.kafka.deleteTopic(context.Background(), topic)
	w, err := createRotating(filepath.Join(dir, "app.log"))
	if err != nil {
		r.err = err
		return r
	}
	defer w.Close()

	var count seqCount
	c, err := e.consume(ctx, topic, 200*time.Millisecond, func(_ int64, rec *kgo.Record) {
		if _, seq, ok := parseLat(rec.Value); ok {
			count.add(seq)
		}
		if _, quoted := bareValue(rec.Value); quoted {
			r.quoted = true
		}
	})
	if err != nil {
		r.err = err
		return r
	}
	defer c.stop()

	host := "r-" + name
	entries := []collectEntry{{Path: w.path, Topic: topic, ReadFrom: "beginning"}}
	f, err := e.startFollower(ctx, id, filepath.Join(dir, "follower"), host, entries)
	if err != nil {
		r.err = err
		return r
	}
	defer func() {
		if err := f.finish(); err != nil && r.err == nil {
			r.err = err
		}
	}()
	if _, err := f.followed(ctx, 1); err != nil {
		r.err = err
		return r
	}

	var werr error
	written := make(chan struct{})
	wctx, stopWriting := context.WithCancel(ctx)
	go func() {
		defer close(written)
		r.written, werr = writeAtRate(wctx, w, e.opts.rRate, e.opts.rDur)
	}()
	// A run that ends early (a restart failed) stops its writer before r
	// is returned and read.
	defer func() { stopWriting(); <-written }()
	every := e.opts.rDur / time.Duration(e.opts.rEvents+1)
	for i := 0; i < e.opts.rEvents && r.err == nil; i++ {
		select {
		case <-time.After(every):
		case <-ctx.Done():
			r.err = ctx.Err()
			continue
		}
		switch scenario {
		case scenarioKill:
			syscall.Kill(-f.pid(), syscall.SIGKILL) //nolint:errcheck
			<-f.done
			// The same state directory (and, for logagent, host key): it
			// resumes where its checkpoints say.
			next, err := e.startFollower(ctx, id, filepath.Join(dir, "follower"), host, entries)
			if err != nil {
				r.err = err
				return r // the deferred finish reaps the killed one
			}
			f = next
		case scenarioRotate:
			r.err = w.rotate()
		}
		if r.err == nil {
			r.events++
		}
	}
	<-written
	if r.err == nil && werr != nil {
		r.err = werr
	}
	if r.err != nil {
		return r
	}
	// The drain: until every line is in or drainR has passed.
	deadline := time.Now().Add(drainR)
	for time.Now().Before(deadline) && ctx.Err() == nil && !f.exited() {
		c.mu.Lock()
		n := int64(len(count.seen))
		c.mu.Unlock()
		if n >= r.written {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f.exited() {
		r.err = fmt.Errorf("%s exited; last log lines:\n%s", id, f.logTail(15))
	}
	c.stop()
	r.distinct, r.dups, r.reordered = int64(len(count.seen)), count.dups, count.reordered
	r.lost = count.lost(r.written)
	return r
}

func (r *report) renderR(p func(string, ...any)) {
	o := r.opts
	p("## R. Restarts and rotations: one file written at %d lines/s for %s, %d events at even intervals\n\n", o.rRate, o.rDur, o.rEvents)
	p("kill -9: the follower is killed with SIGKILL and started again at once on the same state (logagent: data_dir and host key; "+
		"the collector: its file_storage directory), the writer going on meanwhile. rotation: the file is renamed to app.log.N and "+
		"created anew between two writes (the follower is configured with the path only, as logrotate's users configure it). "+
		"A consumer reads the topic (one partition) from its start; lost: lines written and not in Kafka %s after the writer stopped. "+
		"Out of order: lines consumed after a later line of the file.\n\n", drainR)
	p("| contender | run | events | lines written | in Kafka (distinct) | lost | duplicates | out of order | result |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, x := range r.r {
		res := "ok"
		if x.err != nil {
			res = "failed: " + oneLine(x.err)
		} else if x.quoted {
			res = "ok; values JSON-quoted"
		}
		p("| %s | %s | %d | %d | %d | %d | %d | %d | %s |\n", x.id, x.scenario, x.events, x.written, x.distinct, x.lost, x.dups, x.reordered, res)
	}
	p("\n")
}
