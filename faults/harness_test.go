package faults

// The harness: the servers (embedded etcd, kfake with a data dir), the
// agent binary as a child process, a writer of numbered lines, a checker
// that consumes the topics, and the RESULT line.

import (
	"bufio"
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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/logagent/logagent/internal/testenv"
)

const (
	host      = "faults"
	configKey = "/logagent/" + host + "/collect_config"
	lineLen   = 90 // bytes of every numbered line, its newline included
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "logagent-faults")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bin, err = testenv.BuildAgent("..", dir, ""); err != nil { // the repository root
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ---------------------------------------------------------------- clients

// The cases where the Kafka client matters (acks, retries, record
// encoding, outages) run on both; those about config, etcd and data_dir run
// on the default client only, to keep the suite within about 4 minutes on
// 2 cores (LOGAGENT_FAULT_ALL_CLIENTS=1 runs them on both too).
var (
	bothClients = []string{"sarama", "franz-go"}
	oneClient   = []string{"sarama"}
)

// forClients runs f once per Kafka client, as subtests named after it.
// LOGAGENT_FAULT_CLIENTS (comma-separated) restricts the set.
func forClients(t *testing.T, clients []string, f func(t *testing.T, client string)) {
	if len(clients) == 1 && os.Getenv("LOGAGENT_FAULT_ALL_CLIENTS") == "1" {
		clients = bothClients
	}
	if only := os.Getenv("LOGAGENT_FAULT_CLIENTS"); only != "" {
		var keep []string
		for _, c := range clients {
			if strings.Contains(","+only+",", ","+c+",") {
				keep = append(keep, c)
			}
		}
		clients = keep
	}
	for _, c := range clients {
		t.Run(c, func(t *testing.T) { f(t, c) })
	}
}

// ---------------------------------------------------------------- ports

// freePort returns a free TCP port on 127.0.0.1 below the ephemeral range
// (see testenv.LowPorts): servers here are stopped and started again.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := testenv.LowPorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ---------------------------------------------------------------- env

// env is one case's world: etcd, Kafka, the agent's config and its runs.
type env struct {
	t      *testing.T
	name   string // case name in the RESULT line
	client string
	dir    string

	dataDir string
	cfgPath string

	etcdPort int
	etcd     *testenv.Etcd

	kafkaPort int
	kafkaDir  string
	kafka     *testenv.Kafka

	// wrap runs the agent under a command (setpriv, as another user).
	wrap []string

	mu         sync.Mutex
	agents     []*agentProc
	peakKB     atomic.Int64 // highest VmHWM/VmRSS of any agent run
	peakAnonKB atomic.Int64 // highest RssAnon (without the binary's file-backed pages)
}

type envOpts struct {
	noKafka    bool   // Kafka is not started (case 6c)
	dataDir    string // instead of dir/data
	extraAgent string // more [agent] keys
}

func newEnv(t *testing.T, name, client string, o envOpts) *env {
	t.Helper()
	e := &env{t: t, name: name, client: client, dir: t.TempDir()}
	e.dataDir = filepath.Join(e.dir, "data")
	if o.dataDir != "" {
		e.dataDir = o.dataDir
	}
	e.etcdPort = freePort(t)
	e.startEtcd()
	t.Cleanup(e.stopEtcd)

	e.kafkaPort = freePort(t)
	e.kafkaDir = filepath.Join(e.dir, "kafka")
	if !o.noKafka {
		e.startKafka()
	}
	t.Cleanup(e.stopKafka)

	e.cfgPath = filepath.Join(e.dir, "config.ini")
	ini := testenv.AgentINI{Host: host, DataDir: e.dataDir, Brokers: e.brokers(), Client: client, Etcd: e.etcdAddr()}
	if err := ini.Write(e.cfgPath, `[agent]
shutdown_timeout = 10s
rotate_wait = 1s
poll_interval = 100ms
[kafka]
linger = 5ms
retry_backoff = 100ms
[etcd]
dial_timeout = 1s
`, "[agent]\n"+o.extraAgent); err != nil {
		t.Fatal(err)
	}
	// Registered last, so it runs first: no agent outlives its servers,
	// and a failed case shows what the agent said.
	t.Cleanup(e.cleanupAgents)
	return e
}

func (e *env) etcdAddr() string { return "127.0.0.1:" + strconv.Itoa(e.etcdPort) }

func (e *env) startEtcd() {
	e.t.Helper()
	et, err := testenv.StartEtcd(e.dir, e.etcdPort)
	if err != nil {
		e.t.Fatal(err)
	}
	e.etcd = et
}

func (e *env) stopEtcd() {
	if e.etcd != nil {
		e.etcd.Close()
		e.etcd = nil
	}
}

func (e *env) startKafka() {
	e.t.Helper()
	var err error
	// The port was free a moment ago; retry briefly if a socket still holds it.
	for i := 0; i < 50; i++ {
		if e.kafka, err = testenv.StartKafkaDir(e.kafkaPort, e.kafkaDir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("start Kafka on port %d: %v", e.kafkaPort, err)
}

func (e *env) stopKafka() {
	if e.kafka != nil {
		e.kafka.Close()
		e.kafka = nil
	}
}

func (e *env) brokers() []string { return []string{"127.0.0.1:" + strconv.Itoa(e.kafkaPort)} }

// entry is one element of the collect config.
type entry struct {
	Path     string `json:"path"`
	Topic    string `json:"topic"`
	ReadFrom string `json:"read_from,omitempty"`
}

func (e *env) putConfig(entries ...entry) {
	e.t.Helper()
	data, err := json.Marshal(entries)
	if err != nil {
		e.t.Fatal(err)
	}
	e.putRaw(string(data))
}

// putRaw puts value at the config key, retrying for a while. Each put has
// its own client: one that lived through an etcd restart would first wait
// out its reconnect backoff.
func (e *env) putRaw(value string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := put(e.etcdAddr(), configKey, value)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("put %s: %v", configKey, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// report logs the case's RESULT line (and appends it to
// $LOGAGENT_FAULT_RESULTS when set).
func (e *env) report(lost, dup, lines int, more string) {
	line := fmt.Sprintf("RESULT case=%s client=%s lost=%d dup=%d peak_rss_mb=%.1f peak_anon_mb=%.1f lines=%d",
		e.name, e.client, lost, dup, e.peakMB(), float64(e.peakAnonKB.Load())/1024, lines)
	if more != "" {
		line += " " + more
	}
	e.t.Log(line)
	if p := os.Getenv("LOGAGENT_FAULT_RESULTS"); p != "" {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintln(f, line)
			f.Close()
		}
	}
}

func put(endpoint, key, value string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 3 * time.Second,
		Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = cli.Put(ctx, key, value)
	return err
}

func (e *env) peakMB() float64 { return float64(e.peakKB.Load()) / 1024 }

// ---------------------------------------------------------------- agent

// agentProc is one run of the agent binary.
type agentProc struct {
	*testenv.Proc
	e   *env
	n   int
	cmd *exec.Cmd
}

func (e *env) startAgent() *agentProc {
	e.t.Helper()
	e.mu.Lock()
	n := len(e.agents) + 1
	e.mu.Unlock()
	p, err := testenv.StartAgent(bin, e.cfgPath, filepath.Join(e.dir, fmt.Sprintf("agent-%d.log", n)), testenv.ProcOptions{Wrap: e.wrap})
	if err != nil {
		e.t.Fatal(err)
	}
	a := &agentProc{Proc: p, e: e, n: n, cmd: p.Cmd}
	e.mu.Lock()
	e.agents = append(e.agents, a)
	e.mu.Unlock()
	go a.sampleRSS()
	return a
}

func (a *agentProc) pid() int { return a.PID() }

// sampleRSS records the peak resident memory of the run: VmHWM (the
// kernel's own high-water mark) and VmRSS, and apart its anonymous part
// (RssAnon: without the binary's pages, which the page cache shares), every
// 50 ms until it exits.
func (a *agentProc) sampleRSS() {
	path := fmt.Sprintf("/proc/%d/status", a.pid())
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if data, err := os.ReadFile(path); err == nil {
			for _, l := range strings.Split(string(data), "\n") {
				peak := &a.e.peakKB
				switch {
				case strings.HasPrefix(l, "VmHWM:"), strings.HasPrefix(l, "VmRSS:"):
				case strings.HasPrefix(l, "RssAnon:"):
					peak = &a.e.peakAnonKB
				default:
					continue
				}
				if f := strings.Fields(l); len(f) >= 2 {
					if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
						raise(peak, kb)
					}
				}
			}
		}
		select {
		case <-a.Done():
			return
		case <-tick.C:
		}
	}
}

// raise sets peak to v if v is higher.
func raise(peak *atomic.Int64, v int64) {
	for {
		old := peak.Load()
		if v <= old || peak.CompareAndSwap(old, v) {
			return
		}
	}
}

func (a *agentProc) exited() bool { return a.Exited() }

// stop sends SIGTERM and waits (bounded) for the exit; it fails the test
// unless the agent exits 0 in time. It returns how long the stop took.
func (a *agentProc) stop() time.Duration {
	a.e.t.Helper()
	took, err := a.Stop(25 * time.Second) // shutdown_timeout 10s, and margin
	if errors.Is(err, testenv.ErrNotStopped) {
		a.e.t.Fatalf("agent run %d did not exit within 25s of SIGTERM", a.n)
	}
	if err != nil {
		a.e.t.Fatalf("agent run %d exited %d after SIGTERM (%v), want 0", a.n, a.ExitCode(), err)
	}
	return took
}

// kill sends SIGKILL and waits for the exit.
func (a *agentProc) kill() { a.Kill() }

func (a *agentProc) logText() string { return a.Log() }

// waitLog waits until the run's log contains s.
func (a *agentProc) waitLog(s string, within time.Duration) {
	a.e.t.Helper()
	a.waitLogN(s, 1, within)
}

// waitLogN waits until the run's log contains s at least n times.
func (a *agentProc) waitLogN(s string, n int, within time.Duration) {
	a.e.t.Helper()
	err := a.WaitLog(within, func(log string) bool { return strings.Count(log, s) >= n })
	if errors.Is(err, testenv.ErrExited) {
		a.e.t.Fatalf("agent run %d exited (%v) before logging %q", a.n, a.Err(), s)
	}
	if err != nil {
		a.e.t.Fatalf("agent run %d did not log %q (%d times) within %s", a.n, s, n, within)
	}
}

func (e *env) cleanupAgents() {
	e.mu.Lock()
	agents := append([]*agentProc(nil), e.agents...)
	e.mu.Unlock()
	for _, a := range agents {
		if !a.exited() {
			a.cmd.Process.Signal(syscall.SIGCONT) // in case a case left it stopped
			a.kill()
		}
	}
	if e.t.Failed() || os.Getenv("LOGAGENT_FAULT_DUMP") == "1" {
		for _, a := range agents {
			e.t.Logf("----- agent run %d (pid %d, %v) stderr -----\n%s", a.n, a.pid(), a.Err(), testenv.LastLines(a.logText(), 300))
		}
	}
}

// ---------------------------------------------------------------- writer

// lineFor is numbered line seq, newline included: "seq=%09d " and a
// padding that depends on seq, lineLen bytes in all.
func lineFor(seq int) []byte {
	b := make([]byte, 0, lineLen)
	return appendLine(b, seq)
}

func appendLine(b []byte, seq int) []byte {
	b = fmt.Appendf(b, "seq=%09d ", seq)
	c := byte('a' + seq%26)
	for len(b)%lineLen != lineLen-1 {
		b = append(b, c)
		if c++; c > 'z' {
			c = 'a'
		}
	}
	return append(b, '\n')
}

// parseSeq returns the number of a record value that is exactly a numbered
// line (without its newline).
func parseSeq(v []byte) (int, bool) {
	if len(v) != lineLen-1 || !bytes.HasPrefix(v, []byte("seq=")) {
		return 0, false
	}
	seq, err := strconv.Atoi(string(v[4:13]))
	if err != nil || !bytes.Equal(lineFor(seq)[:lineLen-1], v) {
		return 0, false
	}
	return seq, true
}

// writer appends numbered lines to a log file, like an application with
// the file open in append mode, and can rotate it (rename + create) or
// truncate it. It records the offset of each line in its file.
type writer struct {
	t    *testing.T
	path string

	quit chan struct{}  // closed when the test ends: run stops
	runs sync.WaitGroup // run goroutines

	mu        sync.Mutex
	f         *os.File
	pos       int64   // offset of the next line in the current file
	offs      []int64 // offset of line seq in the file it was written to
	rotations int
	buf       []byte
}

func newWriter(t *testing.T, path string) *writer {
	t.Helper()
	w := &writer{t: t, path: path, quit: make(chan struct{})}
	if err := w.open(); err != nil {
		t.Fatal(err)
	}
	// A case that fails half way must not leave a writer behind.
	t.Cleanup(func() {
		close(w.quit)
		w.runs.Wait()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.f != nil {
			w.f.Close()
		}
	})
	return w
}

func (w *writer) open() error {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.pos = f, fi.Size()
	return nil
}

// written is the number of lines written so far (the next seq).
func (w *writer) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.offs)
}

