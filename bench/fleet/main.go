// Command fleet simulates a fleet of agents on one real etcd and reports
// what the fleet costs etcd and how fast a config change reaches it:
//
//   - -agents agents (default 10,000), spread over -clients real etcd
//     clients (default 100; each agent of the real fleet has its own
//     connection, which would take 10,000 sockets and GiBs here), each
//     running the agent's own code: an etcd.Source watching its
//     collect_config and an etcd.Publisher keeping its leased status key
//     with the status of -files files (default 100), the agent's bounded
//     status document (fleet.Status.Bound);
//   - every second, -flips agents see one file change state (running ↔
//     error): their summary changes and they publish;
//   - every -change-every, one bulk change puts a new collect_config to
//     every agent (transactions of 128 puts, as the console's bulk apply):
//     the time until each agent applied it is the config path's latency;
//   - over the steady window: etcd's writes/s (revisions), bytes/s written
//     (the values of every event a prefix watch sees, as a console would),
//     the database size before and after compaction + defragmentation.
//
// etcd is Debian's etcd-server, started here on 127.0.0.1 (scripts/etcd.sh
// install), so its CPU and memory are its own.
//
//	go run ./bench/fleet [-agents 10000] [-files 100] [-duration 10m] [-quick]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	agentpkg "github.com/logagent/logagent/agent"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/taillog"
)

type options struct {
	agents, clients, files, flips int
	duration, changeEvery         time.Duration
	out                           string
}

func main() {
	var o options
	quick := flag.Bool("quick", false, "smoke run: 1,000 agents, 1 minute")
	flag.IntVar(&o.agents, "agents", 10000, "simulated agents")
	flag.IntVar(&o.clients, "clients", 100, "etcd clients the agents share")
	flag.IntVar(&o.files, "files", 100, "files in each agent's status")
	flag.IntVar(&o.flips, "flips", 20, "agents whose file changes state each second")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "steady window")
	flag.DurationVar(&o.changeEvery, "change-every", 30*time.Second, "a bulk config change to every agent this often")
	flag.StringVar(&o.out, "out", "bench/results-fleet.md", "also write the table here (empty = don't)")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["agents"] {
			o.agents = 1000
		}
		if !set["duration"] {
			o.duration = time.Minute
		}
		if !set["change-every"] {
			o.changeEvery = 15 * time.Second
		}
	}
	ctx, stop := context.WithTimeout(context.Background(), o.duration+10*time.Minute)
	defer stop()
	table, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
	fmt.Print(table)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(table), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
		}
	}
}

// server is a real etcd process.
type server struct {
	cmd      *exec.Cmd
	endpoint string
}

func startEtcd(dir string) (*server, error) {
	if _, err := exec.LookPath("etcd"); err != nil {
		return nil, fmt.Errorf("etcd not installed (scripts/etcd.sh install): %w", err)
	}
	cport, pport := freePort(), freePort()
	ep := fmt.Sprintf("http://127.0.0.1:%d", cport)
	peer := fmt.Sprintf("http://127.0.0.1:%d", pport)
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("etcd", "--name", "fleet", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", ep, "--advertise-client-urls", ep,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "fleet="+peer, "--quota-backend-bytes", fmt.Sprint(8<<30))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &server{cmd: cmd, endpoint: ep}, nil
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newClient(ep string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second,
		Logger: zap.NewNop(), MaxCallSendMsgSize: 8 << 20})
}

// agent is one simulated agent: the real Source and Publisher, fed a
// status of files files.
type agent struct {
	host      string
	owner     fleet.Owner
	files     []taillog.Status
	mu        sync.Mutex
	applied   atomic.Int64 // the revision of the config last applied
	appliedAt sync.Map     // revision → time applied
}

func (a *agent) summary() any {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := make([]taillog.FileState, len(a.files))
	for i, f := range a.files {
		st[i] = f.FileState()
	}
	return st
}

func (a *agent) status(sum any) (any, any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	files := slices.Clone(a.files)
	for i := range files {
		files[i].LinesRead += 1000
		files[i].LinesAcked = files[i].LinesRead
	}
	a.files = files
	// The agent's own status document, bounded as it publishes it.
	st := &fleet.Status{Host: a.host, Version: "bench", Health: "ok", Owner: a.owner}
	st.SetFiles(files)
	st.Bound()
	return st, sum
}

