package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
)

// collectEntry is one element of /logagent/<host>/collect_config.
type collectEntry struct {
	Path     string `json:"path"`
	Topic    string `json:"topic"`
	ReadFrom string `json:"read_from,omitempty"`
}

// agentRun is one logagent child process with its own host key, data_dir
// and metrics port.
type agentRun struct {
	*proc
	host    string
	metrics string // http://127.0.0.1:PORT/metrics
	key     string
	etcd    *clientv3.Client
	bufMax  *atomic.Int64 // env.bufferLimit: reported in the table
}

// startAgent puts the collect config under a fresh host key, writes an ini
// with logagent's production defaults (only the client, the servers and the
// HTTP port set), and starts the binary.
func (e *env) startAgent(ctx context.Context, dir, host, client string, entries []collectEntry) (*agentRun, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	v, _ := json.Marshal(entries)
	key := fleet.ConfigKey(host)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = e.etcd.Put(pctx, key, string(v))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("etcd put %s: %w", key, err)
	}
	// logagent's defaults but for the servers, the client, the HTTP port
	// and what BENCH_INI sets.
	cfg := filepath.Join(dir, "config.ini")
	ini := testenv.AgentINI{Host: host, DataDir: filepath.Join(dir, "data"), Brokers: e.kafka.addrs,
		Client: client, Etcd: e.etcdEndpoint}
	if err := ini.Write(cfg, fmt.Sprintf(`[agent]
http_addr = 127.0.0.1:%d
log_level = warn
shutdown_timeout = 10s
[kafka]
compression = lz4
required_acks = all
idempotent = true
linger = 5ms
[etcd]
dial_timeout = 5s
`, port), benchINI()); err != nil {
		return nil, fmt.Errorf("agent ini: %w", err)
	}
	// BENCH_AGENT_ENV (space-separated K=V) goes to the agent only, e.g.
	// GOGC or GOMEMLIMIT experiments that must not slow the bench's kfake.
	p, err := startProcEnv(filepath.Join(dir, "agent.log"), nil, strings.Fields(os.Getenv("BENCH_AGENT_ENV")), e.agentBin, "-config", cfg)
	if err != nil {
		return nil, err
	}
	return &agentRun{proc: p, host: host, key: key, etcd: e.etcd, bufMax: &e.bufferLimit,
		metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port)}, nil
}

// finish stops the agent (SIGTERM), removes its etcd key and reports an
// unclean exit with the tail of its log.
func (a *agentRun) finish() error {
	err := a.stop(20 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	a.etcd.Delete(ctx, a.key) //nolint:errcheck
	cancel()
	if err != nil {
		return fmt.Errorf("logagent exit: %v; last log lines:\n%s", err, a.logTail(15))
	}
	return nil
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// agentMetrics is what the bench reads from /metrics.
type agentMetrics struct {
	acked   int64 // sum of logagent_file_lines_acked_total
	read    int64
	running int // files in state "running"
	errors  int64
	heap    int64 // go_memstats_heap_inuse_bytes
	sys     int64 // go_memstats_sys_bytes: memory obtained from the OS
	gorout  int64 // go_goroutines
	bufMax  int64 // logagent_buffer_limit_bytes (the buffer_bytes in force)
}

func (a *agentRun) scrape(ctx context.Context) (agentMetrics, error) {
	var m agentMetrics
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.metrics, nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET %s: %s", a.metrics, resp.Status)
	}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		l := s.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		name, val, ok := splitSample(l)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(name, "logagent_file_lines_acked_total{"):
			m.acked += int64(val)
		case strings.HasPrefix(name, "logagent_file_lines_read_total{"):
			m.read += int64(val)
		case strings.HasPrefix(name, "logagent_file_state{") && strings.Contains(name, `state="running"`):
			if val == 1 {
				m.running++
			}
		case name == "logagent_producer_errors_total":
			m.errors = int64(val)
		case name == "go_memstats_heap_inuse_bytes":
			m.heap = int64(val)
		case name == "go_memstats_sys_bytes":
			m.sys = int64(val)
		case name == "go_goroutines":
			m.gorout = int64(val)
		case name == "logagent_buffer_limit_bytes":
			m.bufMax = int64(val)
			a.bufMax.Store(m.bufMax)
		}
	}
	return m, s.Err()
}

// splitSample splits `name{labels} value` (label values may hold spaces).
func splitSample(l string) (string, float64, bool) {
	i := strings.LastIndexByte(l, ' ')
	if i < 0 {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(l[i+1:], 64)
	if err != nil {
		return "", 0, false
	}
	return l[:i], v, true
}

// waitMetrics polls /metrics every `every` until cond holds; it fails when
// ctx ends or the agent exits.
func (a *agentRun) waitMetrics(ctx context.Context, every time.Duration, cond func(agentMetrics) bool) (agentMetrics, time.Time, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last agentMetrics
	var lastErr error
	for {
		m, err := a.scrape(ctx)
		if err == nil {
			last, lastErr = m, nil
			if cond(m) {
				return m, time.Now(), nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return last, time.Time{}, fmt.Errorf("%v (acked %d, read %d, running files %d, last scrape error: %v); last log lines:\n%s",
				context.Cause(ctx), last.acked, last.read, last.running, lastErr, a.logTail(15))
		case <-a.done:
			return last, time.Time{}, fmt.Errorf("logagent exited early (%v); last log lines:\n%s", a.err, a.logTail(15))
		case <-t.C:
		}
	}
}

// benchINI turns BENCH_INI ("section.key=value ...", e.g.
// "kafka.linger=0s agent.buffer_bytes=4MiB") into ini text that overrides
// the defaults above.
func benchINI() string {
	var b strings.Builder
	for _, f := range strings.Fields(os.Getenv("BENCH_INI")) {
		k, v, ok := strings.Cut(f, "=")
		sec, key, ok2 := strings.Cut(k, ".")
		if !ok || !ok2 {
			continue
		}
		fmt.Fprintf(&b, "[%s]\n%s = %s\n", sec, key, v)
	}
	return b.String()
}

// profile, when BENCH_PROFILE names a directory, takes a CPU profile of the
// agent from its /debug/pprof while it runs and writes it to path (and
// the heap profile after it, as .heap.pprof and .heap.txt); the
// channel closes when done. Profiling costs the agent a few percent, so the
// table of a profiled run is not the one to quote.
func (a *agentRun) profile(ctx context.Context, path string, seconds int) <-chan struct{} {
	done := make(chan struct{})
	if os.Getenv("BENCH_PROFILE") == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		base := strings.TrimSuffix(a.metrics, "/metrics") + "/debug/pprof/"
		url := base + "profile?seconds=" + strconv.Itoa(seconds)
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := (&http.Client{Timeout: time.Duration(seconds+10) * time.Second}).Do(req)
			if err != nil { // not listening yet
				time.Sleep(2 * time.Millisecond)
				continue
			}
			save(path, resp)
			// The heap profile as of the last GC: what was live under load.
			if resp, err := httpClient.Get(base + "heap"); err == nil {
				save(strings.TrimSuffix(path, ".pprof")+".heap.pprof", resp)
			}
			// The same as text, which ends with runtime.MemStats: stacks,
			// idle and released spans, GC figures.
			if resp, err := httpClient.Get(base + "heap?debug=1"); err == nil {
				save(strings.TrimSuffix(path, ".pprof")+".heap.txt", resp)
			}
			return
		}
	}()
	return done
}

func save(path string, resp *http.Response) {
	defer resp.Body.Close()
	if f, err := os.Create(path); err == nil {
		io.Copy(f, resp.Body) //nolint:errcheck
		f.Close()
	}
}
