package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/connectivity"

	"github.com/logagent/logagent/fleet"
)

// etcdHealthy reports whether the etcd connection is usable now.
func (a *Agent) etcdHealthy() error {
	cli := a.etcd.Now()
	if cli == nil {
		return fmt.Errorf("etcd %s: not connected yet: %v", strings.Join(a.cfg.Etcd.Endpoints, ","), a.etcd.Err())
	}
	conn := cli.ActiveConnection()
	if conn == nil {
		return errors.New("etcd: no connection")
	}
	switch st := conn.GetState(); st {
	case connectivity.Ready, connectivity.Idle:
		return nil
	default:
		// gRPC's state (TRANSIENT_FAILURE) says nothing an operator can
		// act on: a dial says what fails.
		if why := dialReason(a.cfg.Etcd.Endpoints, time.Second); why != "" {
			return fmt.Errorf("etcd %s (is etcd running? check [etcd] endpoints)", why)
		}
		return fmt.Errorf("etcd %s: reachable, but the connection is not ready (%s); TLS or authentication?", strings.Join(a.cfg.Etcd.Endpoints, ","), strings.ToLower(st.String()))
	}
}

// Health is nil when Kafka and etcd are reachable, else says why not.
// A topic Kafka refuses is unhealthy too, with the files waiting on it.
func (a *Agent) Health() error {
	return joinHealth(a.prod.Healthy(), a.etcdHealthy(), topicsHealth(a.Topics()))
}

func joinHealth(kafkaErr, etcdErr, topicsErr error) error {
	if kafkaErr != nil {
		kafkaErr = fmt.Errorf("kafka: %w", kafkaErr)
	}
	return errors.Join(kafkaErr, etcdErr, topicsErr)
}

// listenHTTP opens http_addr in New, so that a taken port is a start
// error; serveHTTP serves /metrics and /healthz on it until ctx is done.
func (a *Agent) listenHTTP() (net.Listener, error) {
	if a.cfg.Agent.HTTPAddr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", a.cfg.Agent.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("[agent] http_addr: %w", err)
	}
	return l, nil
}

func (a *Agent) serveHTTP(ctx context.Context, l net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	// Readiness: can it ship now (Kafka, etcd, no refused topic)?
	// /healthz is its older name.
	ready := func(w http.ResponseWriter, r *http.Request) {
		if err := a.Health(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}
	mux.HandleFunc("/readyz", ready)
	mux.HandleFunc("/healthz", ready)
	// Liveness: the process works. etcd or Kafka down is no reason to
	// restart an agent that ships on its cache and holds lines meanwhile.
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "logagent "+a.version+" ("+a.host+")\n\n"+
			"/metrics        Prometheus metrics\n"+
			"/readyz         200 when it can ship now (Kafka, etcd, topics), else 503 and why (/healthz: the same)\n"+
			"/livez          200 while the process works\n"+
			"/status         this agent's status, every file (JSON)\n"+
			"/debug/pprof/   Go profiles\n")
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		st, _ := a.fullSnapshot(a.fullSummary(), false)
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	})
	// Profiles, for "why is it using CPU or memory" (http_addr is loopback by default).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	// An execution trace shows what wakes the agent, and how often: what
	// a CPU profile of a quiet agent, mostly asleep, does not.
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Error("http server stopped", "err", err)
	}
}

// statusSummary is the part of the status whose change is published at
// once: health, the config's revision and errors, each file's state and
// error — not the counters. Taken every statusInterval, it costs no
// system call (the status stats every file).
type statusSummary struct {
	// Which servers are healthy (Kafka, etcd), not the errors' text: it
	// varies during an outage (another broker, refused or timed out).
	Health []bool
	Config fleet.ConfigState
	Files  []fleet.FileState
	// Refused is each refused topic's reason: a topic refused or taken
	// again is published at once.
	Refused []string
	Limits  []fleet.TopicLimit

	// The errors, for the status published with this summary: not
	// compared (unexported, so not in the publisher's JSON).
	kafkaErr, etcdErr error

	// The sys_config key's revision and error, and whether a headline
	// with rates is there (not the samples' figures: they change at every
	// sample and go out with the counters).
	SysConfig fleet.ConfigState
	SysRates  bool
}

func (a *Agent) statusSummary() statusSummary {
	kafkaErr, etcdErr := a.prod.Healthy(), a.etcdHealthy()
	sum := statusSummary{Health: []bool{kafkaErr == nil, etcdErr == nil}, Config: a.src.State(),
		Files: a.mgr.States(), Limits: a.prod.Limits(), kafkaErr: kafkaErr, etcdErr: etcdErr}
	// The reasons only: the files waiting are in the status's files.
	for _, r := range a.prod.Topics() {
		sum.Refused = append(sum.Refused, r.Reason())
	}
	return sum
}

// snapshot returns the agent's current status, with the health and config
// of sum, just taken, and the summary of that status: its files' states
// are read after sum's.
//
// The status in etcd is bounded (bound): whatever the number of files its
// size stays under a few KB, so a fleet's statuses fit etcd's request
// limit and its history; /status serves the whole.
func (a *Agent) snapshot(sum statusSummary, bound bool) (*fleet.Status, statusSummary) {
	health := "ok"
	topics := a.Topics()
	if err := joinHealth(sum.kafkaErr, sum.etcdErr, topicsHealth(topics)); err != nil {
		health = err.Error()
	}
	files := a.mgr.Status()
	if files == nil {
		files = []fleet.FileStatus{}
	}
	written := statusSummary{Health: sum.Health, Config: sum.Config, Files: make([]fleet.FileState, len(files)), Limits: sum.Limits}
	for _, t := range topics {
		written.Refused = append(written.Refused, t.Reason)
	}
	for i, f := range files {
		written.Files[i] = f.FileState()
	}
	st := &fleet.Status{Host: a.host, Owner: a.owner, Version: a.version, Labels: a.cfg.Agent.Labels, StartTime: a.started,
		Health: health, Config: sum.Config, Topics: topics, TopicLimits: sum.Limits}
	st.SetFiles(files)
	if bound {
		st.Bound()
	} else {
		st.Updated = time.Now()
	}
	return st, written
}