func (a *agent) flip() {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := rand.IntN(len(a.files))
	f := &a.files[i]
	if f.State == taillog.StateRunning {
		f.State, f.LastError = taillog.StateError, "open "+f.Path+": permission denied"
	} else {
		f.State, f.LastError = taillog.StateRunning, ""
	}
}

func run(ctx context.Context, o options) (string, error) {
	dir, err := os.MkdirTemp("", "logagent-fleet-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	srv, err := startEtcd(dir)
	if err != nil {
		return "", err
	}
	defer srv.stop()
	admin, err := newClient(srv.endpoint)
	if err != nil {
		return "", err
	}
	defer admin.Close()
	if err := awaitHealthy(ctx, admin); err != nil {
		return "", err
	}
	log := slog.New(slog.DiscardHandler)
	clients := make([]*etcd.Client, o.clients)
	for i := range clients {
		c, err := newClient(srv.endpoint)
		if err != nil {
			return "", err
		}
		defer c.Close()
		clients[i] = etcd.Ready(c)
	}

	// Every agent's first config, in bulk.
	hosts := make([]string, o.agents)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("web-%05d", i)
	}
	if _, err := bulkPut(ctx, admin, hosts, 0); err != nil {
		return "", err
	}

	// Each agent of a real fleet caches its applied config on its own
	// disk; 10,000 of them fsyncing on this one would measure the disk,
	// and slow etcd's own WAL: the simulated agents cache on tmpfs.
	agentsDir, err := os.MkdirTemp(tmpfsDir(), "logagent-fleet-agents-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(agentsDir)
	agents := make([]*agent, o.agents)
	runCtx, stopAgents := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var hostTaken atomic.Int64 // publishers that stopped: their key held by another
	start := time.Now()
	for i := range agents {
		a := &agent{host: hosts[i], files: make([]taillog.Status, o.files)}
		for j := range a.files {
			a.files[j] = taillog.Status{Path: fmt.Sprintf("/var/log/app/%s-%03d.log", a.host, j), Topic: "app_log",
				State: taillog.StateRunning, Committed: 1 << 30, Size: 1 << 30}
		}
		agents[i] = a
		c := clients[i%len(clients)]
		data := filepath.Join(agentsDir, a.host)
		os.MkdirAll(data, 0o755)
		src := etcd.NewSource(c, a.host, data, 5*time.Second, etcd.Hooks{Applied: func(rev int64) {
			a.applied.Store(rev)
			a.appliedAt.Store(rev, time.Now())
		}}, log)
		// The agent's own intervals.
		ttl, interval, refresh := agentpkg.StatusTimes()
		pub := etcd.NewPublisher(c, a.host, ttl, interval, refresh, a.summary, a.status, log)
		// As the agent does: its owner (also in the status it writes)
		// lets a publisher whose write timed out (applied by etcd all the
		// same, under a lease it then lost) take its own key back, and
		// the claim keeps last_seen too.
		a.owner = fleet.Owner{Instance: a.host + "-bench", Machine: a.host, PID: i, StartTime: start}
		claimed := pub.Claim(a.owner, "bench", ttl+interval)
		wg.Add(3)
		go func() {
			defer wg.Done()
			for {
				select {
				case err := <-claimed:
					var taken *etcd.HostTakenError
					if errors.As(err, &taken) {
						hostTaken.Add(1)
					}
				case <-runCtx.Done():
					return
				}
			}
		}()
		go func() { defer wg.Done(); src.Run(runCtx, func([]etcd.Entry) {}) }()
		go func() { defer wg.Done(); pub.Run(runCtx) }()
	}
	defer func() { stopAgents(); wg.Wait() }()
	if err := awaitStatuses(ctx, admin, o.agents, 5*time.Minute); err != nil {
		return "", err
	}
	ready := time.Since(start)

	// Steady window.
	counter := newWriteCounter(ctx, admin)
	rev0, size0, err := dbStatus(ctx, admin, srv.endpoint)
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	counter.reset()
	var lat, bulk []time.Duration
	flipT := time.NewTicker(time.Second)
	defer flipT.Stop()
	changeT := time.NewTicker(o.changeEvery)
	defer changeT.Stop()
	end := time.After(o.duration)
	gen := 0
steady:
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-end:
			break steady
		case <-flipT.C:
			for range o.flips {
				agents[rand.IntN(len(agents))].flip()
			}
		case <-changeT.C:
			gen++
			began := time.Now()
			revs, err := bulkPut(ctx, admin, hosts, gen)
			if err != nil {
				return "", err
			}
			bulk = append(bulk, time.Since(began))
			lat = append(lat, awaitApplied(ctx, agents, revs, 30*time.Second)...)
		}
	}
	elapsed := time.Since(t0)
	writes, bytes := counter.writes.Load(), counter.bytes.Load()
	sWrites, sBytes := counter.statusWrites.Load(), counter.statusBytes.Load()
	rev1, size1, err := dbStatus(ctx, admin, srv.endpoint)
	if err != nil {
		return "", err
	}
	if _, err := admin.Compact(ctx, rev1, clientv3.WithCompactPhysical()); err != nil {
		return "", fmt.Errorf("compact: %w", err)
	}
	if _, err := admin.Defragment(ctx, srv.endpoint); err != nil {
		return "", fmt.Errorf("defragment: %w", err)
	}
	_, size2, err := dbStatus(ctx, admin, srv.endpoint)
	if err != nil {
		return "", err
	}
	statusBytes := sampleStatusSize(ctx, admin, hosts[0])
	etcdRSS := rssMB(srv.cmd.Process.Pid)

	slices.Sort(lat)
	var b strings.Builder
	fmt.Fprintf(&b, "## Fleet simulation (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "%d agents (the agent's own etcd.Source and etcd.Publisher) over %d clients on one etcd (Debian's etcd-server, 127.0.0.1); "+
		"%d files in each status; %d agents flip a file's state each second; a config change to every agent every %s; steady window %s.\n\n",
		o.agents, o.clients, o.files, o.flips, o.changeEvery, elapsed.Round(time.Second))
	fmt.Fprintf(&b, "| measure | value |\n|---|---:|\n")
	fmt.Fprintf(&b, "| every status key written, from start | %s |\n", ready.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "| one agent's status value | %d bytes |\n", statusBytes)
	fmt.Fprintf(&b, "| etcd revisions/s, steady (status and config writes) | %.0f |\n", float64(rev1-rev0)/elapsed.Seconds())
	fmt.Fprintf(&b, "| keys written/s seen by a prefix watch: all / status | %.0f / %.0f |\n", float64(writes)/elapsed.Seconds(), float64(sWrites)/elapsed.Seconds())
	fmt.Fprintf(&b, "| bytes/s written (keys + values): all / status | %.2f / %.2f MB/s |\n", float64(bytes)/elapsed.Seconds()/1e6, float64(sBytes)/elapsed.Seconds()/1e6)
	fmt.Fprintf(&b, "| status writes per agent per 30 s | %.2f |\n", float64(sWrites)/elapsed.Seconds()*30/float64(o.agents))
	fmt.Fprintf(&b, "| DB size before the window / after / after compaction + defrag | %.0f / %.0f / %.0f MB |\n", float64(size0)/1e6, float64(size1)/1e6, float64(size2)/1e6)
	fmt.Fprintf(&b, "| etcd RSS at the end | %.0f MB |\n", etcdRSS)
	fmt.Fprintf(&b, "| publishers stopped because another held their key | %d |\n", hostTaken.Load())
	slices.Sort(bulk)
	fmt.Fprintf(&b, "| one bulk change to every agent written (%d keys, transactions of 128): median / max | %s / %s |\n",
		o.agents, pct(bulk, 50), pct(bulk, 100))
	fmt.Fprintf(&b, "| config change applied, from its key's write to the agent's apply: changes, p50 / p99 / max | %d, %s / %s / %s |\n",
		len(lat)/max(1, o.agents), pct(lat, 50), pct(lat, 99), pct(lat, 100))
	return b.String(), nil
}

