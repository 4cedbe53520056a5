package etcd

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logagent/logagent/fleet"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// publishing is a Publisher of h1's status run by a test, every 50 ms.
type publishing struct {
	t    *testing.T
	f    *fixture
	stop func() // stops the publisher and waits for Run to return
}

func publish(t *testing.T, refresh time.Duration, summary func() any, status func(summary any) (any, any)) *publishing {
	f := newFixture(t)
	p := NewPublisher(Ready(f.cli), "h1", 10*time.Second, 50*time.Millisecond, refresh, summary, status, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return &publishing{t: t, f: f, stop: stop}
}

// version is how many times the status key was written since it was
// created, 0 when there is none.
func (p *publishing) version() int64 {
	resp, err := p.f.cli.Get(context.Background(), fleet.StatusKey("h1"))
	if err != nil {
		p.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].Version
}

func (p *publishing) waitVersion(want int64, within time.Duration) {
	p.t.Helper()
	waitCount(p.t, "status key writes", p.version, want, within)
}

// waitCount waits until n() reaches want.
func waitCount(t *testing.T, what string, n func() int64, want int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for n() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d within %v", what, n(), want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPublisherWritesOnChangeOrRefresh: counters alone are published every
// refresh, a change of the summary within an interval; the key vanishes
// when the publisher stops.
func TestPublisherWritesOnChangeOrRefresh(t *testing.T) {
	t.Parallel()
	var counter, state, summaries atomic.Int64
	summary := func() any { summaries.Add(1); return state.Load() }
	status := func(sum any) (any, any) { return map[string]int64{"state": sum.(int64), "lines": counter.Add(1)}, sum }
	p := publish(t, 2*time.Second, summary, status)
	p.waitVersion(1, 5*time.Second)
	// 20 intervals with only the counter moving: no write (the refresh
	// is 2 s away).
	waitCount(t, "summaries taken", summaries.Load, summaries.Load()+20, 5*time.Second)
	if v := p.version(); v != 1 {
		t.Fatalf("status key written %d times in 20 intervals with only counters changing, want once", v)
	}
	state.Store(1)
	p.waitVersion(2, 3*time.Second) // 60 intervals: slack for a loaded machine
	p.waitVersion(3, 4*time.Second) // the refresh
	p.stop()
	if v := p.version(); v != 0 {
		t.Fatalf("status key still there after the publisher stopped (version %d)", v)
	}
}

// TestPublisherStopRevokesWhenKeepAliveEndsFirst: stopping closes the
// lease's keep-alive channel as well as the context; a publisher busy when
// it stops sees both at once, and must still revoke the lease rather than
// take the closed channel for an expired lease (the key would then stay
// for the whole TTL). Each round loses the race half the time without it.
func TestPublisherStopRevokesWhenKeepAliveEndsFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for round := range 8 {
		var busy atomic.Bool
		entered, release := make(chan struct{}, 1), make(chan struct{})
		summary := func() any {
			if busy.Load() {
				entered <- struct{}{}
				<-release
			}
			return 0
		}
		status := func(sum any) (any, any) { return map[string]int{"round": round}, sum }
		p := NewPublisher(Ready(f.cli), "h1", 10*time.Second, 20*time.Millisecond, time.Minute, summary, status, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		waitCount(t, "status key writes", func() int64 {
			resp, err := f.cli.Get(context.Background(), fleet.StatusKey("h1"))
			if err != nil || len(resp.Kvs) == 0 {
				return 0
			}
			return resp.Kvs[0].Version
		}, 1, 5*time.Second)
		busy.Store(true)
		<-entered
		cancel()
		time.Sleep(100 * time.Millisecond) // the keep-alive channel closes meanwhile
		close(release)
		<-done
		resp, err := f.cli.Get(context.Background(), fleet.StatusKey("h1"))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 0 {
			t.Fatalf("round %d: status key still there after the publisher stopped", round)
		}
	}
}

// TestNextTick: keep-alive answers are passed over; a keep-alive closed
// while ctx is live is a lost lease; closed with ctx done (both ready at
// once, so select picks either) it is always a stop.
func TestNextTick(t *testing.T) {
	t.Parallel()
	answers := make(chan *clientv3.LeaseKeepAliveResponse, 3)
	for range 3 {
		answers <- &clientv3.LeaseKeepAliveResponse{}
	}
	tick := make(chan time.Time, 1)
	go func() {
		for len(answers) > 0 {
			time.Sleep(time.Millisecond)
		}
		tick <- time.Now()
	}()
	if w := NextTick(context.Background(), tick, answers); w != Tick || len(answers) != 0 {
		t.Fatalf("got %v with %d answers left, want the tick after all answers", w, len(answers))
	}
	closed := make(chan *clientv3.LeaseKeepAliveResponse)
	close(closed)
	if w := NextTick(context.Background(), nil, closed); w != LeaseLost {
		t.Fatalf("keep-alive ended with ctx live: got %v, want LeaseLost", w)
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 64 {
		if w := NextTick(stopped, nil, closed); w != Stopped {
			t.Fatalf("try %d: keep-alive closed by the stop: got %v, want Stopped", i, w)
		}
	}
}

// TestPublisherTakesStatusOnlyToWrite: the status, which may be dear (the
// agent stats every file for it), is taken only when the summary changed
// or at the refresh — not at every interval.
func TestPublisherTakesStatusOnlyToWrite(t *testing.T) {
	t.Parallel()
	var state, summaries, statuses atomic.Int64
	summary := func() any { summaries.Add(1); return state.Load() }
	status := func(sum any) (any, any) { statuses.Add(1); return map[string]int64{"state": sum.(int64)}, sum }
	p := publish(t, 2*time.Second, summary, status)
	taken := func(want int64, when string) {
		t.Helper()
		if n := statuses.Load(); n != want {
			t.Fatalf("%s: status taken %d times, want %d (summary taken %d times)", when, n, want, summaries.Load())
		}
	}
	p.waitVersion(1, 5*time.Second)
	taken(1, "first write")
	waitCount(t, "summaries taken", summaries.Load, summaries.Load()+20, 5*time.Second)
	taken(1, "20 intervals without change")
	state.Store(1)
	p.waitVersion(2, 3*time.Second)
	taken(2, "summary changed")
	// The refresh takes the status, and writes it only if it changed:
	// this one did not.
	waitCount(t, "statuses taken", statuses.Load, 3, 4*time.Second)
	if v := p.version(); v != 2 {
		t.Fatalf("an unchanged status was written at the refresh (version %d)", v)
	}
}

// TestPublisherRewritesAStateGoneBeforeTheNextInterval: the status is
// taken after the summary, so it can hold a state that the summary did not
// and that is gone again at the next interval (a file's state flipping
// A→B→A). The next summaries are compared with what was written, so the
// key says A again within an interval, not only at the refresh.
func TestPublisherRewritesAStateGoneBeforeTheNextInterval(t *testing.T) {
	t.Parallel()
	var state, statuses, summaries atomic.Int64
	summary := func() any { summaries.Add(1); return state.Load() }
	status := func(any) (any, any) {
		v := state.Load()
		if statuses.Add(1) == 2 {
			v = 2 // what the files said while the status was taken: 1 → 2 → 1
		}
		return map[string]int64{"state": v}, v
	}
	p := publish(t, time.Minute, summary, status)
	p.waitVersion(1, 5*time.Second)
	state.Store(1)
	p.waitVersion(2, 5*time.Second) // says 2, though the state is 1 again
	p.waitVersion(3, 5*time.Second)
	waitCount(t, "summaries taken", summaries.Load, summaries.Load()+5, 5*time.Second)
	resp, err := p.f.cli.Get(context.Background(), fleet.StatusKey("h1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Kvs[0].Value); got != `{"state":1}` {
		t.Fatalf("the key says %s; the state is 1", got)
	}
}

// An idle agent's status (nothing changed) is not written again at the
// refresh, and a status that is a Stamper is stamped only when written;
// a key deleted by hand is written again at the next refresh.
func TestPublisherSkipsAnUnchangedStatus(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	status := func(sum any) (any, any) { calls.Add(1); return &stamped{Counter: 7}, sum }
	p := publish(t, 100*time.Millisecond, func() any { return 0 }, status)
	p.waitVersion(1, 5*time.Second)
	waitCount(t, "status builds", calls.Load, calls.Load()+10, 10*time.Second) // ten refreshes due
	if v := p.version(); v != 1 {
		t.Fatalf("an unchanged status was written %d times", v)
	}
	resp, err := p.f.cli.Get(context.Background(), fleet.StatusKey("h1"))
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"counter":7,"updated":"20`) {
		t.Fatalf("status not stamped with the time of its write: %v %v", err, resp.Kvs)
	}
	if _, err := p.f.cli.Delete(context.Background(), fleet.StatusKey("h1")); err != nil {
		t.Fatal(err)
	}
	p.waitVersion(1, 5*time.Second) // written again (a new key: version 1)
}

type stamped struct {
	Counter int       `json:"counter"`
	Updated time.Time `json:"updated"`
}

func (s *stamped) Stamp(t time.Time) { s.Updated = t }
