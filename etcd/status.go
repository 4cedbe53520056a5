package etcd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/logagent/logagent/fleet"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Publisher keeps the agent's status at /logagent/<host>/status, bound to
// a lease that is kept alive while the agent runs. A clean stop revokes
// the lease, so the key vanishes at once; a crash lets it expire after TTL.
type Publisher struct {
	c        *Client
	cli      *clientv3.Client // c's, once made (Run only)
	host     string
	key      string
	ttl      time.Duration
	interval time.Duration
	refresh  time.Duration
	summary  func() any
	status   func(summary any) (status, itsSummary any)
	log      *slog.Logger

	// Set by Claim before Run.
	owner     fleet.Owner
	version   string
	claimWait time.Duration
	claimed   chan error
	held      bool // nil was sent on claimed
	waited    bool // ErrWaitingForOther was sent and no outcome since
}

// Claim makes the publisher hold the host's status key as owner: Run
// takes the key only if it is free or owner's (see claim), waiting up to
// wait for another agent's to go, and then sends on the returned channel
// once: nil when the key is held, or the *HostTakenError. If the key is
// taken later (this agent's lease expired while etcd was unreachable, and
// another agent with the same host started meanwhile), that error is sent
// then. Run also keeps fleet.LastSeenKey. Call before Run.
func (p *Publisher) Claim(owner fleet.Owner, version string, wait time.Duration) <-chan error {
	p.owner, p.version, p.claimWait = owner, version, wait
	// nil once, then at most one error; ErrWaitingForOther at most once
	// per claim, and a claim that waits ends Run or sends nil.
	p.claimed = make(chan error, 4)
	return p.claimed
}

// NewPublisher publishes status under a lease of ttl: within interval of a
// change of summary() (what an operator looks for: states, errors), else
// at most every refresh, and then only if the status changed (counters):
// an idle agent writes nothing but its lease's keep-alives. A status that
// is a Stamper is stamped with the time it is written. Each put is an etcd revision; a fleet of
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
	return &Publisher{c: c, host: host, key: fleet.StatusKey(host), ttl: ttl, interval: interval, refresh: refresh,
		summary: summary, status: status, log: log.With("key", fleet.StatusKey(host))}
}

// Run publishes until ctx is done, then revokes the lease.
func (p *Publisher) Run(ctx context.Context) {
	var err error
	if p.cli, err = p.c.Wait(ctx); err != nil {
		return
	}
	var lease clientv3.LeaseID
	var alive <-chan *clientv3.LeaseKeepAliveResponse
	var lastSeen time.Time // when fleet.LastSeenKey was last written (zero: never)
	defer func() {
		if !lastSeen.IsZero() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := p.putLastSeen(sctx, fleet.LastSeenStopped); err != nil {
				p.log.Warn("cannot record the clean stop in etcd", "key", fleet.LastSeenKey(p.host), "err", err)
			}
			cancel()
		}
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
	var lastData []byte   // that status, unstamped
	var lastPut time.Time // when, under lease (or found unchanged)
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
			data, err := json.Marshal(st)
			if err == nil && lease == putLease && bytes.Equal(sum, last) && bytes.Equal(data, lastData) {
				// Only the refresh is due, and nothing moved (an idle
				// agent): no write, only a look that the key is still
				// there (a read is no revision).
				lastPut = time.Now()
				if !p.exists(ctx) {
					putLease = 0 // deleted by hand: written again now
				}
				goto lastSeen
			}
			if err == nil {
				unstamped := data
				if sp, ok := st.(Stamper); ok {
					sp.Stamp(time.Now())
					data, err = json.Marshal(st)
				}
				lastData = unstamped
			}
			if err == nil {
				err = p.put(ctx, lease, putLease, data)
			}
			var taken *HostTakenError
			if errors.As(err, &taken) {
				p.log.Error("another agent uses this host; stopping", "err", err)
				p.signal(err)
				lastSeen = time.Time{} // the other agent's now
				return
			}
			if err == nil {
				last, _ = json.Marshal(written)
				if putLease != lease {
					p.signal(nil)
				}
				lastPut, putLease = time.Now(), lease
			} else if errors.Is(err, errKeyMoved) {
				putLease = 0 // claim it again
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
	lastSeen:
		if p.claimed != nil && putLease != 0 && putLease == lease && time.Since(lastSeen) >= lastSeenEvery {
			if err := p.putLastSeen(ctx, fleet.LastSeenRunning); err == nil {
				lastSeen = time.Now()
			}
		}
		switch NextTick(ctx, tick.C, alive) {
		case Stopped:
			return
		case LeaseLost:
			lease, alive = 0, nil // grant a new one now
		}
	}
}

// Wake is why NextTick returned.
type Wake int

const (
	Tick      Wake = iota // the ticker fired
	LeaseLost             // the keep-alive ended: the lease expired while etcd was unreachable
	Stopped               // ctx is done: the caller revokes its lease and returns
)

// NextTick waits for the next tick of a loop that keeps a leased key,
// passing over the keep-alive's answers. Stopping closes the keep-alive
// channel as well as ctx, and a caller busy when it stops sees both at
// once: that is Stopped, never LeaseLost (the lease must still be revoked,
// or the key stays for the whole TTL).
func NextTick(ctx context.Context, tick <-chan time.Time, alive <-chan *clientv3.LeaseKeepAliveResponse) Wake {
	for {
		select {
		case <-ctx.Done():
			return Stopped
		case <-tick:
			return Tick
		case _, ok := <-alive:
			if !ok {
				if ctx.Err() != nil {
					return Stopped
				}
				return LeaseLost
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

// put writes status under lease: a first write under a lease claims the
// key (putLease is the lease of the last write); later ones write only
// while the key is still the agent's.
func (p *Publisher) put(ctx context.Context, lease, putLease clientv3.LeaseID, data []byte) error {
	if putLease != lease {
		return p.claim(ctx, lease, string(data), p.claimWait)
	}
	ok, err := p.putOwned(ctx, lease, string(data))
	if err == nil && !ok {
		return errKeyMoved
	}
	return err
}

// Stamper is a status that carries the time it is written: stamped only
// when it is, so that an unchanged status compares equal.
type Stamper interface{ Stamp(time.Time) }

// exists reports whether the status key is still there (true when etcd
// cannot say: the next write tells).
func (p *Publisher) exists(ctx context.Context) bool {
	gctx, cancel := context.WithTimeout(ctx, p.interval)
	defer cancel()
	resp, err := p.cli.Get(gctx, p.key, clientv3.WithCountOnly())
	return err != nil || resp.Count > 0
}

// signal reports the claim's progress to Claim's channel: nil the first
// time the key is held, ErrWaitingForOther once per wait, an error (after
// which Run returns) once. It never blocks: the channel has room for all.
func (p *Publisher) signal(err error) {
	switch {
	case p.claimed == nil:
		return
	case err == nil && p.held && !p.waited:
		return
	case errors.Is(err, ErrWaitingForOther):
		if p.waited {
			return
		}
		p.waited = true
	default:
		p.waited = false
		p.held = p.held || err == nil
	}
	select {
	case p.claimed <- err:
	default:
	}
}
