package e2e

// The shared harness: a real Kafka cluster (scripts/kafka.sh), a real etcd
// (scripts/etcd.sh), the agent binary, etcdctl and the console consumer,
// each started in a t.TempDir on 127.0.0.1 and stopped by t.Cleanup.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logagent/logagent/internal/testenv"
)

const (
	host      = "e2e-host"
	configKey = "/logagent/" + host + "/collect_config"
	statusKey = "/logagent/" + host + "/status"
)

// ---------------------------------------------------------------- ports

// freePorts returns the first of n consecutive free TCP ports on 127.0.0.1
// below the ephemeral range (see testenv.LowPorts).
func freePorts(t *testing.T, n int) int {
	t.Helper()
	p, err := testenv.LowPorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ---------------------------------------------------------------- commands

// command runs name with args (cwd: the repository root) and returns its
// stdout; stderr is part of the error. It is killed after timeout.
func command(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A server started in the background must not keep us waiting on the
	// pipes (the scripts redirect them; this is the safety net).
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s: %w\nstderr:\n%s", shellJoin(name, args), err, testenv.LastLines(stderr.String(), 40))
	}
	return stdout.String(), nil
}

// shellJoin renders a command line the way an operator would type it.
func shellJoin(name string, args []string) string {
	parts := []string{name}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'[]{}$*?;&|<>\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func script(name string) string { return filepath.Join(root, "scripts", name) }

// ---------------------------------------------------------------- Kafka

// kafkaCluster is a real Kafka cluster started by scripts/kafka.sh.
type kafkaCluster struct {
	t         *testing.T
	dir       string
	nodes     int
	bootstrap string // comma-separated
}

// startKafka starts a cluster of n combined broker+controller nodes and
// stops it when the test ends.
func startKafka(t *testing.T, n int) *kafkaCluster { return startKafkaEnv(t, n, nil) }

// startKafkaEnv is startKafka with more environment for scripts/kafka.sh,
// made from the broker and controller base ports (KAFKA_EXTRA_PROPERTIES
// with more listeners).
func startKafkaEnv(t *testing.T, n int, extra func(base, controller int) []string) *kafkaCluster {
	t.Helper()
	k := &kafkaCluster{t: t, dir: filepath.Join(t.TempDir(), "kafka"), nodes: n}
	base, controller := freePorts(t, n), freePorts(t, n)
	env := []string{
		"KAFKA_BASE_PORT=" + strconv.Itoa(base),
		"KAFKA_CONTROLLER_BASE_PORT=" + strconv.Itoa(controller),
	}
	if extra != nil {
		env = append(env, extra(base, controller)...)
	}
	start := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			for i := 1; i <= k.nodes; i++ {
				k.logTail(i, 30)
			}
		}
		// Bounded: a node still up after 10 s is killed by the script.
		if _, err := command(60*time.Second, []string{"KAFKA_STOP_TIMEOUT=10"}, script("kafka.sh"), "stop", k.dir); err != nil {
			t.Errorf("stopping Kafka: %v", err)
		}
	})
	out, err := command(3*time.Minute, env, script("kafka.sh"), "start", k.dir, strconv.Itoa(n))
	if err != nil {
		t.Fatalf("starting Kafka: %v", err)
	}
	k.bootstrap = strings.TrimSpace(testenv.LastLines(out, 1))
	t.Logf("Kafka %d node(s) at %s, up in %s", n, k.bootstrap, time.Since(start).Round(time.Millisecond))
	return k
}

func (k *kafkaCluster) brokers() []string { return strings.Split(k.bootstrap, ",") }

// logTail logs the end of node i's server.log.
func (k *kafkaCluster) logTail(i, n int) {
	data, err := os.ReadFile(filepath.Join(k.dir, fmt.Sprintf("node%d", i), "server.log"))
	if err != nil {
		k.t.Logf("node %d server.log: %v", i, err)
		return
	}
	k.t.Logf("----- node %d server.log (end) -----\n%s", i, testenv.LastLines(string(data), n))
}

