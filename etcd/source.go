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

	"github.com/logagent/logagent/utils"
)

// Hooks observe the source (metrics). Any field may be nil.
type Hooks struct {
	Applied      func(rev int64)
	Rejected     func(err error)
	WatchRestart func()
}

// Source delivers the host's collect config: once at start, then at every
// change. It follows the key with Get, then Watch from the Get's revision
// + 1; a compacted revision or a closed watch means Get again and watch
// again. Every applied value is cached in dataDir, so that the agent can
// start on it while etcd is unreachable.
type Source struct {
	c         *Client
	cli       *clientv3.Client // c's, once made (Run only)
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

// NewSource returns a source for host's key. timeout bounds each Get.
func NewSource(c *Client, host, dataDir string, timeout time.Duration, hooks Hooks, log *slog.Logger) *Source {
	return &Source{c: c, key: ConfigKey(host), cachePath: filepath.Join(dataDir, "collect_config.json"),
		timeout: timeout, hooks: hooks, log: log.With("key", ConfigKey(host))}
}

// Key is the etcd key the source follows.
func (s *Source) Key() string { return s.key }

// State is what the source last applied or rejected.
type State struct {
	Revision  int64    `json:"config_revision"`
	LastError string   `json:"config_error,omitempty"`
	Problems  []string `json:"config_problems,omitempty"`
}

// State returns the applied revision and the last rejection, if any.
func (s *Source) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Revision: s.rev, Problems: s.problems}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	return st
}

// Run calls apply with each new set of entries until ctx is done. apply is
// never called concurrently.
func (s *Source) Run(ctx context.Context, apply func([]Entry)) {
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
			s.log.Warn("no collect config in etcd; nothing to collect until it is put", "key", s.key)
			applied = s.apply(apply, []byte("[]"), resp.Header.Revision)
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
func (s *Source) watch(ctx context.Context, rev int64, apply func([]Entry)) {
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
				s.log.Warn("collect config deleted; stopping every file")
				s.apply(apply, []byte("[]"), ev.Kv.ModRevision)
			}
		}
	}
	if ctx.Err() == nil {
		s.log.Warn("etcd watch closed; reading the key again")
	}
}

// apply parses value and hands it on, or keeps the last good config and
// reports false.
func (s *Source) apply(apply func([]Entry), value []byte, rev int64) bool {
	entries, problems, err := ParseEntries(value)
	if err != nil {
		err = fmt.Errorf("%s at revision %d: %w; keeping the last good config", s.key, rev, err)
		s.log.Error("collect config rejected", "err", err)
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
		s.log.Error("collect config entry skipped", "revision", rev, "err", p)
	}
	s.mu.Lock()
	s.rev, s.lastErr, s.problems = rev, nil, texts
	s.mu.Unlock()
	if err := utils.WriteFileAtomic(s.cachePath, value); err != nil {
		s.log.Warn("cannot cache collect config", "file", s.cachePath, "err", err)
	}
	s.log.Info("collect config applied", "revision", rev, "entries", len(entries))
	if s.hooks.Applied != nil {
		s.hooks.Applied(rev)
	}
	apply(entries)
	return true
}

func (s *Source) applyCache(apply func([]Entry)) {
	data, err := os.ReadFile(s.cachePath)
	if errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("no cached collect config; collecting nothing until etcd answers", "file", s.cachePath)
		return
	}
	if err != nil {
		s.log.Error("cannot read cached collect config", "file", s.cachePath, "err", err)
		return
	}
	entries, _, err := ParseEntries(data)
	if err != nil {
		s.log.Error("cached collect config is corrupt; ignoring it", "file", s.cachePath, "err", err)
		return
	}
	s.log.Info("running on the cached collect config until etcd answers", "file", s.cachePath, "entries", len(entries))
	apply(entries)
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