// tmpfsDir is /dev/shm where there is one, else the default temp dir.
func tmpfsDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return ""
}

func pct(d []time.Duration, p int) string {
	if len(d) == 0 {
		return "-"
	}
	i := min(len(d)-1, len(d)*p/100)
	return d[i].Round(time.Millisecond).String()
}

func awaitHealthy(ctx context.Context, c *clientv3.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.Get(gctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd not healthy after 30 s: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// put is when a host's key was written, and at which revision.
type put struct {
	rev int64
	at  time.Time
}

// bulkPut writes a collect_config of generation gen to every host, in
// transactions of 128 puts, and returns each key's revision and the time
// its transaction was committed.
func bulkPut(ctx context.Context, c *clientv3.Client, hosts []string, gen int) (map[string]put, error) {
	value, _ := json.Marshal([]etcd.Entry{{Path: "/var/log/app/app.log", Topic: "app_log"},
		{Path: fmt.Sprintf("/var/log/app/gen-%d.log", gen), Topic: "app_log"}})
	revs := make(map[string]put, len(hosts))
	for i := 0; i < len(hosts); i += 128 {
		chunk := hosts[i:min(len(hosts), i+128)]
		ops := make([]clientv3.Op, len(chunk))
		for j, h := range chunk {
			ops[j] = clientv3.OpPut(fleet.ConfigKey(h), string(value))
		}
		resp, err := c.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("bulk put: %w", err)
		}
		at := time.Now()
		for _, h := range chunk {
			revs[h] = put{resp.Header.Revision, at}
		}
	}
	return revs, nil
}

// awaitApplied returns, for each agent, how long after its key was written
// it applied that revision.
func awaitApplied(ctx context.Context, agents []*agent, revs map[string]put, bound time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(agents))
	deadline := time.Now().Add(bound)
	for _, a := range agents {
		want := revs[a.host]
		for a.applied.Load() < want.rev && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		if v, ok := a.appliedAt.Load(want.rev); ok {
			out = append(out, max(0, v.(time.Time).Sub(want.at)))
			a.appliedAt.Delete(want.rev)
		} else {
			out = append(out, bound) // not applied within the bound
		}
	}
	return out
}