// run runs `scripts/kafka.sh ARGS...` and fails the test on error.
func (k *kafkaCluster) run(timeout time.Duration, args ...string) string {
	k.t.Helper()
	out, err := command(timeout, nil, script("kafka.sh"), args...)
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

// logged is run, with the command line in the test log (operator commands).
func (k *kafkaCluster) logged(timeout time.Duration, args ...string) string {
	k.t.Helper()
	k.t.Logf("$ %s", shellJoin("scripts/kafka.sh", args))
	return k.run(timeout, args...)
}

// createTopic creates a topic with TopicCommand (kafka-topics.sh).
func (k *kafkaCluster) createTopic(topic string, partitions, replicas int, configs ...string) {
	k.t.Helper()
	args := []string{"topics", "--bootstrap-server", k.bootstrap, "--create", "--topic", topic,
		"--partitions", strconv.Itoa(partitions), "--replication-factor", strconv.Itoa(replicas)}
	for _, c := range configs {
		args = append(args, "--config", c)
	}
	k.logged(time.Minute, args...)
}

// leader returns the node that leads partition 0 of topic, as
// `kafka-topics.sh --describe` prints it ("Leader: N").
func (k *kafkaCluster) leader(topic string) int {
	k.t.Helper()
	out := k.logged(time.Minute, "topics", "--bootstrap-server", k.bootstrap, "--describe", "--topic", topic)
	for _, f := range strings.Split(out, "\t") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(f), "Leader: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				k.t.Fatalf("cannot parse leader in %q", out)
			}
			return n
		}
	}
	k.t.Fatalf("no leader in:\n%s", out)
	return 0
}

// endOffset returns the log end offset of partition 0 of topic
// (kafka-get-offsets.sh prints "topic:partition:offset").
func (k *kafkaCluster) endOffset(topic string) int64 {
	k.t.Helper()
	out := k.logged(time.Minute, "get-offsets", "--bootstrap-server", k.bootstrap, "--topic", topic)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if v, ok := strings.CutPrefix(l, topic+":0:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				return n
			}
		}
	}
	k.t.Fatalf("no end offset for %s:0 in:\n%s", topic, out)
	return 0
}

func (k *kafkaCluster) kill(node int) {
	k.t.Helper()
	k.logged(time.Minute, "kill", k.dir, strconv.Itoa(node))
}
func (k *kafkaCluster) stopNode(node int) {
	k.t.Helper()
	k.logged(2*time.Minute, "stop-node", k.dir, strconv.Itoa(node))
}
func (k *kafkaCluster) restartNode(node int) {
	k.t.Helper()
	k.logged(3*time.Minute, "restart-node", k.dir, strconv.Itoa(node))
}

// consoleRecord is one record as kafka-console-consumer.sh prints it with
// print.headers=true and print.key=true:
// "host:e2e-host,path:/x,offset:0,file:<16 hex><TAB>key<TAB>value".
type consoleRecord struct {
	headers map[string]string
	key     string
	value   string
}

// consume runs the real console consumer from the beginning of topic; it
// exits after max records, or when no record came for idle (exit code 0
// either way).
func (k *kafkaCluster) consume(topic string, max int, idle time.Duration) []consoleRecord {
	k.t.Helper()
	return k.consumeFrom(k.bootstrap, topic, max, idle)
}

// consumeFrom is consume through bootstrap (another listener), with more
// console consumer arguments (--consumer.config FILE).
func (k *kafkaCluster) consumeFrom(bootstrap, topic string, max int, idle time.Duration, more ...string) []consoleRecord {
	k.t.Helper()
	args := []string{"console-consumer", "--bootstrap-server", bootstrap, "--topic", topic,
		"--from-beginning", "--max-messages", strconv.Itoa(max), "--timeout-ms", strconv.Itoa(int(idle.Milliseconds())),
		"--property", "print.headers=true", "--property", "print.key=true", "--property", "print.value=true"}
	args = append(args, more...)
	out := k.logged(idle+2*time.Minute, args...)
	var recs []consoleRecord
	// Split on "\n" only: a "\r" left at the end of a value must show.
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" && len(recs) == 0 && out == "" {
			break
		}
		// The key (host:file:offset) holds no tab; the value may.
		hs, rest, ok := strings.Cut(l, "\t")
		key, value, ok2 := strings.Cut(rest, "\t")
		if !ok || !ok2 {
			k.t.Fatalf("console consumer line without two tabs: %q", l)
		}
		r := consoleRecord{headers: map[string]string{}, key: key, value: value}
		if hs != "NO_HEADERS" {
			for _, h := range strings.Split(hs, ",") {
				key, v, _ := strings.Cut(h, ":")
				r.headers[key] = v
			}
		}
		recs = append(recs, r)
	}
	return recs
}

