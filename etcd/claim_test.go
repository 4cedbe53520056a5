package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/logagent/logagent/fleet"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// claimer is a publisher of h1's status as owner, run by a test.
type claimer struct {
	claimed <-chan error
	stop    func()
	waited  bool
}

func startClaimer(t *testing.T, f *fixture, owner fleet.Owner, wait time.Duration) *claimer {
	t.Helper()
	status := func(any) (any, any) { return map[string]any{"owner": owner}, nil }
	p := NewPublisher(Ready(f.cli), "h1", 2*time.Second, 50*time.Millisecond, time.Hour,
		func() any { return nil }, status, slog.New(slog.DiscardHandler))
	claimed := p.Claim(owner, "v1", wait)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return &claimer{claimed: claimed, stop: stop}
}

// result is the claim's outcome: nil or an error other than
// ErrWaitingForOther (which it reports in waited).
func (c *claimer) result(t *testing.T, within time.Duration) error {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case err := <-c.claimed:
			if errors.Is(err, ErrWaitingForOther) {
				c.waited = true
				continue
			}
			return err
		case <-deadline:
			t.Fatalf("no claim outcome within %v", within)
			return nil
		}
	}
}

func statusOwner(t *testing.T, cli *clientv3.Client) (fleet.Owner, int64) {
	t.Helper()
	resp, err := cli.Get(context.Background(), fleet.StatusKey("h1"))
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("status key: %v, %d keys", err, len(resp.Kvs))
	}
	var d ownerDoc
	json.Unmarshal(resp.Kvs[0].Value, &d)
	return d.Owner, resp.Kvs[0].Lease
}

// A second agent with the same host is refused, naming the first, and the
// first keeps its key.
func TestClaimRefusesASecondAgent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first := fleet.Owner{Instance: "aaaa", Machine: "m1", PID: 11, StartTime: time.Now()}
	a := startClaimer(t, f, first, time.Second)
	if err := a.result(t, 10*time.Second); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	b := startClaimer(t, f, fleet.Owner{Instance: "bbbb", Machine: "m2", PID: 22}, 300*time.Millisecond)
	err := b.result(t, 10*time.Second)
	var taken *HostTakenError
	if !errors.As(err, &taken) || taken.Other.Instance != "aaaa" || taken.Other.Machine != "m1" || taken.Other.PID != 11 || !b.waited {
		t.Fatalf("second claim: %v (waited %v), want a HostTakenError naming m1 pid 11 after a wait", err, b.waited)
	}
	if got, _ := statusOwner(t, f.cli); got.Instance != "aaaa" {
		t.Fatalf("the status key's owner is %+v after the refused claim", got)
	}
}

// The same instance restarted after a crash (its key still under the dead
// run's lease) takes the key over at once, and the old lease's expiry no
// longer deletes it.
func TestClaimTakesOverItsOwnEarlierRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(map[string]any{"owner": fleet.Owner{Instance: "aaaa", PID: 1}})
	if _, err := f.cli.Put(ctx, fleet.StatusKey("h1"), string(old), clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	c := startClaimer(t, f, fleet.Owner{Instance: "aaaa", PID: 2}, 0)
	if err := c.result(t, 10*time.Second); err != nil {
		t.Fatalf("claim by the same instance: %v", err)
	}
	owner, lease := statusOwner(t, f.cli)
	if owner.PID != 2 || lease == int64(g.ID) {
		t.Fatalf("key owner %+v under lease %x, want pid 2 under a new lease", owner, lease)
	}
	if _, err := f.cli.Revoke(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if owner, _ := statusOwner(t, f.cli); owner.PID != 2 {
		t.Fatalf("owner %+v after the old lease ended", owner)
	}
}

// A second agent waits for a first that is stopping, and then runs.
func TestClaimWaitsForAStoppingAgent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := startClaimer(t, f, fleet.Owner{Instance: "aaaa"}, 0)
	if err := a.result(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	b := startClaimer(t, f, fleet.Owner{Instance: "bbbb"}, 20*time.Second)
	if err := <-b.claimed; !errors.Is(err, ErrWaitingForOther) {
		t.Fatalf("second claim answered %v while the first runs, want ErrWaitingForOther", err)
	}
	a.stop() // revokes its lease: the key goes at once
	if err := b.result(t, 10*time.Second); err != nil {
		t.Fatalf("claim after the first stopped: %v", err)
	}
	if owner, _ := statusOwner(t, f.cli); owner.Instance != "bbbb" {
		t.Fatalf("owner %+v", owner)
	}
}

// last_seen says running while the agent runs and stopped after a clean
// stop, when the leased status is gone.
func TestLastSeen(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	get := func() fleet.LastSeen {
		t.Helper()
		resp, err := f.cli.Get(context.Background(), fleet.LastSeenKey("h1"))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("last_seen: %v, %d keys", err, len(resp.Kvs))
		}
		if resp.Kvs[0].Lease != 0 {
			t.Fatalf("last_seen is under a lease")
		}
		var ls fleet.LastSeen
		if err := json.Unmarshal(resp.Kvs[0].Value, &ls); err != nil {
			t.Fatal(err)
		}
		return ls
	}
	c := startClaimer(t, f, fleet.Owner{Instance: "aaaa", Machine: "m1"}, 0)
	if err := c.result(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitCount(t, "last_seen writes", func() int64 {
		resp, _ := f.cli.Get(context.Background(), fleet.LastSeenKey("h1"))
		return resp.Count
	}, 1, 5*time.Second)
	if ls := get(); ls.State != fleet.LastSeenRunning || ls.Owner.Machine != "m1" || ls.Version != "v1" {
		t.Fatalf("last_seen while running: %+v", ls)
	}
	c.stop()
	if ls := get(); ls.State != fleet.LastSeenStopped || time.Since(ls.Time) > time.Minute {
		t.Fatalf("last_seen after a clean stop: %+v", ls)
	}
	if resp, _ := f.cli.Get(context.Background(), fleet.StatusKey("h1")); resp.Count != 0 {
		t.Fatal("status key still there after a clean stop")
	}
}