func awaitStatuses(ctx context.Context, c *clientv3.Client, n int, bound time.Duration) error {
	start := time.Now()
	deadline := start.Add(bound)
	said := start
	for {
		got := -1
		resp, err := c.Get(ctx, "/logagent/", clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithSerializable())
		if err == nil {
			got = 0
			for _, kv := range resp.Kvs {
				if strings.HasSuffix(string(kv.Key), "/status") {
					got++
				}
			}
			if got >= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("status keys of %d agents not all written within %s: %d are", n, bound, got)
		}
		if time.Since(said) >= 30*time.Second {
			fmt.Fprintf(os.Stderr, "fleet: %d of %d status keys written after %s\n", got, n, time.Since(start).Round(time.Second))
			said = time.Now()
		}
		time.Sleep(2 * time.Second)
	}
}

func dbStatus(ctx context.Context, c *clientv3.Client, ep string) (rev, size int64, err error) {
	st, err := c.Status(ctx, ep)
	if err != nil {
		return 0, 0, fmt.Errorf("etcd status: %w", err)
	}
	return st.Header.Revision, st.DbSize, nil
}

func sampleStatusSize(ctx context.Context, c *clientv3.Client, host string) int {
	resp, err := c.Get(ctx, fleet.StatusKey(host))
	if err != nil || len(resp.Kvs) == 0 {
		return 0
	}
	return len(resp.Kvs[0].Value)
}

// writeCounter counts the puts under /logagent/ and their bytes, as a
// console's prefix watch would see them.
type writeCounter struct {
	writes, bytes             atomic.Int64
	statusWrites, statusBytes atomic.Int64
}

func newWriteCounter(ctx context.Context, c *clientv3.Client) *writeCounter {
	w := &writeCounter{}
	ch := c.Watch(clientv3.WithRequireLeader(ctx), "/logagent/", clientv3.WithPrefix())
	go func() {
		for resp := range ch {
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				n := int64(len(ev.Kv.Key) + len(ev.Kv.Value))
				w.writes.Add(1)
				w.bytes.Add(n)
				if strings.HasSuffix(string(ev.Kv.Key), "/status") {
					w.statusWrites.Add(1)
					w.statusBytes.Add(n)
				}
			}
		}
	}()
	return w
}

func (w *writeCounter) reset() {
	w.writes.Store(0)
	w.bytes.Store(0)
	w.statusWrites.Store(0)
	w.statusBytes.Store(0)
}

func rssMB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
