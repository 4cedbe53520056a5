package etcd

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestPublisherWritesOnChangeOrRefresh: counters alone are published every
// refresh, a change of the summary within an interval; the key vanishes
// when the publisher stops.
func TestPublisherWritesOnChangeOrRefresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var counter, state atomic.Int64
	status := func() any { return map[string]int64{"state": state.Load(), "lines": counter.Add(1)} }
	summary := func(st any) any { return st.(map[string]int64)["state"] }
	p := NewPublisher(Ready(f.cli), "h1", 10*time.Second, 50*time.Millisecond, 2*time.Second, status, summary, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	version := func() int64 {
		resp, err := f.cli.Get(context.Background(), StatusKey("h1"))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return 0
		}
		return resp.Kvs[0].Version // puts since the key was created
	}
	waitVersion := func(want int64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for version() < want {
			if time.Now().After(deadline) {
				t.Fatalf("status key written %d times, want %d within %v", version(), want, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitVersion(1, 5*time.Second)
	// 20 intervals with only the counter moving: no write (the refresh
	// is 2 s away).
	time.Sleep(time.Second)
	if v := version(); v != 1 {
		t.Fatalf("status key written %d times in 1 s with only counters changing, want once", v)
	}
	state.Store(1)
	waitVersion(2, 3*time.Second) // 60 intervals: slack for a loaded machine
	waitVersion(3, 4*time.Second) // the refresh
	cancel()
	<-done
	if v := version(); v != 0 {
		t.Fatalf("status key still there after the publisher stopped (version %d)", v)
	}
}
