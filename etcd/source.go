package etcd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/utils"
)

// Hooks observe the source (metrics). Any field may be nil.
type Hooks struct {
	Applied      func(rev int64)
	Rejected     func(err error)
	WatchRestart func()
}

// Spec says which key a Follower follows and how it reads its value.
type Spec[T any] struct {
	Key   string
	Cache string // the file in data_dir holding the last good value
	What  string // what the key holds, for log lines ("collect config")
	// Absent stands for the value when the key is absent or deleted, and
	// AbsentMeans says what that does, for the log.
	Absent      []byte
	AbsentMeans string
	// Parse reads a value. err rejects all of it (the last good value
	// stays); problems are parts left out, each logged and reported.
	Parse func(value []byte) (v T, problems []error, err error)
	// Attrs describe an applied value in its log line (may be nil).
	Attrs func(v T) []any
}

// Source delivers the host's collect config.
type Source = Follower[[]Entry]

// Follower delivers the value of one etcd key: once at start, then at
// every change. It follows the key with Get, then Watch from the Get's
// revision + 1; a compacted revision or a closed watch means Get again and
// watch again. Every applied value is cached in dataDir, so that the agent
// can start on it while etcd is unreachable.
type Follower[T any] struct {
	c         *Client
	cli       *clientv3.Client // c's, once made (Run only)
	spec      Spec[T]
	key       string
	cachePath string
	timeout   time.Duration
	hooks     Hooks
	log       *slog.Logger

	mu       sync.Mutex
	rev      int64 // mod revision of the applied value (0: cache or none)
	lastErr  error // why the last value was rejected, until a good one comes
	problems []string
}

// NewSource returns a source for host's collect config. timeout bounds
// each Get.
func NewSource(c *Client, host, dataDir string, timeout time.Duration, hooks Hooks, log *slog.Logger) *Source {
	return NewFollower(c, Spec[[]Entry]{Key: fleet.ConfigKey(host), Cache: "collect_config.json", What: "collect config",
		Absent: []byte("[]"), AbsentMeans: "nothing to collect until it is put", Parse: ParseEntries,
		Attrs: func(es []Entry) []any { return []any{"entries", len(es)} }}, dataDir, timeout, hooks, log)
}

// NewFollower returns a follower of spec's key. timeout bounds each Get.
func NewFollower[T any](c *Client, spec Spec[T], dataDir string, timeout time.Duration, hooks Hooks, log *slog.Logger) *Follower[T] {
	return &Follower[T]{c: c, spec: spec, key: spec.Key, cachePath: filepath.Join(dataDir, spec.Cache),
		timeout: timeout, hooks: hooks, log: log.With("key", spec.Key)}
}

// Key is the etcd key the source follows.
func (s *Follower[T]) Key() string { return s.key }

// State returns the applied revision and the last rejection, if any.
func (s *Follower[T]) State() fleet.ConfigState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := fleet.ConfigState{Revision: s.rev, Problems: s.problems}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	return st
}

// Run calls apply with each new value until ctx is done. apply is never
// called concurrently.
func (s *Follower[T]) Run(ctx context.Context, apply func(T)) {
	usedCache := false
	if s.cli = s.c.Now(); s.cli == nil {
		// No client yet (etcd unreachable with authentication on): the
		// cached config runs until there is one.
		usedCache = true
		s.applyCache(apply)
		var err error
		if s.cli, err = s.c.Wait(ctx); err != nil {
			return
		}
	}
	down := false
	for attempt := 1; ctx.Err() == nil; attempt++ {
		gctx, cancel := context.WithTimeout(ctx, s.timeout)
		resp, err := s.cli.Get(gctx, s.key)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !down {
				s.log.Error("etcd unreachable; keeping the current config and retrying", "err", err)
				down = true
			}
			if !usedCache {
				usedCache = true
				s.applyCache(apply)
			}
			if !sleep(ctx, backoff(attempt)) {
				return
			}
			continue
		}
		if down {
			s.log.Info("etcd reachable again")
			down = false
		}
		attempt = 0
		var applied bool
		if len(resp.Kvs) == 0 {
			s.log.Warn("no "+s.spec.What+" in etcd; "+s.spec.AbsentMeans, "key", s.key)
			applied = s.apply(apply, s.spec.Absent, resp.Header.Revision)
		} else {
			kv := resp.Kvs[0]
			applied = s.apply(apply, kv.Value, kv.ModRevision)
		}
		if !applied && !usedCache {
			// etcd's value is rejected at start: the last good config
			// is the cached one.
			s.applyCache(apply)
		}
		usedCache = true // etcd answered: a good value of its wins over the cache
		s.watch(ctx, resp.Header.Revision+1, apply)
		if ctx.Err() == nil && s.hooks.WatchRestart != nil {
			s.hooks.WatchRestart()
		}
	}
}