// write appends n lines in one write call.
func (w *writer) write(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeLocked(n)
}

func (w *writer) writeLocked(n int) {
	b := w.buf[:0]
	for i := 0; i < n; i++ {
		seq := len(w.offs)
		w.offs = append(w.offs, w.pos+int64(len(b)))
		b = appendLine(b, seq)
	}
	w.buf = b
	if _, err := w.f.Write(b); err != nil {
		w.t.Errorf("write %s: %v", w.path, err)
	}
	w.pos += int64(len(b))
}

// rotate renames the file to path.N (N = 1, 2, ...) and creates a new one,
// as logrotate's create mode or lumberjack do.
func (w *writer) rotate() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rotations++
	if err := os.Rename(w.path, fmt.Sprintf("%s.%d", w.path, w.rotations)); err != nil {
		w.t.Errorf("rotate: %v", err)
	}
	w.f.Close()
	if err := w.open(); err != nil {
		w.t.Errorf("rotate: %v", err)
	}
}

// truncate truncates the file to 0; the next lines are written from 0.
func (w *writer) truncate() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.f.Truncate(0); err != nil {
		w.t.Errorf("truncate: %v", err)
	}
	w.pos = 0
}

// closeFile closes the writer's descriptor (the file was deleted).
func (w *writer) closeFile() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.f.Close()
	w.f = nil
}

