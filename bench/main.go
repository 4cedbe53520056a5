// Command bench measures logagent against its peers on the same broker, in
// one invocation, and prints one table (also written to -out):
//
//	A  throughput: 1M access-log lines already in a file, lz4, acks=all:
//	   kcat, a bare sarama loop, a bare franz-go loop, logagent (sarama),
//	   logagent (franz-go), rsyslog imfile → omkafka. Wall, CPU, peak RSS,
//	   medians of -runs interleaved runs, ratios to kcat.
//	B  latency: logagent following a file written at 10k lines/s; each line
//	   carries its write time; a consumer reports consume − write.
//	S  the Sys Agent's cost: two idle agents side by side, host metrics
//	   off and on (every 10 s), CPU of each over the same window.
//	C  many files: 1,000 files appended 10 lines/s each; the agent's CPU
//	   (% of one core), context switches and RSS over a window after a
//	   warm-up, median of -c-runs runs per client; as peers, kcat and the
//	   bare loops fed the same lines at the same pace through a pipe (all
//	   contenders interleaved).
//	T  the transfer (workload_t.go): `logagent transfer` against a bare
//	   _bulk loop on a real OpenSearch node (scripts/opensearch.sh), and
//	   append → searchable through agent, Kafka, transfer and OpenSearch.
//	R  restarts and rotations: one file written at -r-rate lines/s while the
//	   follower is killed with SIGKILL and restarted -r-events times (or the
//	   file renamed away and created anew as often); a consumer counts the
//	   lines lost, duplicated and out of order.
//
// The OpenTelemetry Collector (filelog → kafka, built by
// scripts/bench-deps.sh from bench/otelcol-builder.yaml into the user's
// cache) runs in A, B, C and R beside logagent, with its in-memory sending
// queue (otelcol) and with the queue in file_storage (otelcol-persistent).
//
// The broker is an in-process kfake (its CPU is the bench's, not the
// contenders') unless -brokers or BROKERS names a real Kafka. etcd is
// embedded. Everything listens on 127.0.0.1. Install kcat and rsyslog with
// scripts/bench-deps.sh first; a missing peer is reported in the table.
//
//	go run ./bench [-runs 3] [-c-runs 3] [-lines 1000000] [-quick] [-only A,B,C,R,S,T,kcat,otelcol,...] [-sys-window 5m] [-t-docs 100000] [-out bench/results.md]
//
// Environment: BENCH_PROFILE=DIR saves a CPU and a heap profile of each
// logagent run (A, C); BENCH_AGENT_ENV="K=V ..." is added to the agent's
// environment only; BENCH_INI="section.key=value ..." overrides the agent's ini
// (e.g. "kafka.linger=0s agent.buffer_bytes=4MiB").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/logagent/logagent/internal/testenv"
)

type options struct {
	runs        int
	lines       int
	quick       bool
	only        map[string]bool
	out         string
	brokers     string
	partitions  int
	agentBin    string
	repo        string
	timeout     time.Duration
	latRate     int
	latDur      time.Duration
	files       int
	fileRate    int
	cRuns       int
	warmup      time.Duration
	window      time.Duration
	keepTmp     bool
	maxDuration time.Duration
	sysWindow   time.Duration
	sysInterval time.Duration
	tDocs       int
	tRuns       int
	tRate       int
	tLatDur     time.Duration
	tPoll       time.Duration
	tMax        time.Duration
	otelcol     string
	rRate       int
	rDur        time.Duration
	rEvents     int
}

// env is what every workload shares: one broker, one etcd, one agent binary.
type env struct {
	opts         options
	dir          string
	kafka        *broker
	etcd         *clientv3.Client
	etcdEndpoint string
	agentBin     string
	self         string
	runID        string
	firstLine    string // workload A's first line, without its newline
	agentBuilt   string // where the agent binary comes from
	bufferLimit  atomic.Int64
}

