package sysagent

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/logagent/logagent/fleet"
)

// Config is what the Sys Agent does: sample with Collectors every
// Interval, send each sample to Topic, and keep at most BufferSamples
// samples while Kafka does not take them.
type Config struct {
	Topic         string
	Interval      time.Duration
	Collectors    []string
	BufferSamples int
}

// SendFunc hands one record to Kafka: key is the host. done is called
// once, with nil when Kafka acknowledged the record, or the reason it can
// never be sent. SendFunc blocks while the producer is full and returns an
// error only when ctx ends.
type SendFunc func(ctx context.Context, topic string, key, value []byte, done func(error)) error

// Hooks observe the Sys Agent (metrics). Any field may be nil.
type Hooks struct {
	Sent    func() // Kafka acknowledged a sample
	Dropped func() // a waiting sample was dropped: the buffer was full
	GivenUp func() // Kafka refused a sample for good
}

// Agent samples the host while its config says so and sends each sample,
// in order, one at a time: the next sample goes to the producer only once
// the previous one is acknowledged. The samples waiting meanwhile (Kafka
// down) are held in a bounded buffer, oldest dropped first.
type Agent struct {
	host  string
	paths Paths
	send  SendFunc
	hooks Hooks
	log   *slog.Logger

	changed chan struct{} // cap 1: the config changed
	queued  chan struct{} // cap 1: a sample was queued

	mu      sync.Mutex
	cfg     *Config // nil: off
	queue   []pending
	limit   int
	dropped int64 // in total
	sent    int64
	latest  *Headline
	burst   int64 // drops since the buffer was last empty (for the log)
	seq     uint64
	failing map[string]string // each collector's error last logged (sampleLoop's)
}

type pending struct {
	topic string
	value []byte
}

// New returns a Sys Agent for host, off until Apply gives it a config.
func New(host string, paths Paths, send SendFunc, hooks Hooks, log *slog.Logger) *Agent {
	return &Agent{host: host, paths: paths, send: send, hooks: hooks, log: log,
		changed: make(chan struct{}, 1), queued: make(chan struct{}, 1)}
}

// Apply switches the Sys Agent on, changes it, or (nil) switches it off.
// Samples taken before stay queued and are sent.
func (a *Agent) Apply(c *Config) {
	a.mu.Lock()
	if c != nil {
		c = &Config{Topic: c.Topic, Interval: c.Interval, Collectors: slices.Clone(c.Collectors), BufferSamples: max(1, c.BufferSamples)}
	}
	a.cfg = c
	a.mu.Unlock()
	signal(a.changed)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run samples and sends until ctx is done. Samples still waiting then are
// dropped: host metrics are not kept across restarts.
func (a *Agent) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { a.sendLoop(ctx) })
	a.sampleLoop(ctx)
	wg.Wait()
}

func (a *Agent) sampleLoop(ctx context.Context) {
	var (
		s        *Sampler
		ticker   *time.Ticker
		tick     <-chan time.Time
		interval time.Duration
	)
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.changed:
			a.mu.Lock()
			c := a.cfg
			a.mu.Unlock()
			if c == nil {
				if s != nil {
					a.log.Info("sys agent off")
					ticker.Stop()
					s, ticker, tick = nil, nil, nil
					a.mu.Lock()
					a.latest = nil
					a.mu.Unlock()
				}
				continue
			}
			a.mu.Lock()
			a.limit = c.BufferSamples
			a.mu.Unlock()
			a.log.Info("sys agent on", "topic", c.Topic, "interval", c.Interval, "collectors", c.Collectors,
				"buffer_samples", c.BufferSamples)
			if s == nil {
				s = NewSampler(a.host, a.paths, c.Collectors)
				ticker = time.NewTicker(c.Interval)
				tick, interval = ticker.C, c.Interval
				// The first sample at once (it has no rates): the put
				// shows in Kafka without waiting an interval.
				a.take(s, c.Topic, time.Now())
				continue
			}
			s.SetCollectors(c.Collectors)
			if c.Interval != interval {
				ticker.Reset(c.Interval)
				interval = c.Interval
			}
		case now := <-tick:
			a.mu.Lock()
			c := a.cfg
			a.mu.Unlock()
			if c != nil {
				a.take(s, c.Topic, now)
			}
		}
	}
}

