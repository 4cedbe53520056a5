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
	summary  func() any
	status   func(summary any) (status, itsSummary any)
	log      *slog.Logger
}

// NewPublisher publishes status under a lease of ttl: within interval of a
// change of summary() (what an operator looks for: states, errors), else
// every refresh (counters). Each put is an etcd revision; a fleet of
// agents rewriting their status every few seconds for its counters alone
// would fill etcd's history for nothing.
//
// summary is taken every interval, so it must be cheap, and compared as
// JSON (unexported fields are not compared). status(sum), which may be
// dear (the agent's stats every file), is taken only when the key is
// written, with the summary just taken: it need not ask again for what
// that holds. It also returns the summary of the status itself, which the
// next summaries are compared with: the key must not keep a state that
// was already gone again by the next interval.
func NewPublisher(c *Client, host string, ttl, interval, refresh time.Duration, summary func() any, status func(summary any) (status, itsSummary any), log *slog.Logger) *Publisher {
	return &Publisher{c: c, key: StatusKey(host), ttl: ttl, interval: interval, refresh: refresh,
		summary: summary, status: status, log: log.With("key", StatusKey(host))}
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
	var last []byte       // the summary of the status last published
	var lastPut time.Time // when, under lease
	var putLease clientv3.LeaseID
	for {
		if lease == 0 {
			lease, alive = p.grant(ctx)
		}
		s := p.summary()
		sum, _ := json.Marshal(s)
		if lease != 0 && (lease != putLease || !bytes.Equal(sum, last) || time.Since(lastPut) >= p.refresh) {
			// The status is taken after the summary: a change in between
			// is published now; if it was undone since, the next summary
			// differs from the one written, and is published then.
			st, written := p.status(s)
			err := p.put(ctx, lease, st)
			if err == nil {
				last, _ = json.Marshal(written)
				lastPut, putLease = time.Now(), lease
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