// Contender and workload names accepted by -only.
var (
	workloadNames  = []string{"A", "B", "C", "R", "S", "T"}
	contenderNames = []string{"kcat", "sarama", "franz-go", "logagent-sarama", "logagent-franz-go", "rsyslog", "otelcol", "otelcol-persistent"}
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == childSarama || os.Args[1] == childFranz) {
		os.Exit(childMain(os.Args[1], os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == childBulk {
		os.Exit(bulkChildMain(os.Args[2:]))
	}
	os.Exit(run())
}

func run() (code int) {
	var o options
	var only string
	flag.IntVar(&o.runs, "runs", 3, "runs of each workload A contender (interleaved); the median is reported")
	flag.IntVar(&o.lines, "lines", 1000000, "lines in workload A's file")
	flag.BoolVar(&o.quick, "quick", false, "smoke run: 100k lines, 1 run, 3 s latency run, 100 files, short window (explicit flags win)")
	flag.StringVar(&only, "only", "", "comma list of workloads ("+strings.Join(workloadNames, ",")+") and/or contenders ("+strings.Join(contenderNames, ",")+"); empty = all")
	flag.StringVar(&o.out, "out", "bench/results.md", "also write the table here (empty = don't)")
	flag.StringVar(&o.brokers, "brokers", os.Getenv("BROKERS"), "real Kafka bootstrap brokers host:port,... (default: env BROKERS; empty = in-process kfake)")
	flag.IntVar(&o.partitions, "partitions", 1, "partitions of each topic the bench creates")
	flag.StringVar(&o.agentBin, "agent", "", "logagent binary to run (default: go build one from -repo into a temp dir)")
	flag.StringVar(&o.repo, "repo", ".", "logagent repository root (for go build)")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound of each single run")
	flag.IntVar(&o.latRate, "lat-rate", 10000, "workload B: lines per second")
	flag.DurationVar(&o.latDur, "lat-duration", 10*time.Second, "workload B: how long to write")
	flag.IntVar(&o.files, "files", 1000, "workload C: number of files")
	flag.IntVar(&o.fileRate, "file-rate", 10, "workload C: lines per second per file")
	flag.IntVar(&o.cRuns, "c-runs", 3, "workload C: runs of each client (interleaved); the median is reported")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "workload C: warm-up before measuring")
	flag.DurationVar(&o.window, "window", 20*time.Second, "workload C: measuring window")
	flag.DurationVar(&o.sysWindow, "sys-window", 5*time.Minute, "workload S: measuring window")
	flag.DurationVar(&o.sysInterval, "sys-interval", 10*time.Second, "workload S: the Sys Agent's interval")
	flag.IntVar(&o.tDocs, "t-docs", 100000, "workload T: documents each contender indexes per run")
	flag.IntVar(&o.tRuns, "t-runs", 5, "workload T: runs of each contender (interleaved); the median is reported")
	flag.IntVar(&o.tRate, "t-rate", 5000, "workload T: lines per second of the append → searchable run")
	flag.DurationVar(&o.tLatDur, "t-lat-duration", 20*time.Second, "workload T: how long to write in the append → searchable run")
	flag.DurationVar(&o.tPoll, "t-poll", 100*time.Millisecond, "workload T: how often the bench searches for new lines")
	flag.DurationVar(&o.tMax, "t-max", 6*time.Minute, "workload T: bound of the whole workload (OpenSearch start included)")
	flag.StringVar(&o.otelcol, "otelcol", defaultOtelcol(), "the OpenTelemetry Collector binary (scripts/bench-deps.sh builds it there)")
	flag.IntVar(&o.rRate, "r-rate", 2000, "workload R: lines per second")
	flag.DurationVar(&o.rDur, "r-duration", 12*time.Second, "workload R: how long to write")
	flag.IntVar(&o.rEvents, "r-events", 4, "workload R: kills (and, in the rotation run, rotations) while writing")
	flag.BoolVar(&o.keepTmp, "keep-tmp", false, "keep the temp dir (logs, configs, data)")
	flag.DurationVar(&o.maxDuration, "max-duration", 45*time.Minute, "bound of the whole benchmark")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		quick := map[string]func(){
			"lines": func() { o.lines = 100000 }, "runs": func() { o.runs = 1 },
			"lat-duration": func() { o.latDur = 3 * time.Second }, "files": func() { o.files = 100 },
			"warmup": func() { o.warmup = 2 * time.Second }, "window": func() { o.window = 5 * time.Second },
			"timeout": func() { o.timeout = time.Minute }, "c-runs": func() { o.cRuns = 1 },
			"sys-window": func() { o.sysWindow = 30 * time.Second },
			"t-docs":     func() { o.tDocs = 20000 }, "t-runs": func() { o.tRuns = 1 }, "t-lat-duration": func() { o.tLatDur = 5 * time.Second },
			"r-duration": func() { o.rDur = 6 * time.Second }, "r-events": func() { o.rEvents = 2 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	if o.runs < 1 || o.lines < 1 || o.files < 1 || o.partitions < 1 || o.cRuns < 1 || o.tRuns < 1 || o.tDocs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs, -lines, -files, -partitions, -c-runs, -t-runs and -t-docs must be at least 1")
		return 2
	}
	o.only = map[string]bool{}
	valid := map[string]bool{}
	for _, n := range append(append([]string{}, workloadNames...), contenderNames...) {
		valid[strings.ToLower(n)] = true
	}
	for _, t := range strings.Split(only, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if t == "franz" || t == "logagent-franz" {
			t += "-go"
		}
		if !valid[t] {
			fmt.Fprintf(os.Stderr, "bench: -only: unknown %q (want %s, %s)\n", t, strings.Join(workloadNames, ","), strings.Join(contenderNames, ","))
			return 2
		}
		o.only[t] = true
	}

	start, loadStart := time.Now(), loadAvg()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.maxDuration)
	defer cancel()
	defer killChildren()
	defer func() {
		if r := recover(); r != nil {
			killChildren()
			panic(r)
		}
	}()

	e, cleanup, err := setup(ctx, o)
	defer cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	rep := &report{opts: o, env: e, started: start, loadStart: loadStart}
	if e.wantWorkload("A") {
		rep.a = e.workloadA(ctx)
	}
	if e.wantWorkload("B") {
		rep.b = e.workloadB(ctx)
	}
	if e.wantWorkload("C") {
		rep.c = e.workloadC(ctx)
	}
	if e.wantWorkload("R") {
		rep.r = e.workloadR(ctx)
	}
	if e.wantWorkload("S") {
		rep.s = e.workloadS(ctx)
	}
	var t *resultT
	if e.wantWorkload("T") {
		t = e.workloadT(ctx)
	}
	rep.total = time.Since(start)
	text := rep.render()
	if t != nil {
		text += renderT(t, o.tRuns)
	}
	fmt.Println()
	fmt.Print(text)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench: write results:", err)
			return 1
		}
		fmt.Printf("\n(written to %s)\n", o.out)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "bench: interrupted or over -max-duration:", ctx.Err())
		return 1
	}
	return 0
}