// take samples the host and queues the record.
func (a *Agent) take(s *Sampler, topic string, now time.Time) {
	r := s.Sample(now)
	a.mu.Lock() // Status reads seq
	a.seq++
	r.Seq = a.seq
	a.mu.Unlock()
	a.logErrors(r.Errors)
	value, err := json.Marshal(r)
	if err != nil {
		a.log.Error("cannot encode a sample; skipped", "err", err)
		return
	}
	h := headline(r)
	a.mu.Lock()
	a.latest = h
	a.queue = append(a.queue, pending{topic: topic, value: value})
	dropped := 0
	for len(a.queue) > a.limit {
		// The buffer is full (Kafka down for longer than it holds, or
		// the buffer made smaller): the oldest samples go.
		a.queue[0] = pending{}
		a.queue = a.queue[1:]
		a.dropped++
		a.burst++
		dropped++
	}
	total, burst := a.dropped, a.burst
	a.mu.Unlock()
	if dropped > 0 {
		for range dropped {
			if a.hooks.Dropped != nil {
				a.hooks.Dropped()
			}
		}
		if burst == int64(dropped) || burst%60 == 0 {
			a.log.Warn("sys sample buffer full (Kafka unreachable); dropping the oldest samples",
				"buffer_samples", a.limit, "dropped_this_outage", burst, "dropped_total", total)
		}
	}
	signal(a.queued)
}

// logErrors logs a collector's error when it starts or changes, and when
// it is gone: a file system that cannot be read would otherwise log a
// line at every sample. The record carries the error every time.
func (a *Agent) logErrors(errs map[string]string) {
	for name, err := range errs {
		if a.failing[name] != err {
			a.log.Warn("sys collector failed; its part of the samples is missing until it works", "collector", name, "err", err)
		}
	}
	for name := range a.failing {
		if _, still := errs[name]; !still {
			a.log.Info("sys collector works again", "collector", name)
		}
	}
	a.failing = errs
}

// next takes the oldest waiting sample, waiting for one.
func (a *Agent) next(ctx context.Context) (pending, bool) {
	for {
		a.mu.Lock()
		if len(a.queue) > 0 {
			p := a.queue[0]
			a.queue[0] = pending{}
			a.queue = a.queue[1:]
			if len(a.queue) == 0 {
				a.burst = 0
			}
			a.mu.Unlock()
			return p, true
		}
		a.mu.Unlock()
		select {
		case <-a.queued:
		case <-ctx.Done():
			return pending{}, false
		}
	}
}

func (a *Agent) sendLoop(ctx context.Context) {
	key := []byte(a.host)
	for {
		p, ok := a.next(ctx)
		if !ok {
			return
		}
		// Buffered: the ack may come after this loop is gone (stopping).
		done := make(chan error, 1)
		if err := a.send(ctx, p.topic, key, p.value, func(err error) { done <- err }); err != nil {
			return
		}
		select {
		case err := <-done:
			if err != nil {
				a.log.Error("sys sample can never be sent to Kafka; skipped", "topic", p.topic, "bytes", len(p.value), "err", err)
				if a.hooks.GivenUp != nil {
					a.hooks.GivenUp()
				}
				continue
			}
			a.mu.Lock()
			a.sent++
			a.mu.Unlock()
			if a.hooks.Sent != nil {
				a.hooks.Sent()
			}
		case <-ctx.Done():
			return
		}
	}
}

// Status is the Sys Agent's state for the agent's status key.
type Status = fleet.SysStatus

// Status returns nil while the Sys Agent is off.
func (a *Agent) Status() *Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg == nil {
		return nil
	}
	return &Status{Topic: a.cfg.Topic, Interval: a.cfg.Interval.String(), Buffered: len(a.queue), Sent: a.sent,
		Dropped: a.dropped, LastSeq: a.seq, Latest: a.latest}
}