// watch follows the key from rev until the watch fails or ctx is done.
func (s *Follower[T]) watch(ctx context.Context, rev int64, apply func(T)) {
	// WithRequireLeader: a member cut off from its cluster closes the
	// watch instead of going silent.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range s.cli.Watch(wctx, s.key, clientv3.WithRev(rev)) {
		if err := wr.Err(); err != nil {
			// ErrCompacted included: Get again, then watch from there.
			s.log.Warn("etcd watch ended; reading the key again", "err", err)
			return
		}
		for _, ev := range wr.Events {
			switch ev.Type {
			case clientv3.EventTypePut:
				s.apply(apply, ev.Kv.Value, ev.Kv.ModRevision)
			case clientv3.EventTypeDelete:
				s.log.Warn(s.spec.What + " deleted; " + s.spec.AbsentMeans)
				s.apply(apply, s.spec.Absent, ev.Kv.ModRevision)
			}
		}
	}
	if ctx.Err() == nil {
		s.log.Warn("etcd watch closed; reading the key again")
	}
}

// apply parses value and hands it on, or keeps the last good config and
// reports false.
func (s *Follower[T]) apply(apply func(T), value []byte, rev int64) bool {
	v, problems, err := s.spec.Parse(value)
	if err != nil {
		err = fmt.Errorf("%s at revision %d: %w; keeping the last good config", s.key, rev, err)
		s.log.Error(s.spec.What+" rejected", "err", err)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		if s.hooks.Rejected != nil {
			s.hooks.Rejected(err)
		}
		return false
	}
	texts := make([]string, len(problems))
	for i, p := range problems {
		texts[i] = p.Error()
		s.log.Error(s.spec.What+" entry skipped", "revision", rev, "err", p)
	}
	s.mu.Lock()
	s.rev, s.lastErr, s.problems = rev, nil, texts
	s.mu.Unlock()
	if err := utils.WriteFileAtomic(s.cachePath, value); err != nil {
		s.log.Warn("cannot cache "+s.spec.What, "file", s.cachePath, "err", err)
	}
	attrs := []any{"revision", rev}
	if s.spec.Attrs != nil {
		attrs = append(attrs, s.spec.Attrs(v)...)
	}
	s.log.Info(s.spec.What+" applied", attrs...)
	if s.hooks.Applied != nil {
		s.hooks.Applied(rev)
	}
	apply(v)
	return true
}

func (s *Follower[T]) applyCache(apply func(T)) {
	data, err := os.ReadFile(s.cachePath)
	if errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("no cached "+s.spec.What+"; "+s.spec.AbsentMeans+" or etcd answers", "file", s.cachePath)
		return
	}
	if err != nil {
		s.log.Error("cannot read cached "+s.spec.What, "file", s.cachePath, "err", err)
		return
	}
	v, _, err := s.spec.Parse(data)
	if err != nil {
		s.log.Error("cached "+s.spec.What+" is corrupt; ignoring it", "file", s.cachePath, "err", err)
		return
	}
	attrs := []any{"file", s.cachePath}
	if s.spec.Attrs != nil {
		attrs = append(attrs, s.spec.Attrs(v)...)
	}
	s.log.Info("running on the cached "+s.spec.What+" until etcd answers", attrs...)
	apply(v)
}

func backoff(attempt int) time.Duration {
	d := 250 * time.Millisecond
	for i := 1; i < attempt && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
