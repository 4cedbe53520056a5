package etcd

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Publisher keeps the agent's status at /logagent/<host>/status, bound to
// a lease that is kept alive while the agent runs. A clean stop revokes
// the lease, so the key vanishes at once; a crash lets it expire after TTL.
type Publisher struct {
	c        *Client
	cli      *clientv3.Client // c's, once made (Run only)
	key      string
	ttl      time.Duration
	interval time.Duration
	refresh  time.Duration
	status   func() any
	summary  func(status any) any
	log      *slog.Logger
}

// NewPublisher publishes status() under a lease of ttl: within interval of
// a change of its summary (what an operator looks for: states, errors), else
// every refresh (counters). Each put is an etcd revision; a fleet of
// agents rewriting their status every few seconds for its counters alone
// would fill etcd's history for nothing.
func NewPublisher(c *Client, host string, ttl, interval, refresh time.Duration, status func() any, summary func(status any) any, log *slog.Logger) *Publisher {
	return &Publisher{c: c, key: StatusKey(host), ttl: ttl, interval: interval, refresh: refresh,
		status: status, summary: summary, log: log.With("key", StatusKey(host))}
}

// Run publishes until ctx is done, then revokes the lease.
func (p *Publisher) Run(ctx context.Context) {
	var err error
	if p.cli, err = p.c.Wait(ctx); err != nil {
		return
	}
	var lease clientv3.LeaseID
	var alive <-chan *clientv3.LeaseKeepAliveResponse
	defer func() {
		if lease != 0 {
			// The agent is stopping: make the status vanish now, not after the TTL.
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			p.cli.Revoke(rctx, lease)
			cancel()
		}
	}()
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	failing := false
	var last []byte       // the summary last published
	var lastPut time.Time // when, under lease
	var putLease clientv3.LeaseID
	for {
		if lease == 0 {
			lease, alive = p.grant(ctx)
		}
		st := p.status()
		sum, _ := json.Marshal(p.summary(st))
		if lease != 0 && (lease != putLease || !bytes.Equal(sum, last) || time.Since(lastPut) >= p.refresh) {
			err := p.put(ctx, lease, st)
			if err == nil {
				last, lastPut, putLease = sum, time.Now(), lease
			}
			switch {
			case err != nil && !failing && ctx.Err() == nil:
				p.log.Warn("cannot publish status; retrying", "err", err)
				failing = true
			case err == nil && failing:
				p.log.Info("status published again")
				failing = false
			}
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				break wait
			case _, ok := <-alive:
				if !ok {
					// Keep-alive ended (the lease expired while etcd was
					// unreachable): grant a new lease now.
					lease, alive = 0, nil
					break wait
				}
			}
		}
	}
}

func (p *Publisher) grant(ctx context.Context) (clientv3.LeaseID, <-chan *clientv3.LeaseKeepAliveResponse) {
	gctx, cancel := context.WithTimeout(ctx, p.interval)
	defer cancel()
	g, err := p.cli.Grant(gctx, int64(p.ttl/time.Second))
	if err != nil {
		return 0, nil
	}
	alive, err := p.cli.KeepAlive(ctx, g.ID)
	if err != nil {
		return 0, nil
	}
	return g.ID, alive
}

func (p *Publisher) put(ctx context.Context, lease clientv3.LeaseID, status any) error {
	data, err := json.Marshal(status)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, p.interval)
	defer cancel()
	_, err = p.cli.Put(pctx, p.key, string(data), clientv3.WithLease(lease))
	return err
}