// createVia creates the path again with n lines, the way tools replace a
// file atomically: written to tmp (an empty file in the same directory),
// renamed onto path. The writer goes on appending to it.
func (w *writer) createVia(tmp string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f, w.pos = f, 0
	w.writeLocked(n)
	if err := os.Rename(tmp, w.path); err != nil {
		w.t.Fatal(err)
	}
}

// run writes total lines at rate lines per second (0: as fast as it can,
// in writes of 250 lines), calling every(…) before line k*each (k ≥ 1) when
// each > 0. It returns a channel closed when done.
func (w *writer) run(rate float64, total, each int, every func()) <-chan struct{} {
	done := make(chan struct{})
	w.runs.Add(1)
	go func() {
		defer w.runs.Done()
		defer close(done)
		start := time.Now()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			next := w.written()
			if next >= total {
				return
			}
			target := total
			if rate > 0 {
				target = min(total, int(rate*time.Since(start).Seconds()))
			}
			for next < target {
				n := min(target-next, 250)
				if each > 0 {
					if next > 0 && next%each == 0 {
						every()
					}
					n = min(n, each-next%each)
				}
				w.write(n)
				next += n
			}
			select {
			case <-w.quit:
				return
			default:
			}
			if rate > 0 {
				<-tick.C
			}
		}
	}()
	return done
}

