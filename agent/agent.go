// Package agent wires logagent's parts together: the etcd config source
// feeds the tail manager, whose lines a pump hands to the Kafka producer,
// whose acks move the saved positions.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/kafka"
	"github.com/logagent/logagent/sysagent"
	"github.com/logagent/logagent/taillog"
	"github.com/logagent/logagent/utils"
)

// Header keys of every record (fleet.Header*). host + file + offset
// identify a line: the record key (with [kafka] key = id) is
// fleet.RecordID, built in place in sendBuf.ids.
var (
	hdrHost   = kafka.NewHeaderKey(fleet.HeaderHost)
	hdrPath   = kafka.NewHeaderKey(fleet.HeaderPath)
	hdrOffset = kafka.NewHeaderKey(fleet.HeaderOffset)
	hdrFile   = kafka.NewHeaderKey(fleet.HeaderFile)
)

// recordHeaders is how many headers each record carries.
const recordHeaders = 4

// Agent is one running logagent.
type Agent struct {
	cfg     *conf.Config
	log     *slog.Logger
	host    string
	version string
	started time.Time

	store *taillog.Positions
	lines chan *taillog.Batch
	mgr   *taillog.Manager
	prod  kafka.Producer
	etcd  *etcd.Client
	src   *etcd.Source
	pub   *etcd.Publisher

	sys    *sysagent.Agent                 // host metrics (sys.go)
	sysSrc *etcd.Follower[*etcd.SysConfig] // its etcd key

	metrics *metrics
	httpL   net.Listener

	lock    *os.File // data_dir's, held while the agent lives
	owner   fleet.Owner
	claimed <-chan error // the status key's claim (etcd.Publisher.Claim)
}

// Host returns the identity the agent uses in etcd keys.
func (a *Agent) Host() string { return a.host }