// ---------------------------------------------------------------- etcd

// etcdServer is a real etcd process started by scripts/etcd.sh.
type etcdServer struct {
	t        *testing.T
	dir      string
	endpoint string   // http://127.0.0.1:PORT
	env      []string // for scripts/etcd.sh and etcdctl (TLS: LOGAGENT_ETCD_TLS_*, ETCDCTL_*)
}

func startEtcd(t *testing.T) *etcdServer { return startEtcdEnv(t, nil) }

func startEtcdEnv(t *testing.T, env []string) *etcdServer {
	t.Helper()
	e := &etcdServer{t: t, dir: filepath.Join(t.TempDir(), "etcd"), env: env}
	t.Cleanup(func() {
		if _, err := command(time.Minute, nil, script("etcd.sh"), "stop", e.dir); err != nil {
			t.Errorf("stopping etcd: %v", err)
		}
	})
	out, err := command(time.Minute, env, script("etcd.sh"), "start", e.dir,
		strconv.Itoa(freePorts(t, 1)), strconv.Itoa(freePorts(t, 1)))
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	e.endpoint = strings.TrimSpace(testenv.LastLines(out, 1))
	return e
}

// ctl runs the real etcdctl against this etcd.
func (e *etcdServer) ctl(args ...string) string {
	e.t.Helper()
	args = append([]string{"--endpoints", e.endpoint}, args...)
	out, err := command(30*time.Second, append([]string{"ETCDCTL_API=3"}, e.env...), "etcdctl", args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// put is `etcdctl put KEY VALUE`; it returns the revision of the write
// (asked for with -w json), which the agent logs when it applies it.
func (e *etcdServer) put(key, value string) int64 {
	e.t.Helper()
	e.t.Logf("$ %s", shellJoin("etcdctl", []string{"--endpoints", e.endpoint, "put", key, value}))
	out := e.ctl("put", "-w", "json", key, value)
	var resp struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Header.Revision == 0 {
		e.t.Fatalf("etcdctl put -w json: %q: %v", out, err)
	}
	return resp.Header.Revision
}

// get is `etcdctl get KEY --print-value-only`: "" when the key is absent.
func (e *etcdServer) get(key string) string {
	e.t.Helper()
	e.t.Logf("$ %s", shellJoin("etcdctl", []string{"--endpoints", e.endpoint, "get", key, "--print-value-only"}))
	return strings.TrimSpace(e.ctl("get", key, "--print-value-only"))
}

// ---------------------------------------------------------------- agent

// agentProc is one run of the built logagent binary.
type agentProc struct {
	*testenv.Proc
	t       *testing.T
	logPath string
	stopped bool
}

// Agent process bounds.
const (
	shutdownTimeout = 10 * time.Second
	// exitBound is how long SIGTERM may take: the shutdown timeout for
	// acks, plus closing the clients and revoking the status lease.
	exitBound = shutdownTimeout + 10*time.Second
)

// writeAgentConfig writes the ini an operator would, into dir/config.ini.
func writeAgentConfig(t *testing.T, dir, client string, brokers []string, etcdEndpoint string) string {
	t.Helper()
	p := filepath.Join(dir, "config.ini")
	ini := testenv.AgentINI{Host: host, DataDir: filepath.Join(dir, "data"), Brokers: brokers, Client: client, Etcd: etcdEndpoint}
	if err := ini.Write(p, fmt.Sprintf(`[agent]
shutdown_timeout = %s
rotate_wait = 1s
poll_interval = 100ms
[kafka]
required_acks = all
idempotent = true
`, shutdownTimeout)); err != nil {
		t.Fatal(err)
	}
	return p
}

// startAgent runs `logagent -config dir/config.ini` with its stderr in
// dir/agent.log (agent.2.log, ... for later runs), and waits for it to log
// that it started. If the test fails (or LOGAGENT_E2E_AGENT_LOG=1), the log
// is printed; if the test did not stop the agent, it is killed.
func startAgent(t *testing.T, dir, client string, brokers []string, etcdEndpoint string) *agentProc {
	t.Helper()
	return startAgentWith(t, dir, client, brokers, etcdEndpoint, "")
}

// startAgentWith is startAgent with more ini keys (extra's win).
func startAgentWith(t *testing.T, dir, client string, brokers []string, etcdEndpoint, extra string) *agentProc {
	t.Helper()
	cfg := writeAgentConfig(t, dir, client, brokers, etcdEndpoint)
	if extra != "" {
		base, _ := os.ReadFile(cfg)
		ini, err := testenv.Overlay(string(base), extra)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(cfg, []byte(ini), 0o600)
	}
	logPath := filepath.Join(dir, "agent.log")
	// A restart on the same dir keeps the earlier run's log.
	for i := 2; ; i++ {
		if _, err := os.Stat(logPath); errors.Is(err, os.ErrNotExist) {
			break
		}
		logPath = filepath.Join(dir, fmt.Sprintf("agent.%d.log", i))
	}
	t.Logf("$ logagent -config %s   # [kafka] client = %s", cfg, client)
	a := startProc(t, logPath, "agent", false, bin, "-config", cfg)
	a.waitLog(30*time.Second, testenv.AgentStarted)
	return a
}

// startProc runs name with args in the directory of logPath, its output in
// logPath. If the test fails (or LOGAGENT_E2E_AGENT_LOG=1), the log is
// printed; if the test did not stop the process, it is killed (-9), or
// with graceful sent SIGTERM (and killed after exitBound).
func startProc(t *testing.T, logPath, what string, graceful bool, name string, args ...string) *agentProc {
	t.Helper()
	p, err := testenv.StartProc(logPath, testenv.ProcOptions{Dir: filepath.Dir(logPath)}, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	a := &agentProc{Proc: p, t: t, logPath: logPath}
	t.Cleanup(func() {
		switch {
		case a.stopped:
		case graceful:
			a.Stop(exitBound) //nolint:errcheck // the test is over; only the process must go
		default:
			a.Kill()
		}
		if t.Failed() || os.Getenv("LOGAGENT_E2E_AGENT_LOG") == "1" {
			t.Logf("----- %s log (%s) -----\n%s", what, logPath, testenv.LastLines(a.Log(), 300))
		}
	})
	return a
}

// logAttr renders key=value the way log/slog's text handler does.
func logAttr(key, value string) string {
	if value == "" || strings.ContainsAny(value, " =\"\t\n") {
		value = strconv.Quote(value)
	}
	return key + "=" + value
}

// waitLog waits until one line of the agent's log holds every part.
func (a *agentProc) waitLog(timeout time.Duration, parts ...string) string {
	a.t.Helper()
	var line string
	err := a.WaitLog(timeout, func(log string) bool {
		line = testenv.LineWith(log, parts...)
		return line != ""
	})
	if errors.Is(err, testenv.ErrExited) {
		a.t.Fatalf("agent exited (%v) while waiting for a log line with %q", a.Cmd.ProcessState, parts)
	}
	if err != nil {
		a.t.Fatalf("no agent log line with %q after %s", parts, timeout)
	}
	return line
}

// applied waits until the agent applied the collect config of revision rev.
func (a *agentProc) applied(rev int64) {
	a.t.Helper()
	a.waitLog(10*time.Second, `msg="collect config applied"`, logAttr("revision", strconv.FormatInt(rev, 10)))
}

// stop sends SIGTERM and requires exit code 0 within exitBound.
func (a *agentProc) stop() time.Duration {
	a.t.Helper()
	a.stopped = true
	a.t.Logf("$ kill -TERM %d   # the agent", a.PID())
	took, err := a.Stop(exitBound)
	if errors.Is(err, testenv.ErrNotStopped) {
		a.t.Fatalf("agent still running %s after SIGTERM; killed", exitBound)
	}
	if err != nil {
		a.t.Fatalf("agent exited with %v after SIGTERM, want exit code 0", a.Cmd.ProcessState)
	}
	a.t.Logf("agent exited 0, %s after SIGTERM", took.Round(time.Millisecond))
	return took
}

// ---------------------------------------------------------------- files

// appendFile appends data to path (created if missing), as a logger would.
func appendFile(t *testing.T, path string, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

// since is how long ago start was, rounded for logs.
func since(start time.Time) time.Duration { return time.Since(start).Round(time.Millisecond) }

// ---------------------------------------------------------------- volume

// seqLineLen is the length of every numbered line, newline included, so
// that line i starts at byte i*seqLineLen (the offset header to expect).
const seqLineLen = 64

// seqLine is numbered line i: "seq 000042 xxx...x\n".
func seqLine(i int) string {
	s := fmt.Sprintf("seq %06d ", i)
	return s + strings.Repeat("x", seqLineLen-1-len(s)) + "\n"
}

// seqWriter appends numbered lines to a file at a steady pace, as a busy
// application would.
type seqWriter struct {
	written atomic.Int64
	quit    chan struct{}
	done    chan struct{}
	err     error
}

// startSeqWriter appends perTick lines every tick (one write each) to path,
// from line 0 until total lines are written (0: until stop).
func startSeqWriter(t *testing.T, path string, total, perTick int, tick time.Duration) *seqWriter {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := &seqWriter{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer f.Close()
		tk := time.NewTicker(tick)
		defer tk.Stop()
		var buf []byte
		for i := 0; total == 0 || i < total; {
			select {
			case <-w.quit:
				return
			case <-tk.C:
			}
			buf = buf[:0]
			for j := 0; j < perTick && (total == 0 || i < total); j++ {
				buf = append(buf, seqLine(i)...)
				i++
			}
			if _, err := f.Write(buf); err != nil {
				w.err = err
				return
			}
			w.written.Store(int64(i))
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// stop ends the writer and returns how many lines it wrote. Safe to call twice.
func (w *seqWriter) stop() int {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
	return int(w.written.Load())
}

// waitWritten waits until n lines are written.
func (w *seqWriter) waitWritten(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for w.written.Load() < int64(n) {
		select {
		case <-w.done:
			if w.err != nil {
				t.Fatalf("writer: %v", w.err)
			}
			if w.written.Load() < int64(n) {
				t.Fatalf("writer ended after %d lines, waiting for %d", w.written.Load(), n)
			}
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("writer at %d lines after %s, waiting for %d", w.written.Load(), timeout, n)
		}
	}
}

// seqConsumer reads a topic of numbered lines from the beginning with
// franz-go (the console consumer is slow for 100k records) and counts each
// sequence number. Every record is checked: exact value and headers.
type seqConsumer struct {
	t        *testing.T
	cl       *kgo.Client
	path     string
	seen     map[int]int // sequence number -> times received
	records  int
	next     int64 // highest offset received + 1
	problems []string

	maxSeq    int          // highest sequence number received
	reordered int          // first copies that came after a higher number
	runs      []reorderRun // where they are (the first few runs)
	lowR      int          // lowest and highest of them
	highR     int
}

// reorderRun is a run of lines first..last that Kafka holds at offsets
// offFirst..offLast, after line after (a higher number).
type reorderRun struct {
	first, last, after int
	offFirst, offLast  int64
}

// orderReport describes the lines sent out of file order, "" if none.
func (c *seqConsumer) orderReport() string {
	if c.reordered == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d line(s) out of file order, between seq %d and %d:", c.reordered, c.lowR, c.highR)
	for _, r := range c.runs {
		fmt.Fprintf(&b, " seq %d..%d at offsets %d..%d, after seq %d;", r.first, r.last, r.offFirst, r.offLast, r.after)
	}
	return b.String()
}

func newSeqConsumer(t *testing.T, brokers []string, topic, path string) *seqConsumer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &seqConsumer{t: t, cl: cl, path: path, seen: map[int]int{}}
}

// pollUntil consumes until done() holds; false if timeout passes first.
func (c *seqConsumer) pollUntil(timeout time.Duration, done func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !done() {
		if ctx.Err() != nil {
			return false
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := c.cl.PollFetches(pctx)
		pcancel()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				c.t.Logf("consumer: fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(c.add)
	}
	return true
}

func (c *seqConsumer) add(r *kgo.Record) {
	c.records++
	c.next = max(c.next, r.Offset+1)
	var i int
	if _, err := fmt.Sscanf(string(r.Value), "seq %06d ", &i); err != nil {
		c.problem("offset %d: value %q is not a numbered line", r.Offset, r.Value)
		return
	}
	c.seen[i]++
	// Records come in offset order (one partition): a first copy of a
	// number below the highest one seen is a line sent out of file order.
	if c.seen[i] == 1 && i < c.maxSeq {
		if c.reordered == 0 {
			c.lowR, c.highR = i, i
		}
		c.reordered++
		c.lowR, c.highR = min(c.lowR, i), max(c.highR, i)
		if n := len(c.runs); n > 0 && c.runs[n-1].last == i-1 && c.runs[n-1].offLast == r.Offset-1 {
			c.runs[n-1].last, c.runs[n-1].offLast = i, r.Offset
		} else if n < 10 {
			c.runs = append(c.runs, reorderRun{first: i, last: i, after: c.maxSeq, offFirst: r.Offset, offLast: r.Offset})
		}
	}
	c.maxSeq = max(c.maxSeq, i)
	if want := strings.TrimSuffix(seqLine(i), "\n"); string(r.Value) != want {
		c.problem("seq %d: value %q, want %q", i, r.Value, want)
	}
	h := map[string]string{}
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	want := map[string]string{"host": host, "path": c.path, "offset": strconv.Itoa(i * seqLineLen)}
	for k, v := range want {
		if h[k] != v {
			c.problem("seq %d: header %s = %q, want %q (headers %v)", i, k, h[k], v, h)
		}
	}
}

func (c *seqConsumer) problem(format string, args ...any) {
	if len(c.problems) < 20 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	} else if len(c.problems) == 20 {
		c.problems = append(c.problems, "... (more problems not shown)")
	}
}

// unique is how many distinct sequence numbers arrived.
func (c *seqConsumer) unique() int { return len(c.seen) }

// tally compares what arrived with lines 0..n-1: the missing numbers (the
// first few), how many are missing, and how many records were duplicates.
func (c *seqConsumer) tally(n int) (missing []int, nMissing, dups int) {
	for i := 0; i < n; i++ {
		switch k := c.seen[i]; {
		case k == 0:
			nMissing++
			if len(missing) < 20 {
				missing = append(missing, i)
			}
		case k > 1:
			dups += k - 1
		}
	}
	for i, k := range c.seen {
		if i >= n {
			c.problem("seq %d arrived %d time(s) but only %d lines were written", i, k, n)
		}
	}
	return missing, nMissing, dups
}

// logSummary logs how many WARN and ERROR lines the agent wrote, by
// message, so that a run's retries and errors show in the test output.
func (a *agentProc) logSummary() {
	a.t.Helper()
	data, _ := os.ReadFile(a.logPath)
	counts := map[string]int{}
	var order []string
	for _, l := range strings.Split(string(data), "\n") {
		lvl := ""
		switch {
		case strings.Contains(l, " level=WARN "):
			lvl = "WARN"
		case strings.Contains(l, " level=ERROR "):
			lvl = "ERROR"
		default:
			continue
		}
		msg := l
		if i := strings.Index(l, " msg="); i >= 0 {
			msg = l[i+5:]
			if strings.HasPrefix(msg, `"`) {
				if j := strings.Index(msg[1:], `"`); j >= 0 {
					msg = msg[:j+2]
				}
			} else if j := strings.IndexByte(msg, ' '); j >= 0 {
				msg = msg[:j]
			}
		}
		key := lvl + " " + msg
		if counts[key] == 0 {
			order = append(order, key)
		}
		counts[key]++
	}
	if len(order) == 0 {
		a.t.Logf("agent log: no WARN or ERROR lines")
		return
	}
	var b strings.Builder
	for _, k := range order {
		fmt.Fprintf(&b, "\n  %5d × %s", counts[k], k)
	}
	a.t.Logf("agent log, WARN and ERROR lines by message:%s", b.String())
}

// verify reads the topic to its end, so that every duplicate is counted,
// reports what arrived, fails on consumer problems and on lines out of
// file order (franz-go only: sarama can re-send failed lines after newer
// ones, README "Choosing the Kafka client"), and returns the tally.
func (c *seqConsumer) verify(t *testing.T, k *kafkaCluster, topic, client string, total int) (missing []int, nMissing, dups int) {
	t.Helper()
	end := k.endOffset(topic)
	if !c.pollUntil(time.Minute, func() bool { return c.next >= end }) {
		t.Errorf("consumer reached offset %d of %d", c.next, end)
	}
	missing, nMissing, dups = c.tally(total)
	t.Logf("client %s: %d records for %d lines: %d missing, %d duplicates, %d out of file order",
		client, c.records, total, nMissing, dups, c.reordered)
	if r := c.orderReport(); r != "" {
		if client == "franz-go" {
			t.Errorf("ORDER: %s", r)
		} else {
			t.Logf("ORDER (sarama, documented): %s", r)
		}
	}
	for _, p := range c.problems {
		t.Errorf("%s", p)
	}
	return missing, nMissing, dups
}
