package sysagent

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestRunStopsWhileASendIsBlocked: the producer holds a sample (its buffer
// full, Kafka away) when the agent stops: Run returns all the same, and
// the ack that comes after it is gone blocks nobody.
func TestRunStopsWhileASendIsBlocked(t *testing.T) {
	p, _ := fixture(t)
	sending := make(chan func(error), 1)
	send := func(ctx context.Context, topic string, key, value []byte, done func(error)) error {
		sending <- done
		<-ctx.Done() // a producer whose buffers are full
		return ctx.Err()
	}
	a := New("web-1", p, send, Hooks{}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { a.Run(ctx); close(ran) }()
	a.Apply(&Config{Topic: "t", Interval: time.Hour, Collectors: []string{"load"}, BufferSamples: 10})
	done := <-sending // the first sample is taken at once
	cancel()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of its context ending")
	}
	done(nil) // a late ack
}