func (e *env) wantContender(id string) bool {
	given := false
	for _, c := range contenderNames {
		if e.opts.only[c] {
			given = true
		}
	}
	return !given || e.opts.only[id]
}

func (e *env) wantWorkload(w string) bool {
	given := false
	for _, n := range workloadNames {
		if e.opts.only[strings.ToLower(n)] {
			given = true
		}
	}
	if given && !e.opts.only[strings.ToLower(w)] {
		return false
	}
	switch w {
	case "A":
		for _, c := range contenderNames {
			if e.wantContender(c) {
				return true
			}
		}
		return false
	case "C":
		return slices.ContainsFunc(contendersC, e.wantContender)
	case "S", "T": // logagent with franz-go only
		return e.wantContender("logagent-franz-go")
	case "R":
		return slices.ContainsFunc(contendersR, e.wantContender)
	default: // B runs the followers only
		return slices.ContainsFunc(contendersB, e.wantContender)
	}
}

func (e *env) needAgent() bool {
	agent := e.wantContender("logagent-sarama") || e.wantContender("logagent-franz-go")
	return e.wantWorkload("S") || e.wantWorkload("T") || (agent && (e.wantWorkload("A") || e.wantWorkload("B") || e.wantWorkload("C") || e.wantWorkload("R")))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// setup starts the broker and etcd and builds the agent. cleanup is always
// safe to call.
func setup(ctx context.Context, o options) (*env, func(), error) {
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	dir, err := os.MkdirTemp("", "logagent-bench-")
	if err != nil {
		return nil, cleanup, err
	}
	closers = append(closers, func() {
		if o.keepTmp {
			logf("temp dir kept: %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	self, err := os.Executable()
	if err != nil {
		return nil, cleanup, err
	}
	e := &env{opts: o, dir: dir, self: self, runID: fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)}

	var addrs []string
	inProcess := o.brokers == ""
	if inProcess {
		k, err := testenv.StartKafka(0)
		if err != nil {
			return nil, cleanup, err
		}
		closers = append(closers, k.Close)
		addrs = k.Addrs
		logf("in-process Kafka (kfake) at %s", strings.Join(addrs, ","))
	} else {
		for _, a := range strings.Split(o.brokers, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		logf("real Kafka at %s", strings.Join(addrs, ","))
	}
	b, err := newBroker(addrs, int32(o.partitions), inProcess)
	if err != nil {
		return nil, cleanup, err
	}
	closers = append(closers, b.close)
	e.kafka = b
	// Fail early when the broker does not answer.
	probe := "bench-probe-" + e.runID
	if err := b.createTopic(ctx, probe); err != nil {
		return nil, cleanup, fmt.Errorf("Kafka at %s: %w", b.list(), err)
	}
	b.deleteTopic(ctx, probe)

	if e.needAgent() {
		et, err := testenv.StartEtcd(dir, 0)
		if err != nil {
			return nil, cleanup, err
		}
		closers = append(closers, et.Close)
		e.etcdEndpoint = et.Endpoint
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{et.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return nil, cleanup, err
		}
		closers = append(closers, func() { cli.Close() })
		e.etcd = cli
		logf("embedded etcd at %s", et.Endpoint)

		e.agentBin = o.agentBin
		if e.agentBin == "" {
			e.agentBin = filepath.Join(dir, "logagent")
			if _, err := os.Stat(filepath.Join(o.repo, "go.mod")); err != nil {
				return nil, cleanup, fmt.Errorf("-repo %s: %w (run from the repository root or pass -agent)", o.repo, err)
			}
			e.agentBuilt = "built from the work tree at " + firstLine("git", "-C", o.repo, "describe", "--always", "--dirty")
			logf("go build -o %s . (in %s, %s)", e.agentBin, o.repo, e.agentBuilt)
			cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", e.agentBin, ".")
			cmd.Dir = o.repo
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, cleanup, fmt.Errorf("go build logagent: %w\n%s", err, out)
			}
		} else if e.agentBin, err = filepath.Abs(e.agentBin); err != nil {
			return nil, cleanup, err
		} else {
			e.agentBuilt = e.agentBin
		}
		if _, err := os.Stat(e.agentBin); err != nil {
			return nil, cleanup, fmt.Errorf("logagent binary: %w", err)
		}
	}
	return e, cleanup, nil
}

// tool returns a peer's path, or why it cannot run.
func tool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", errors.New(name + " not installed (run scripts/bench-deps.sh)")
	}
	return p, nil
}

func firstLine(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

func grepLine(prefix, name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if i := strings.IndexByte(l, ':'); i >= 0 {
				return strings.TrimSpace(l[i+1:])
			}
		}
	}
	return runtime.GOARCH
}