// ---------------------------------------------------------------- checker

// checker consumes topics and counts the numbered lines it sees.
type checker struct {
	t    *testing.T
	c    *testenv.Consumer
	path string // expected path header ("" = not checked)

	counts  []int32 // times each seq was seen
	hdrOff  []int64 // offset header of its first copy
	records int
	bad     int // records that are not a numbered line, or with a wrong header
	samples []string
	others  []testenv.Record // records that are not numbered lines, if keep
	keep    bool
	stall   time.Duration // waitLines gives up after this long without progress
	// onRecord, if set, sees the record of every numbered line.
	onRecord func(seq int, r testenv.Record)
}

// newChecker consumes topics from their start; path is the path header
// every numbered line must carry.
func (e *env) newChecker(path string, topics ...string) *checker {
	e.t.Helper()
	c, err := testenv.NewConsumer(e.brokers(), topics...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return &checker{t: e.t, c: c, path: path}
}

func (c *checker) badf(format string, args ...any) {
	c.bad++
	if len(c.samples) < 5 {
		c.samples = append(c.samples, fmt.Sprintf(format, args...))
	}
}

// poll consumes what arrives within d.
func (c *checker) poll(d time.Duration) {
	recs, err := c.c.Poll(context.Background(), d)
	if err != nil {
		c.t.Logf("consumer: %v", err)
	}
	for _, r := range recs {
		c.records++
		seq, ok := parseSeq(r.Value)
		if !ok {
			if c.keep {
				c.others = append(c.others, r)
			} else {
				c.badf("not a numbered line: %q (headers %v)", clip(r.Value), r.Headers)
			}
			continue
		}
		if r.Headers["host"] != host || (c.path != "" && r.Headers["path"] != c.path) {
			c.badf("seq %d: headers %v", seq, r.Headers)
		}
		off, err := strconv.ParseInt(r.Headers["offset"], 10, 64)
		if err != nil {
			c.badf("seq %d: offset header %q", seq, r.Headers["offset"])
			off = -1
		}
		for len(c.counts) <= seq {
			c.counts = append(c.counts, 0)
			c.hdrOff = append(c.hdrOff, -1)
		}
		if c.counts[seq] == 0 {
			c.hdrOff[seq] = off
		}
		c.counts[seq]++
		if c.onRecord != nil {
			c.onRecord(seq, r)
		}
	}
}

func clip(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "..."
	}
	return string(b)
}