// New builds an agent from cfg. Nothing runs until Run.
func New(cfg *conf.Config, log *slog.Logger, version string) (*Agent, error) {
	host, err := resolveHost(cfg.Agent)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: log, host: host, version: version, started: time.Now()}
	if err := os.MkdirAll(cfg.Agent.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if a.lock, err = lockDataDir(cfg.Agent.DataDir); err != nil {
		return nil, err
	}
	if a.lock == nil {
		log.Warn("cannot create the data_dir lock (read-only or full); two agents sharing this data_dir would not be told", "data_dir", cfg.Agent.DataDir)
	}
	ok := false
	defer func() {
		if !ok {
			a.unlock()
		}
	}()
	instance, err := instanceID(cfg.Agent.DataDir)
	if err != nil {
		if instance == "" {
			return nil, err
		}
		log.Warn("cannot keep this agent's instance id; it holds for this run", "err", err)
	}
	machine, _ := os.Hostname()
	a.owner = fleet.Owner{Instance: instance, Machine: machine, PID: os.Getpid(), StartTime: a.started}
	store, err := taillog.LoadPositions(filepath.Join(cfg.Agent.DataDir, "positions.json"), log.With("component", "positions"))
	if err != nil {
		return nil, err
	}
	a.store = store
	// allow_paths was checked by conf: an error here is a bug, reported all the same.
	allow, err := taillog.NewAllowList(cfg.Agent.AllowPaths)
	if err != nil {
		return nil, err
	}
	a.metrics = newMetrics(a)
	store.OnFlushError = func(error) { a.metrics.posErrors.Inc() }
	// The channel holds batches (consecutive lines of a file); the bytes
	// they carry are bounded by the manager's read budget.
	a.lines = make(chan *taillog.Batch, 64)
	a.prod, err = kafka.New(cfg.Kafka, a.onAck, kafka.Hooks{
		Error:   func(error) { a.metrics.sendErrors.Inc() },
		Retry:   a.metrics.retries.Inc,
		Latency: func(d time.Duration) { a.metrics.ackLatency.Observe(d.Seconds()) },
		GiveUp:  func(*kafka.Message, error) { a.metrics.givenUp.Inc() },
		Topic:   a.onTopic,
	}, log.With("component", "kafka"))
	if err != nil {
		return nil, err
	}
	switch cli, err := newEtcdClient(cfg.Etcd); {
	case err == nil:
		a.etcd = etcd.Ready(cli)
	case cfg.Etcd.Username != "" && !errors.Is(rpctypes.Error(err), rpctypes.ErrAuthFailed):
		// With authentication the client is only made once etcd
		// answers: the agent starts on its cache meanwhile, as without.
		a.etcd = etcd.Dial(err, func(ctx context.Context) (*clientv3.Client, error) { return newEtcdClientCtx(ctx, cfg.Etcd) },
			log.With("component", "etcd"))
	default:
		a.prod.Close(context.Background())
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	a.src = etcd.NewSource(a.etcd, a.host, cfg.Agent.DataDir, cfg.Etcd.DialTimeout, etcd.Hooks{
		Applied:      func(int64) { a.metrics.applied.Inc() },
		Rejected:     func(error) { a.metrics.rejected.Inc() },
		WatchRestart: a.metrics.watchRestart.Inc,
	}, log.With("component", "etcd"))
	a.newSys(log)
	a.pub = etcd.NewPublisher(a.etcd, a.host, statusTTL, statusInterval, statusRefresh,
		func() any { return a.fullSummary() }, func(sum any) (any, any) { return a.fullSnapshot(sum.(statusSummary), true) }, log.With("component", "status"))
	a.claimed = a.pub.Claim(a.owner, version, statusTTL+statusInterval)
	a.mgr = taillog.NewManager(taillog.Options{
		MaxLineBytes:    cfg.Agent.MaxLineBytes,
		BufferBytes:     cfg.Agent.BufferBytes,
		RotateWait:      cfg.Agent.RotateWait,
		PollInterval:    cfg.Agent.PollInterval,
		Allow:           allow,
		MaxReadDelay:    cfg.Agent.MaxReadDelay,
		ShutdownTimeout: cfg.Agent.ShutdownTimeout,
		LineOverhead:    lineOverhead(a.prod, host),
		// A topic gets more than its refused share once Kafka took a
		// line of it (onTopic): one that does not exist must not fill the
		// budget before its first refusal is back.
		ConfirmTopics:    true,
		MaxFilesPerEntry: cfg.Agent.MaxFilesPerEntry,
		// A glob's match outside allow_paths is refused when it is
		// matched (logged once), as a listed path is when it is opened.
		Filter: allow.Check,
	}, store, a.lines, log.With("component", "taillog"))
	if a.httpL, err = a.listenHTTP(); err != nil {
		a.mgr.Stop()
		a.etcd.Close()
		a.prod.Close(context.Background())
		return nil, err
	}
	ok = true
	return a, nil
}

// positionsRecent is how often the positions reach the recent file (no
// fsync): after a kill -9 the lines acked in the last positionsRecent are
// sent again, not those of the last second (the fsynced file's pace).
const positionsRecent = 100 * time.Millisecond

// The status key lives under a lease of statusTTL. It is written within
// statusInterval of a change an operator looks for (statusSummary), and
// at most every statusRefresh for its counters, only if they moved: each
// write is a revision etcd keeps until it compacts, and the collect
// configs of the whole fleet share that etcd. The lease's keep-alives
// (one every statusTTL/3 per agent) are etcd's steadiest load from a fleet,
// and a leader stalled longer than statusTTL (a defragmentation, a
// starved CPU) expires every lease at once, and every agent claims its key
// again: 30 s keeps both small, at the price of a dead agent's status
// lasting up to 30 s after it died (a clean stop deletes it at once).
const (
	statusTTL      = 30 * time.Second
	statusInterval = 3 * time.Second
	statusRefresh  = time.Minute
)

// StatusTimes are the status key's lease TTL, the interval at which a
// change is looked for, and the counters' refresh: for the fleet
// simulation (bench/fleet), which runs the agent's publisher.
func StatusTimes() (ttl, interval, refresh time.Duration) {
	return statusTTL, statusInterval, statusRefresh
}

// Run ships lines until ctx is done, then stops cleanly: reading stops,
// lines already read are given ShutdownTimeout to be acknowledged, the
// positions are saved, and the connections are closed.
//
// It returns an *etcd.HostTakenError when another running agent uses the
// same host: at start (nothing is read then), or later if the other took
// the host while this one's lease had expired.
func (a *Agent) Run(ctx context.Context) error {
	defer a.unlock()
	ctx, end := context.WithCancelCause(ctx)
	defer end(nil)
	httpAddr := "off"
	if a.httpL != nil {
		httpAddr = "http://" + a.httpL.Addr().String() + "/ (metrics, healthz)"
	}
	a.log.Info("logagent started", "version", a.version, "host", a.host, "config_key", a.src.Key(),
		"brokers", a.cfg.Kafka.Brokers, "client", a.cfg.Kafka.Client, "http", httpAddr)

	flushCtx, stopFlush := context.WithCancel(context.Background())
	flushed := make(chan struct{})
	go func() { a.store.Run(flushCtx, positionsRecent, time.Second); close(flushed) }()

	pumpCtx, stopPump := context.WithCancel(context.Background())
	pumped := make(chan struct{})
	go func() { a.pump(pumpCtx); close(pumped) }()

	auxCtx, stopAux := context.WithCancel(context.Background())
	aux := make(chan struct{}, 3)
	go func() { a.pub.Run(auxCtx); aux <- struct{}{} }()
	go func() { a.logEtcdHealth(auxCtx, 2*time.Second); aux <- struct{}{} }()
	if a.httpL != nil {
		go func() { a.serveHTTP(auxCtx, a.httpL); aux <- struct{}{} }()
	} else {
		aux <- struct{}{}
	}

	srcDone := make(chan struct{})
	claimed := make(chan struct{})
	go a.watchClaim(ctx, end, claimed)
	go func() {
		defer close(srcDone)
		select {
		case <-claimed:
		case <-ctx.Done():
			return
		}
		a.src.Run(ctx, func(es []etcd.Entry) {
			te := toTail(es)
			a.mgr.Reconcile(te)
			// The lines of a refused topic no entry names any more (its
			// entry corrected) leave memory: their files are read again
			// for the topic they name now.
			a.prod.Forget(append(collected(te), a.sysTopic()...))
		})
	}()
	sysDone := a.runSys(ctx, claimed)

	<-ctx.Done()
	a.log.Info("stopping: no more reading; waiting for Kafka to acknowledge what was read",
		"timeout", a.cfg.Agent.ShutdownTimeout)
	<-srcDone
	<-sysDone // host metrics samples still waiting are not kept
	// One shutdown_timeout for both waits (the tailers' acks, then the
	// client's close), and a second at least for the client to close.
	deadline := time.Now().Add(a.cfg.Agent.ShutdownTimeout)
	a.mgr.Stop()
	stopPump()
	<-pumped
	closeCtx, cancel := context.WithTimeout(context.Background(), max(time.Until(deadline), time.Second))
	if err := a.prod.Close(closeCtx); err != nil {
		a.log.Warn("Kafka producer did not close in time", "err", err)
	}
	cancel()
	stopFlush()
	<-flushed
	stopAux() // revokes the status lease, closes the HTTP server
	<-aux
	<-aux
	<-aux
	a.etcd.Close()
	var taken *etcd.HostTakenError
	if err := context.Cause(ctx); errors.As(err, &taken) {
		a.log.Error("logagent stopped: another agent uses this host", "err", err)
		return err
	}
	a.log.Info("logagent stopped")
	return nil
}

func (a *Agent) unlock() {
	if a.lock != nil {
		a.lock.Close()
	}
}

// watchClaim follows the claim of the status key: ready is closed once the
// key is held, or once etcd did not answer within dial_timeout (the agent
// then ships on its cache, as when etcd is down, and learns later); a claim
// waiting for another agent to stop is waited for. Another agent holding
// the host ends the run with the *etcd.HostTakenError as its cause.
func (a *Agent) watchClaim(ctx context.Context, stop context.CancelCauseFunc, ready chan<- struct{}) {
	timer := time.NewTimer(a.cfg.Etcd.DialTimeout)
	defer timer.Stop()
	isReady := false
	markReady := func() {
		if !isReady {
			isReady = true
			close(ready)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			if !isReady {
				a.log.Warn("etcd did not confirm in time that no other agent uses this host; starting, and checking when it answers", "host", a.host)
			}
			markReady()
		case err := <-a.claimed:
			var taken *etcd.HostTakenError
			switch {
			case err == nil:
				markReady()
			case errors.Is(err, etcd.ErrWaitingForOther):
				timer.Reset(statusTTL + statusInterval + a.cfg.Etcd.DialTimeout)
			case errors.As(err, &taken):
				stop(err)
				return
			}
		}
	}
}

// sendBuf is the pump's room for one batch's messages and headers. It
// hangs on the batch (Batch.Aux) and is reused with it: nothing is
// allocated per line.
type sendBuf struct {
	msgs []kafka.Message
	hdrs []kafka.Header
	ids  []byte // each line's "<host>:<file>:<offset>"; headers and keys point into it
}

// idBytes is the room a line's id takes in sendBuf.ids: host, the file
// id, two colons and the offset's digits (at most 20).
func idBytes(host []byte) int { return len(host) + 2 + taillog.GenIDLen + 20 }

// Reset drops the messages' references to the lines (their bytes and
// positions) when the batch goes back to its pool.
func (sb *sendBuf) Reset() { clear(sb.msgs) }

// pump hands every line to the producer.
func (a *Agent) pump(ctx context.Context) {
	host := []byte(a.host)
	keyPath := a.cfg.Kafka.Key == conf.KeyPath
	paths := map[string][]byte{}
	for {
		var b *taillog.Batch
		select {
		case b = <-a.lines:
		case <-ctx.Done():
			return
		}
		sb, _ := b.Aux.(*sendBuf)
		if sb == nil {
			sb = new(sendBuf)
			b.Aux = sb
		}
		// Once a message is sent, its ack may come at once; the ack of the
		// batch's last line recycles the batch. So nothing of the batch is
		// touched after the last Send or Ack: lines, n and sb are locals.
		lines := b.Lines
		n := len(lines)
		path, ok := paths[b.Lines[0].Path()]
		if !ok {
			path = []byte(lines[0].Path())
			paths[lines[0].Path()] = path
		}
		topic := lines[0].Topic()
		read := b.Read
		file := b.File
		sb.msgs = slices.Grow(sb.msgs[:0], n)[:n]
		sb.hdrs = slices.Grow(sb.hdrs[:0], recordHeaders*n)[:recordHeaders*n]
		// Keys and headers point into ids: it must not move while they
		// are built.
		ids := slices.Grow(sb.ids[:0], idBytes(host)*n)
		sb.ids = ids
		msgs, hdrs := sb.msgs, sb.hdrs
		for i := range lines {
			l := &lines[i]
			if l.Skip {
				l.Ack()
				continue
			}
			start := len(ids)
			ids = append(append(ids, host...), ':')
			fileAt := len(ids)
			ids = append(file.AppendHex(ids), ':')
			offAt := len(ids)
			ids = strconv.AppendInt(ids, l.Offset, 10)
			end := len(ids)
			h := hdrs[recordHeaders*i : recordHeaders*(i+1) : recordHeaders*(i+1)]
			h[0] = kafka.Header{Key: hdrHost, Value: host}
			h[1] = kafka.Header{Key: hdrPath, Value: path}
			h[2] = kafka.Header{Key: hdrOffset, Value: ids[offAt:end:end]}
			h[3] = kafka.Header{Key: hdrFile, Value: ids[fileAt : offAt-1 : offAt-1]}
			key := ids[start:end:end]
			if keyPath {
				key = path
			}
			m := &msgs[i]
			// Partitioned by the path, not by the key (which differs for
			// every line): the lines of a file stay in one partition, in
			// order.
			*m = kafka.Message{Topic: topic, Value: l.Data, Headers: h, Key: key, PartitionKey: path, Meta: l, Time: read}
			if err := a.prod.Send(ctx, m); err != nil {
				return // stopping: unsent lines are read again on the next start
			}
		}
	}
}

// lineOverhead is the memory a line holds on its way to Kafka besides
// its bytes: the Line, its Message, its headers, its id (reserved at its
// longest) and the client's record.
func lineOverhead(p kafka.Producer, host string) int64 {
	return taillog.LineBytes + int64(unsafe.Sizeof(kafka.Message{})) + recordHeaders*int64(unsafe.Sizeof(kafka.Header{})) +
		int64(idBytes([]byte(host))) + int64(p.RecordBytes())
}

func (a *Agent) onAck(m *kafka.Message, err error) {
	if done, ok := m.Meta.(sysAck); ok {
		done(err)
		return
	}
	l := m.Meta.(*taillog.Line)
	if err != nil && !errors.Is(err, kafka.ErrNotSent) {
		a.log.Error("line can never be sent to Kafka; skipped", "path", l.Path(), "offset", l.Offset,
			"bytes", len(l.Data), "err", err)
	}
	if m.Failed() {
		l.Pin() // the backend may still read it
	}
	l.Ack()
}

func toTail(es []etcd.Entry) []taillog.Entry {
	out := make([]taillog.Entry, len(es))
	for i, e := range es {
		out[i] = taillog.Entry{Path: e.Path, Topic: e.Topic, ReadFrom: e.ReadFrom, Exclude: e.Exclude,
			Multiline: toMultiline(e.Multiline)}
	}
	return out
}

// toMultiline is an entry's multiline rule, validated and compiled by
// etcd.ParseEntries.
func toMultiline(m *etcd.Multiline) *taillog.Multiline {
	if m == nil {
		return nil
	}
	r := &taillog.Multiline{MaxLines: m.MaxLines, MaxBytes: int(m.MaxBytes), Timeout: time.Duration(m.Timeout)}
	if m.Start != "" {
		r.Start = m.Regexp()
	} else {
		r.Continue = m.Regexp()
	}
	return r
}

// Status of the agent's files (for the status key, metrics and tests).
func (a *Agent) Status() []fleet.FileStatus { return a.mgr.Status() }

// logEtcdHealth logs once when the etcd connection goes down and once when
// it is back: the client reconnects by itself, silently.
func (a *Agent) logEtcdHealth(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var down error
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := a.etcdHealthy()
		switch {
		case err != nil && down == nil:
			a.log.Error("etcd unreachable; shipping goes on with the current config", "err", err)
		case err == nil && down != nil:
			a.log.Info("etcd reachable again")
		}
		down = err
	}
}

// resolveHost is [agent] host, or when it is empty this machine's name
// (host_from = hostname, the default) or outbound IP (host_from = ip).
func resolveHost(c conf.Agent) (string, error) {
	if c.Host != "" {
		return c.Host, nil
	}
	if c.HostFrom == conf.HostFromIP {
		ip, err := utils.OutboundIP()
		if err != nil {
			return "", fmt.Errorf("[agent] host is empty and %w; set host", err)
		}
		return ip, nil
	}
	name, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("[agent] host is empty and the host name is unknown (%w); set host", err)
	}
	if err := conf.CheckHost(name); err != nil {
		return "", fmt.Errorf("[agent] host is empty and this machine's name cannot be used: %w; set host", err)
	}
	return name, nil
}
