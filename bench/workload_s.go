package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/logagent/logagent/fleet"
)

// resultS is workload S: the Sys Agent's cost. Two idle agents (no file to
// follow) run side by side, one with the Sys Agent sampling every
// -sys-interval and one without; each one's CPU is read over the same
// window, so that the machine's other load weighs on both alike.
type resultS struct {
	window   time.Duration
	interval time.Duration
	off, on  time.Duration // CPU over the window
	sent     int64         // samples acknowledged (the on agent)
	err      error
}

func (e *env) workloadS(ctx context.Context) *resultS {
	r := &resultS{window: e.opts.sysWindow, interval: e.opts.sysInterval}
	logf("workload S: two idle agents (franz-go), Sys Agent off and on at %s, warm-up %s, window %s", r.interval, e.opts.warmup, r.window)
	r.err = e.sysCost(ctx, r)
	if r.err != nil {
		logf("S FAILED: %v", r.err)
	} else {
		logf("S: off %s CPU, on %s CPU over %s; %d samples sent", r.off, r.on, r.window, r.sent)
	}
	return r
}

func (e *env) sysCost(ctx context.Context, r *resultS) error {
	topic := "bench-sys-" + e.runID
	if err := e.kafka.createTopic(ctx, topic); err != nil {
		return err
	}
	defer e.kafka.deleteTopic(context.Background(), topic)
	var agents [2]*agentRun
	for i, name := range []string{"off", "on"} {
		a, err := e.startAgent(ctx, filepath.Join(e.dir, "S", name), "bench-sys-"+name+"-"+e.runID, "franz-go", []collectEntry{})
		if err != nil {
			return err
		}
		defer a.finish() //nolint:errcheck
		agents[i] = a
	}
	key := fleet.SysConfigKey(agents[1].host)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := e.etcd.Put(pctx, key, fmt.Sprintf(`{"topic": %q, "interval": %q}`, topic, r.interval))
	cancel()
	if err != nil {
		return fmt.Errorf("etcd put %s: %w", key, err)
	}
	defer e.etcd.Delete(context.Background(), key) //nolint:errcheck
	select {
	case <-time.After(e.opts.warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	var cpu0 [2]time.Duration
	for i, a := range agents {
		if cpu0[i], err = procCPU(a.pid()); err != nil {
			return err
		}
	}
	select {
	case <-time.After(r.window):
	case <-ctx.Done():
		return ctx.Err()
	}
	for i, a := range agents {
		if a.exited() {
			return fmt.Errorf("agent %s exited; last log lines:\n%s", a.host, a.logTail(15))
		}
		c, err := procCPU(a.pid())
		if err != nil {
			return err
		}
		if i == 0 {
			r.off = c - cpu0[i]
		} else {
			r.on = c - cpu0[i]
		}
	}
	r.sent = agents[1].scrapeValue(ctx, "logagent_sys_samples_sent_total")
	if r.sent == 0 {
		return fmt.Errorf("the Sys Agent sent no sample; last log lines:\n%s", agents[1].logTail(15))
	}
	return nil
}

// scrapeValue is one unlabelled metric's value from /metrics (0 when absent).
func (a *agentRun) scrapeValue(ctx context.Context, name string) int64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.metrics, nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if n, v, ok := splitSample(s.Text()); ok && n == name {
			return int64(v)
		}
	}
	return 0
}

func (r *report) renderS(p func(string, ...any)) {
	x := r.s
	p("## S. Sys Agent cost: two idle agents side by side for %s, one sampling the host every %s\n\n", x.window, x.interval)
	if x.err != nil {
		p("failed: %s\n\n", oneLine(x.err))
		return
	}
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / x.window.Seconds() }
	p("| agent | CPU s over the window | %% of a core | samples sent |\n|---|---:|---:|---:|\n")
	p("| Sys Agent off | %s | %.3f | – |\n", secs(x.off), pct(x.off))
	p("| Sys Agent on | %s | %.3f | %d |\n", secs(x.on), pct(x.on), x.sent)
	p("\nThe Sys Agent costs %.3f %% of a core (goal: < 0.1 %%). CPU is read from /proc/PID/stat in 10 ms ticks: "+
		"over a short window the difference is within a few ticks of noise.\n\n", pct(x.on-x.off))
}
