package etcd

import (
	"context"
	"log/slog"

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
}

// Ready wraps a client that is made already.
func Ready(cli *clientv3.Client) *Client {
	c := &Client{ready: make(chan struct{}), cli: cli, cancel: func() {}, done: make(chan struct{})}
	close(c.ready)
	close(c.done)
	return c
}

// Dial calls connect until it returns a client, with a backoff between
// attempts, and logs the first failure and the success.
func Dial(connect func() (*clientv3.Client, error), log *slog.Logger) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{ready: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for attempt := 1; ; attempt++ {
			cli, err := connect()
			if err == nil {
				c.cli = cli
				close(c.ready)
				if attempt > 1 {
					log.Info("connected to etcd")
				}
				return
			}
			if attempt == 1 {
				log.Error("cannot connect to etcd; running on the cached collect config and retrying", "err", err)
			}
			if !sleep(ctx, backoff(attempt)) {
				return
			}
		}
	}()
	return c
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
