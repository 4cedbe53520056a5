package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/logagent/logagent/utils"
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

// errNotProbed is the state until the first check: brokers that drop
// packets cost 2 s each, so the first check runs in the background
// instead of delaying the agent's start.
var errNotProbed = errors.New("Kafka brokers not probed yet")

func startProber(brokers []string, interval time.Duration, log *slog.Logger) *prober {
	p := &prober{log: log, brokers: brokers, stop: make(chan struct{}), done: make(chan struct{})}
	p.err.Store(&errNotProbed)
	go func() {
		defer close(p.done)
		p.check()
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
			if old := p.err.Swap(nil); old != nil && *old != errNotProbed {
				p.log.Info("Kafka reachable again", "broker", b)
			}
			return
		}
		errs = append(errs, b+": "+utils.PlainNet(err))
	}
	err := fmt.Errorf("no broker reachable: %s (is Kafka running? check [kafka] brokers)", strings.Join(errs, "; "))
	if old := p.err.Swap(&err); old == nil || *old == errNotProbed {
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
