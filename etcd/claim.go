package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/logagent/logagent/fleet"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// HostTakenError is the claim of a host whose status key another agent
// holds.
type HostTakenError struct {
	Host  string
	Other fleet.Owner
}

func (e *HostTakenError) Error() string {
	o := e.Other
	return fmt.Sprintf("host %q is in use by another running agent (machine %s, pid %d, started %s, instance %s): "+
		"give this one another [agent] host, or stop that one", e.Host, o.Machine, o.PID, o.StartTime.Format(time.RFC3339), o.Instance)
}

// lastSeenEvery is how often a running agent rewrites LastSeenKey: rarely,
// since each write is a revision kept until compaction; the leased status
// says whether it runs now.
const lastSeenEvery = 5 * time.Minute

// ownerDoc is the part of a status document a claim reads.
type ownerDoc struct {
	Owner fleet.Owner `json:"owner"`
}

// claim writes data at the status key under lease if the key is free,
// already under lease, or held by an earlier run of the same instance. A
// key held by another instance is waited for (it may be an agent being
// stopped) up to wait, then the claim fails with *HostTakenError.
func (p *Publisher) claim(ctx context.Context, lease clientv3.LeaseID, data string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	logged := false
	for {
		tctx, cancel := context.WithTimeout(ctx, p.interval)
		resp, err := p.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(p.key), "=", 0)).
			Then(clientv3.OpPut(p.key, data, clientv3.WithLease(lease))).
			Else(clientv3.OpGet(p.key)).Commit()
		cancel()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue // deleted between the compare and the get
		}
		kv := kvs[0]
		var other ownerDoc
		json.Unmarshal(kv.Value, &other) // a foreign value has no owner: not ours
		if kv.Lease == int64(lease) || (p.owner.Instance != "" && other.Owner.Instance == p.owner.Instance) {
			// Ours: under this lease, or left by this instance's earlier
			// run (a crash: its lease has not expired yet). The put moves
			// the key to this lease.
			return p.guardedPut(ctx, lease, data, kv.ModRevision)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &HostTakenError{Host: p.host, Other: other.Owner}
		}
		if !logged {
			// The other's status writes end each wait: said once.
			p.log.Warn("another agent holds this host's status key; waiting for it to go", "other", other.Owner, "wait", left.Round(time.Second))
			logged = true
		}
		p.signal(ErrWaitingForOther)
		if err := p.awaitChange(ctx, kv.ModRevision, left); err != nil {
			return err
		}
	}
}

// guardedPut puts data under lease if the key is still at modRev.
func (p *Publisher) guardedPut(ctx context.Context, lease clientv3.LeaseID, data string, modRev int64) error {
	tctx, cancel := context.WithTimeout(ctx, p.interval)
	defer cancel()
	resp, err := p.cli.Txn(tctx).
		If(clientv3.Compare(clientv3.ModRevision(p.key), "=", modRev)).
		Then(clientv3.OpPut(p.key, data, clientv3.WithLease(lease))).Commit()
	if err == nil && !resp.Succeeded {
		return errKeyMoved
	}
	return err
}

// ErrWaitingForOther is sent on Claim's channel when the claim starts
// waiting for another agent's key to go: not an outcome yet.
var ErrWaitingForOther = errors.New("waiting for another agent with this host to stop")

// errKeyMoved: the status key changed under a write; the next one claims
// it again.
var errKeyMoved = fmt.Errorf("the status key changed meanwhile; claiming it again")

// awaitChange returns once the key changes after rev, or after d.
func (p *Publisher) awaitChange(ctx context.Context, rev int64, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for range p.cli.Watch(wctx, p.key, clientv3.WithRev(rev+1)) {
		return nil
	}
	return ctx.Err()
}

// putOwned writes data if the key is still under lease (the agent's own).
// It reports false when it is not: deleted by hand, or taken by another
// agent while this one's lease had expired; the caller claims it again.
func (p *Publisher) putOwned(ctx context.Context, lease clientv3.LeaseID, data string) (bool, error) {
	tctx, cancel := context.WithTimeout(ctx, p.interval)
	defer cancel()
	resp, err := p.cli.Txn(tctx).
		If(clientv3.Compare(clientv3.LeaseValue(p.key), "=", lease)).
		Then(clientv3.OpPut(p.key, data, clientv3.WithLease(lease))).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// putLastSeen writes LastSeenKey (no lease).
func (p *Publisher) putLastSeen(ctx context.Context, state string) error {
	data, err := json.Marshal(fleet.LastSeen{Time: time.Now().UTC(), State: state, Version: p.version, Owner: p.owner})
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, p.interval)
	defer cancel()
	_, err = p.cli.Put(tctx, fleet.LastSeenKey(p.host), string(data))
	return err
}
