package etcd

import (
	"context"
	"log/slog"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Client is the agent's etcd client, made perhaps after the agent started.
// Without authentication clientv3.New does not wait for etcd; with a
// username and password it authenticates at once and fails while etcd is
// unreachable. The agent must start on its cached config then, as it does
// without authentication: Dial makes the client in the background, again
// and again, until etcd answers.
type Client struct {
	ready  chan struct{}
	cli    *clientv3.Client // set before ready is closed
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	lastErr error // why the client is not made yet
}

// Ready wraps a client that is made already.
func Ready(cli *clientv3.Client) *Client {
	c := &Client{ready: make(chan struct{}), cli: cli, cancel: func() {}, done: make(chan struct{})}
	close(c.ready)
	close(c.done)
	return c
}

// Dial calls connect until it returns a client, with a backoff between
// attempts; first is the error of an attempt made already. Each new kind of
// failure is logged (etcd down, then a wrong password once it answers).
// connect's context ends with Close.
func Dial(first error, connect func(context.Context) (*clientv3.Client, error), log *slog.Logger) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{ready: make(chan struct{}), cancel: cancel, done: make(chan struct{}), lastErr: first}
	go func() {
		defer close(c.done)
		logged := ""
		err := first
		for attempt := 1; ; attempt++ {
			if err != nil {
				c.mu.Lock()
				c.lastErr = err
				c.mu.Unlock()
				if msg := err.Error(); msg != logged {
					log.Error("cannot connect to etcd; running on the cached collect config and retrying", "err", err)
					logged = msg
				}
				if !sleep(ctx, backoff(attempt)) {
					return
				}
			}
			cli, cerr := connect(ctx)
			if cerr == nil {
				if ctx.Err() != nil {
					cli.Close()
					return
				}
				c.cli = cli
				close(c.ready)
				log.Info("connected to etcd")
				return
			}
			err = cerr
		}
	}()
	return c
}

// Err says why the client is not made yet (nil once it is).
func (c *Client) Err() error {
	if c.Now() != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Wait returns the client once it is made, or ctx's error.
func (c *Client) Wait(ctx context.Context) (*clientv3.Client, error) {
	select {
	case <-c.ready:
		return c.cli, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Now returns the client, or nil while it is not made yet.
func (c *Client) Now() *clientv3.Client {
	select {
	case <-c.ready:
		return c.cli
	default:
		return nil
	}
}

// Close stops dialing and closes the client.
func (c *Client) Close() {
	c.cancel()
	<-c.done
	if cli := c.Now(); cli != nil {
		cli.Close()
	}
}
