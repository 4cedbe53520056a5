package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// prober checks every interval that at least one broker accepts a TCP
// connection, so that health turns bad when Kafka goes away even while no
// line is being sent.
type prober struct {
	log     *slog.Logger
	brokers []string
	err     atomic.Pointer[error]
	stop    chan struct{}
	done    chan struct{}
}

func startProber(brokers []string, interval time.Duration, log *slog.Logger) *prober {
	p := &prober{log: log, brokers: brokers, stop: make(chan struct{}), done: make(chan struct{})}
	p.check()
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.check()
			}
		}
	}()
	return p
}

func (p *prober) check() {
	var errs []string
	for _, b := range p.brokers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", b)
		cancel()
		if err == nil {
			c.Close()
			if p.err.Swap(nil) != nil {
				p.log.Info("Kafka reachable again", "broker", b)
			}
			return
		}
		errs = append(errs, err.Error())
	}
	err := fmt.Errorf("no broker reachable: %s", strings.Join(errs, "; "))
	if p.err.Swap(&err) == nil {
		p.log.Error("Kafka unreachable; lines wait in the buffer, then reading pauses", "err", err)
	}
}

func (p *prober) Err() error {
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (p *prober) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