// distinct is how many of seqs 0..n-1 were seen.
func (c *checker) distinct(n int) int {
	d := 0
	for i := 0; i < n && i < len(c.counts); i++ {
		if c.counts[i] > 0 {
			d++
		}
	}
	return d
}

// waitLines polls until seqs 0..n-1 have all been seen (or at least want
// of them, when want < n) or within passes; then it polls settle longer
// for late duplicates. It reports whether the goal was reached.
//
// It gives up early when no new line arrived for c.stall (default 10 s):
// a case that lost lines does not wait out its whole bound.
func (c *checker) waitLines(n, want int, within, settle time.Duration) bool {
	deadline := time.Now().Add(within)
	stall := c.stall
	if stall == 0 {
		stall = 10 * time.Second
	}
	last, lastAt := -1, time.Now()
	for {
		c.poll(200 * time.Millisecond)
		d := c.distinct(n)
		if d >= want {
			break
		}
		if d != last {
			last, lastAt = d, time.Now()
		}
		if time.Now().After(deadline) || time.Since(lastAt) > stall {
			return false
		}
	}
	for end := time.Now().Add(settle); time.Now().Before(end); {
		c.poll(200 * time.Millisecond)
	}
	return true
}

// waitAll waits for every line 0..n-1, then 1 s more for late duplicates.
func (c *checker) waitAll(n int, within time.Duration) bool {
	return c.waitLines(n, n, within, time.Second)
}

// result counts lost (never seen) and duplicated (seen more than once)
// lines among 0..n-1, and checks the offset headers against w (if not nil).
func (c *checker) result(n int, w *writer) (lost, dup int) {
	var firstLost = -1
	for i := 0; i < n; i++ {
		k := int32(0)
		if i < len(c.counts) {
			k = c.counts[i]
		}
		if k == 0 {
			lost++
			if firstLost < 0 {
				firstLost = i
			}
		} else {
			dup += int(k - 1)
		}
	}
	if len(c.counts) > n {
		for i := n; i < len(c.counts); i++ {
			if c.counts[i] > 0 {
				c.badf("seq %d was never written (%d lines were)", i, n)
				break
			}
		}
	}
	if w != nil {
		w.mu.Lock()
		for i := 0; i < n && i < len(c.hdrOff) && i < len(w.offs); i++ {
			if c.counts[i] > 0 && c.hdrOff[i] != w.offs[i] {
				c.badf("seq %d: offset header %d, written at %d", i, c.hdrOff[i], w.offs[i])
			}
		}
		w.mu.Unlock()
	}
	if lost > 0 {
		c.t.Logf("lost lines: %d, the first seq %d; %s", lost, firstLost, c.lostRanges(n, 10))
	}
	if c.bad > 0 {
		c.t.Logf("bad records: %d, e.g. %q", c.bad, c.samples)
	}
	return lost, dup
}

// lostRanges describes up to max ranges of missing seqs.
func (c *checker) lostRanges(n, max int) string {
	var out []string
	for i := 0; i < n && len(out) < max; i++ {
		if i < len(c.counts) && c.counts[i] > 0 {
			continue
		}
		j := i
		for j+1 < n && (j+1 >= len(c.counts) || c.counts[j+1] == 0) {
			j++
		}
		out = append(out, fmt.Sprintf("[%d..%d]", i, j))
		i = j
	}
	return "missing " + strings.Join(out, " ")
}

// ---------------------------------------------------------------- misc

// readSeqs returns the numbered lines of a file, in order, and whether
// its last line was unfinished.
func readSeqs(t *testing.T, path string) (seqs []int, partial bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		l, err := r.ReadBytes('\n')
		if len(l) > 0 && l[len(l)-1] != '\n' {
			return seqs, true
		}
		if len(l) > 0 {
			if s, ok := parseSeq(l[:len(l)-1]); ok {
				seqs = append(seqs, s)
			} else {
				t.Fatalf("%s: not a numbered line: %q", path, clip(l))
			}
		}
		if err != nil {
			return seqs, false
		}
	}
}

// openLinks lists the agent's file descriptors that point at name (as
// /proc/<pid>/fd shows it, e.g. "/x/app.log (deleted)").
func openLinks(pid int, name string) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, de := range ents {
		l, err := os.Readlink(filepath.Join(dir, de.Name()))
		if err == nil && strings.HasPrefix(l, name) {
			out = append(out, de.Name()+" -> "+l)
		}
	}
	return out
}

// within polls cond every 50 ms until it holds or d passes.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
