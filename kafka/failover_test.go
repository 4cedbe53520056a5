package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/internal/testenv"
)

// A partition's leader fails the record's sends (it answers
// NOT_LEADER_FOR_PARTITION without naming a new leader, or its connection
// drops) several times while the metadata still names it, as between a
// broker's crash and the election of the next leader; then the partition
// moves to another broker. The record is sent to the new leader soon
// after, not after a wait that grew with the failures: the retries of a
// send whose leader moved do not back off as for a cluster that is down
// (issue #21 item 6). It is acked once, after the record sent before it.
//
// The bound is not a performance target. After `fails` failures the old
// backoff (retry_backoff doubling per attempt, and franz-go looking the
// leader up again at most every 5 s) could not send the record again
// before oldWait; the new one sends it within about two retry_backoff. The
// bound sits between them, far from both.
func TestLeaderMovedIsRetriedSoon(t *testing.T) {
	const (
		first   = 50 * time.Millisecond // retry_backoff
		fails   = 7
		oldWait = first << (fails - 1) // 3.2 s: kgo's metadata min age (5 s) is longer
		bound   = oldWait / 2
	)
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		for _, how := range []string{"not leader", "connection lost"} {
			t.Run(client+"/"+how, func(t *testing.T) {
				c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, "moved"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				addrs := c.ListenAddrs()
				p, a := newProducer(t, client, addrs, func(k *conf.Kafka) { k.RetryBackoff = first })
				defer p.Close(context.Background())
				send := func(v string) {
					if err := p.Send(context.Background(), &Message{Topic: "moved", Value: []byte(v)}); err != nil {
						t.Fatal(err)
					}
				}
				send("before") // the leader is known and connected
				a.wait(t, 1)

				old := c.LeaderFor("moved", 0)
				var failed atomic.Int32
				var moved atomic.Bool
				enough := make(chan struct{})
				c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
					c.KeepControl()
					if moved.Load() || c.CurrentNode() != old {
						return nil, nil, false
					}
					if failed.Add(1) == fails {
						close(enough)
					}
					if how == "connection lost" {
						return nil, errors.New("leader gone"), true
					}
					return refuseProduce(kreq, kerr.NotLeaderForPartition), nil, true
				})
				send("after")
				select {
				case <-enough:
				case <-time.After(time.Minute):
					t.Fatalf("the leader failed only %d sends in a minute, want %d", failed.Load(), fails)
				}
				next := (old + 1) % 3
				if err := c.MoveTopicPartition("moved", 0, next); err != nil {
					t.Fatal(err)
				}
				moved.Store(true)
				movedAt := time.Now()
				select {
				case <-a.c:
				case <-time.After(bound):
					t.Fatalf("not acked within %s of the leader's move (after %d failed sends); the old backoff waited %s or more",
						bound, failed.Load(), oldWait)
				}
				t.Logf("acked %s after the leader moved from node %d to %d, after %d failed sends",
					time.Since(movedAt).Round(time.Millisecond), old, next, failed.Load())
				if len(a.errs) != 0 {
					t.Fatalf("ack errors: %v", a.errs)
				}
				rs := consume(t, addrs, "moved", 2)
				if got := fmt.Sprintf("%s %s", rs[0].Value, rs[1].Value); got != "before after" {
					t.Fatalf("records %q, want \"before after\", each once", got)
				}
			})
		}
	}
}

// The wait before a retry stays at retry_backoff while a broker answers
// (a leader moved: the cluster can say where) and doubles up to 10 s while
// none does (the cluster is down: no hot loop).
func TestRetryWait(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	down := startProber([]string{fmt.Sprintf("127.0.0.1:%d", port)}, time.Hour, log)
	defer down.Stop()
	k := startKafka(t)
	up := startProber(k.Addrs, time.Hour, log)
	defer up.Stop()
	for _, p := range []*prober{down, up} {
		p.Stop() // its first check is done
	}
	first := 100 * time.Millisecond
	for _, tc := range []struct {
		probe   *prober
		attempt int
		want    time.Duration
	}{
		{up, 1, first}, {up, 2, first}, {up, 50, first},
		{down, 1, first}, {down, 2, 2 * first}, {down, 4, 8 * first}, {down, 50, 10 * time.Second},
		{nil, 4, 8 * first}, // not known yet: as down
	} {
		r := retryPolicy{first: first, probe: tc.probe}
		if got := r.wait(tc.attempt); got != tc.want {
			t.Errorf("wait(%d) with brokers %s = %s, want %s", tc.attempt, map[*prober]string{up: "up", down: "down"}[tc.probe], got, tc.want)
		}
	}
}
