package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The OpenTelemetry Collector as a peer: a collector with only the filelog
// receiver (checkpoints in the file_storage extension) and the kafka
// exporter, built by scripts/bench-deps.sh from bench/otelcol-builder.yaml
// at one pinned release into a cache outside the repository.
const otelcolRelease = "0.165.1"

// defaultOtelcol is where scripts/bench-deps.sh puts the collector.
func defaultOtelcol() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = filepath.Join(os.TempDir(), "cache")
	}
	return filepath.Join(dir, "logagent-bench", "otelcol-"+otelcolRelease, "otelcol")
}

// otelcolAvailable reports why the collector cannot run here.
func (e *env) otelcolAvailable() error {
	if _, err := os.Stat(e.opts.otelcol); err != nil {
		return fmt.Errorf("otelcol not built at %s (run scripts/bench-deps.sh)", e.opts.otelcol)
	}
	return nil
}

// isOtelcol: the collector with its in-memory sending queue (its default)
// or with the queue persisted in file_storage.
func isOtelcol(id string) bool { return id == "otelcol" || id == "otelcol-persistent" }

// otelcolConfig is the collector's configuration (JSON, which its YAML
// reader takes): every file of include from its beginning, checkpoints in
// storage, each line's body sent as the record value with lz4, acks from all
// in-sync replicas (its franz-go client is then idempotent) and the linger
// every other contender has. The exporter's raw encoding sends a string body
// JSON-quoted; it is still the closest to the bare line (filelog's nop
// encoding would keep the body as bytes, but it also stops splitting lines
// and sends the file in max_log_size chunks). The sending queue blocks when
// full (by default the receiver then drops what it hands over, see below);
// persistent puts it in file_storage too (its default is in memory).
func otelcolConfig(storage string, include, brokers []string, topic string, persistent bool) ([]byte, error) {
	exporter := map[string]any{
		"brokers": brokers,
		"logs":    map[string]any{"topic": topic, "encoding": "raw"},
		"producer": map[string]any{
			"compression":   "lz4",
			"required_acks": -1,
			"linger":        benchLinger.String(),
		},
	}
	// A full sending queue makes the receiver drop the lines it hands over
	// (filelog does not retry by default): blocking makes it wait instead.
	queue := map[string]any{"block_on_overflow": true}
	if persistent {
		queue["storage"] = "file_storage"
	}
	exporter["sending_queue"] = queue
	cfg := map[string]any{
		"extensions": map[string]any{"file_storage": map[string]any{"directory": storage}},
		"receivers": map[string]any{"filelog": map[string]any{
			"include": include, "start_at": "beginning", "storage": "file_storage",
		}},
		"exporters": map[string]any{"kafka": exporter},
		"service": map[string]any{
			"extensions": []string{"file_storage"},
			"pipelines": map[string]any{"logs": map[string]any{
				"receivers": []string{"filelog"}, "exporters": []string{"kafka"},
			}},
			// No metrics server: its fixed port would be one more thing
			// shared between runs.
			"telemetry": map[string]any{
				"logs":    map[string]any{"level": "warn"},
				"metrics": map[string]any{"level": "none"},
			},
		},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// startOtelcol writes the configuration into dir and starts the collector.
// A restart with the same dir resumes from its checkpoints.
func (e *env) startOtelcol(dir, id string, include []string, topic string) (*proc, error) {
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, err
	}
	conf, err := otelcolConfig(storage, include, e.kafka.addrs, topic, id == "otelcol-persistent")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "otelcol.yaml")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "otelcol.log")
	// The log of an earlier life of the same collector (workload R) is kept.
	if _, err := os.Stat(logPath); err == nil {
		for i := 1; ; i++ {
			old := fmt.Sprintf("%s.%d", logPath, i)
			if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
				os.Rename(logPath, old) //nolint:errcheck
				break
			}
		}
	}
	return startProc(logPath, nil, e.opts.otelcol, "--config", path)
}

func (e *env) runOtelcolA(id string) func(ctx context.Context, dir, topic string) sample {
	return func(ctx context.Context, dir, topic string) sample {
		p, err := e.startOtelcol(dir, id, []string{filepath.Join(e.dir, "a", "access.log")}, topic)
		if err != nil {
			return sample{err: err}
		}
		return e.finishAtOffset(ctx, p, topic)
	}
}

// bareValue returns a record's value as the line it carries: the value
// itself, or, for a JSON string (the collector's raw encoding of a string
// body), the string it encodes; quoted says which.
func bareValue(v []byte) (line []byte, quoted bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v, false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return v, false
	}
	return []byte(s), true
}

// follower is a contender that follows files and ships their lines:
// logagent with either client, or the collector.
type follower struct {
	*proc
	agent *agentRun // nil for the collector
}

// startFollower starts contender id following the entries' paths. The
// collector sends every line to the first entry's topic.
func (e *env) startFollower(ctx context.Context, id, dir, host string, entries []collectEntry) (*follower, error) {
	if client, ok := strings.CutPrefix(id, "logagent-"); ok {
		a, err := e.startAgent(ctx, dir, host, client, entries)
		if err != nil {
			return nil, err
		}
		return &follower{proc: a.proc, agent: a}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	include := make([]string, len(entries))
	for i, en := range entries {
		include[i] = en.Path
	}
	p, err := e.startOtelcol(dir, id, include, entries[0].Topic)
	if err != nil {
		return nil, err
	}
	return &follower{proc: p}, nil
}

// followed waits until n files are followed. Only logagent tells; the
// collector's first poll finds them within its poll_interval (200 ms).
func (f *follower) followed(ctx context.Context, n int) (time.Duration, error) {
	if f.agent == nil {
		return 0, nil
	}
	_, at, err := f.agent.waitMetrics(ctx, 200*time.Millisecond, func(m agentMetrics) bool { return m.running >= n })
	return at.Sub(f.start), err
}

// scrape reads logagent's metrics (the collector's are off: zero).
func (f *follower) scrape(ctx context.Context) agentMetrics {
	if f.agent == nil {
		return agentMetrics{}
	}
	m, _ := f.agent.scrape(ctx)
	return m
}

// profile is logagent's CPU profile (BENCH_PROFILE); none for the collector.
func (f *follower) profile(ctx context.Context, path string, seconds int) <-chan struct{} {
	if f.agent == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	return f.agent.profile(ctx, path, seconds)
}

// finish stops the follower with SIGTERM and reports an unclean exit.
func (f *follower) finish() error {
	if f.agent != nil {
		return f.agent.finish()
	}
	if err := f.stop(20 * time.Second); err != nil && !isSignalExit(err) {
		return fmt.Errorf("otelcol exit: %v; last log lines:\n%s", err, f.logTail(15))
	}
	return nil
}
