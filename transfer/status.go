package transfer

import (
	"context"
	"encoding/json"
	"time"

	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Status is the document at /logtransfer/<instance>/status.
type Status struct {
	Instance     string             `json:"instance"`
	Version      string             `json:"version"`
	Started      time.Time          `json:"started"`
	Group        string             `json:"group"`
	Routes       []Route            `json:"routes"`
	Assigned     map[string][]int32 `json:"assigned"`
	Consumed     int64              `json:"consumed"`
	Indexed      int64              `json:"indexed"`
	DeadLettered int64              `json:"dead_lettered"`
	LastDLQ      string             `json:"last_dead_letter_reason,omitempty"`
	BulkError    string             `json:"bulk_error,omitempty"`
	ConfigRev    int64              `json:"config_revision"`
	ConfigError  string             `json:"config_error,omitempty"`
	Problems     []string           `json:"config_problems,omitempty"`
}

// Status returns the transfer's status now.
func (t *Transfer) Status() Status {
	fs := t.feed.State()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := Status{Instance: t.instance, Version: t.version, Started: t.started, Group: t.cfg.Kafka.Group,
		Routes: t.current, Assigned: map[string][]int32{}, Consumed: t.consumed, Indexed: t.indexed,
		DeadLettered: t.dlqCount, LastDLQ: t.lastDLQ,
		ConfigRev: fs.Revision, ConfigError: fs.LastError, Problems: fs.Problems}
	for k, v := range t.assigned {
		st.Assigned[k] = append([]int32(nil), v...)
	}
	if t.bulkErr != nil {
		st.BulkError = t.bulkErr.Error()
	}
	return st
}

// Status publishing: the key lives under a lease of statusTTL, so that it
// vanishes when the transfer dies; it is rewritten every statusInterval
// (the counters move all the time; a transfer per group, not per host,
// keeps that cheap for etcd).
const (
	statusTTL      = 15 * time.Second
	statusInterval = 5 * time.Second
)

// publishStatus keeps the status key until ctx is done, then revokes it.
func (t *Transfer) publishStatus(ctx context.Context) {
	cli, err := t.etcd.Wait(ctx)
	if err != nil {
		return
	}
	key := fleet.TransferStatusKey(t.instance)
	var lease clientv3.LeaseID
	var alive <-chan *clientv3.LeaseKeepAliveResponse
	defer func() {
		if lease != 0 {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			cli.Revoke(rctx, lease)
			cancel()
		}
	}()
	tick := time.NewTicker(statusInterval)
	defer tick.Stop()
	failing := false
	for {
		if lease == 0 {
			gctx, cancel := context.WithTimeout(ctx, statusInterval)
			g, err := cli.Grant(gctx, int64(statusTTL/time.Second))
			cancel()
			if err == nil {
				if alive, err = cli.KeepAlive(ctx, g.ID); err == nil {
					lease = g.ID
				}
			}
		}
		if lease != 0 {
			data, _ := json.Marshal(t.Status())
			pctx, cancel := context.WithTimeout(ctx, statusInterval)
			_, err := cli.Put(pctx, key, string(data), clientv3.WithLease(lease))
			cancel()
			switch {
			case err != nil && !failing && ctx.Err() == nil:
				t.log.Warn("cannot publish status; retrying", "key", key, "err", err)
				failing = true
			case err == nil && failing:
				t.log.Info("status published again", "key", key)
				failing = false
			}
		}
		switch etcd.NextTick(ctx, tick.C, alive) {
		case etcd.Stopped:
			return
		case etcd.LeaseLost:
			lease, alive = 0, nil
		}
	}
}
