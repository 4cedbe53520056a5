package console

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/fleet"
)

// hostData is what etcd holds for one host.
type hostData struct {
	config      []byte // collect_config value; nil when the key is absent
	configRev   int64  // its ModRevision (0: absent)
	status      *fleet.Status
	statusErr   string // the status key holds something that is not a status
	lastSeen    *fleet.LastSeen
	hasConfig   bool
	hasStatus   bool
	hasLastSeen bool
}

func (d *hostData) empty() bool { return !d.hasConfig && !d.hasStatus && !d.hasLastSeen }

// cache is the console's copy of every host's keys: loaded with one Get
// of the /logagent/ prefix, then kept by one watch on it (never a poll per
// host). Subscribers are told of each change, to push it to the pages.
type cache struct {
	cli *clientv3.Client
	log *slog.Logger

	// loaded is closed once the first load succeeded.
	loaded     chan struct{}
	loadedOnce sync.Once

	mu    sync.RWMutex
	hosts map[string]*hostData
	rev   int64
	subs  map[chan struct{}]struct{}
}

func newCache(cli *clientv3.Client, log *slog.Logger) *cache {
	return &cache{cli: cli, log: log, hosts: map[string]*hostData{}, subs: map[chan struct{}]struct{}{},
		loaded: make(chan struct{})}
}

// ready reports whether the cache holds what etcd holds (its first load
// succeeded).
func (c *cache) ready() bool {
	select {
	case <-c.loaded:
		return true
	default:
		return false
	}
}

// load reads every host's keys at one revision.
func (c *cache) load(ctx context.Context) error {
	resp, err := c.cli.Get(ctx, fleet.Prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	hosts := map[string]*hostData{}
	for _, kv := range resp.Kvs {
		apply(hosts, kv, false)
	}
	c.mu.Lock()
	c.hosts, c.rev = hosts, resp.Header.Revision
	c.mu.Unlock()
	c.loadedOnce.Do(func() { close(c.loaded) })
	c.notify()
	return nil
}

// follow loads the cache and keeps it current until ctx ends. A watch
// that fails (compaction, etcd restarted) is replaced by a new load and
// watch; a load that fails is tried again every second.
func (c *cache) follow(ctx context.Context) {
	c.reload(ctx)
	for ctx.Err() == nil {
		c.mu.RLock()
		rev := c.rev
		c.mu.RUnlock()
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := c.cli.Watch(wctx, fleet.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV())
		for resp := range wch {
			if err := resp.Err(); err != nil {
				if err != rpctypes.ErrCompacted {
					c.log.Warn("etcd watch ended; loading again", "err", err)
				}
				break
			}
			c.mu.Lock()
			for _, ev := range resp.Events {
				apply(c.hosts, ev.Kv, ev.Type == mvccpb.DELETE)
			}
			c.rev = resp.Header.Revision
			c.mu.Unlock()
			c.notify()
		}
		cancel()
		c.reload(ctx)
	}
}

// reload loads the cache, trying again every second until it succeeds or
// ctx ends.
func (c *cache) reload(ctx context.Context) {
	logged := ""
	for ctx.Err() == nil {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.load(lctx)
		cancel()
		if err == nil {
			return
		}
		if err.Error() != logged && ctx.Err() == nil {
			c.log.Warn("cannot load the fleet from etcd; retrying", "err", err)
			logged = err.Error()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// apply records one key's new value (or its deletion) in hosts.
func apply(hosts map[string]*hostData, kv *mvccpb.KeyValue, deleted bool) {
	host, name, ok := fleet.SplitKey(string(kv.Key))
	if !ok {
		return
	}
	d := hosts[host]
	if d == nil {
		d = &hostData{}
		hosts[host] = d
	}
	switch name {
	case fleet.KeyCollectConfig:
		d.hasConfig, d.config, d.configRev = !deleted, nil, 0
		if !deleted {
			d.config, d.configRev = kv.Value, kv.ModRevision
		}
	case fleet.KeyStatus:
		d.hasStatus, d.status, d.statusErr = !deleted, nil, ""
		if !deleted {
			var st fleet.Status
			if err := json.Unmarshal(kv.Value, &st); err != nil {
				d.statusErr = "the status key is not a status document: " + err.Error()
			} else {
				d.status = &st
			}
		}
	case fleet.KeyLastSeen:
		d.hasLastSeen, d.lastSeen = !deleted, nil
		if !deleted {
			var ls fleet.LastSeen
			if json.Unmarshal(kv.Value, &ls) == nil {
				d.lastSeen = &ls
			}
		}
	default:
		return
	}
	if d.empty() {
		delete(hosts, host)
	}
}

// subscribe returns a channel that receives after every change; its
// buffer of one coalesces changes a slow reader has not taken yet.
func (c *cache) subscribe() (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs, ch)
		c.mu.Unlock()
	}
}

func (c *cache) notify() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default: // one is pending already
		}
	}
}

// snapshot returns a copy of every host's data and the revision it is at.
func (c *cache) snapshot() (map[string]hostData, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]hostData, len(c.hosts))
	for h, d := range c.hosts {
		out[h] = *d
	}
	return out, c.rev
}

// revision is the etcd revision the cache is at.
func (c *cache) revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// host returns one host's data.
func (c *cache) host(name string) (hostData, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, ok := c.hosts[name]
	if !ok {
		return hostData{}, false
	}
	return *d, true
}
