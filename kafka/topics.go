package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrNotSent is the ack error of a message dropped by Forget: its topic is
// no longer collected, and its line is read again by whoever reads the
// file now (issue #25).
var ErrNotSent = errors.New("not sent: its topic is no longer collected")

// TopicStatus is what the producer knows of one topic Kafka refuses.
type TopicStatus struct {
	Topic string
	Err   error     // the last refusal
	Since time.Time // refused since
	// Waiting is how many records of the topic wait (held back, or
	// refused and to be sent again).
	Waiting int
}

// Reason says in plain words why Kafka refuses the topic.
func (s TopicStatus) Reason() string { return Explain(s.Topic, s.Err) }

// Explain says in plain words why Kafka refuses topic's records with err.
func Explain(topic string, err error) string {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID),
		errors.Is(err, sarama.ErrUnknownTopicOrPartition):
		return fmt.Sprintf("topic %s does not exist on the brokers", topic)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, sarama.ErrTopicAuthorizationFailed):
		return fmt.Sprintf("the agent is not authorised to write to topic %s", topic)
	case errors.Is(err, sarama.ErrOutOfBrokers):
		return fmt.Sprintf("no broker of topic %s can be reached", topic)
	case errors.Is(err, kerr.LeaderNotAvailable), errors.Is(err, kerr.NotLeaderForPartition),
		errors.Is(err, sarama.ErrLeaderNotAvailable), errors.Is(err, sarama.ErrNotLeaderForPartition):
		return fmt.Sprintf("topic %s has a partition without a leader", topic)
	}
	return fmt.Sprintf("Kafka refuses records for topic %s: %v", topic, err)
}

// known reports whether Explain has plain words for err: a later,
// vaguer error (sarama's "circuit breaker is open") does not replace it.
func known(err error) bool {
	var k *kerr.Error
	var s sarama.KError
	return errors.As(err, &k) || errors.As(err, &s)
}

// gate keeps each topic's records in order across refusals, and keeps a
// topic Kafka refuses from stalling the others (issue #25). A topic's
// records go straight to the client while Kafka takes them. Once one is
// refused (the topic does not exist, is not authorised, has no leader),
// the topic's new records are held here, not handed to the client — whose
// buffers the other topics share — and, once the topic's records still in
// the client are back, the oldest waiting record alone is sent again,
// with a growing backoff, as a probe. When Kafka takes it, the rest
// follow in order and the topic's records go straight again. A topic's
// first record is such a probe too. What is held is bounded by the
// caller's read budget (the tail manager holds a refused topic to a share
// of it), and nothing is dropped: held records wait until Kafka takes
// them or the producer closes (then their lines are read again).
type gate struct {
	// send hands m to the client; it blocks while the client is full and
	// fails only when the producer closes.
	send  func(m *Message) error
	ack   AckFunc
	hooks Hooks
	log   *slog.Logger
	first time.Duration

	mu     sync.Mutex
	topics map[string]*topicGate
	seq    uint64
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

type topicGate struct {
	name string
	// ok: Kafka took a record and refused none since. With nothing held
	// and no flush running, records go straight to the client.
	ok       bool
	flushing bool
	dropping bool       // Forget: its records are acked with ErrNotSent
	inClient int        // records handed to the client, outcome pending
	failed   []*Message // refused, to be sent again
	held     []*Message // waiting, in order
	err      error
	since    time.Time
	attempt  int
	next     time.Time // the next probe, after a refusal
}

func newGate(send func(*Message) error, ack AckFunc, hooks Hooks, first time.Duration, log *slog.Logger) *gate {
	g := &gate{send: send, ack: ack, hooks: hooks, first: first, log: log, topics: map[string]*topicGate{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	return g
}

// admit numbers m and reports whether the caller hands it to the client
// now; if not, the gate holds it and sends it later.
func (g *gate) admit(m *Message) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	m.seq = g.seq
	t := g.topics[m.Topic]
	if t == nil {
		t = &topicGate{name: m.Topic}
		g.topics[m.Topic] = t
	}
	t.dropping = false
	switch {
	case t.ok && !t.flushing && len(t.held) == 0:
	case !t.ok && t.err == nil && t.inClient == 0 && len(t.held) == 0 && len(t.failed) == 0:
		// A new topic: this record probes it.
	default:
		t.held = append(t.held, m)
		return false
	}
	t.inClient++
	return true
}

// taken: Kafka acknowledged m.
func (g *gate) taken(m *Message) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.topics[m.Topic]
	t.inClient--
	if t.ok {
		return
	}
	if len(t.failed) > 0 {
		if t.inClient == 0 {
			g.poke() // the refused ones can be sent again now
		}
		return
	}
	t.ok = true
	t.attempt = 0
	if t.err != nil {
		g.log.Info("Kafka takes the topic again; its waiting lines follow in order", "topic", t.name, "waiting", len(t.held),
			"refused_for", time.Since(t.since).Round(time.Second))
	}
	t.err = nil
	if g.hooks.Topic != nil {
		g.hooks.Topic(t.name, nil)
	}
	if len(t.held) > 0 {
		g.poke()
	}
}

// settled: m left the client without being taken or refused (given up
// for good, or the producer is closing).
func (g *gate) settled(m *Message) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := g.topics[m.Topic]; t != nil {
		t.inClient--
		if t.inClient == 0 {
			g.poke()
		}
	}
}

// refused: Kafka refused m for a reason that may pass. It is sent again,
// before anything of its topic sent after it.
func (g *gate) refused(m *Message, err error) {
	g.mu.Lock()
	t := g.topics[m.Topic]
	t.inClient--
	if t.dropping {
		g.mu.Unlock()
		g.ack(m, ErrNotSent)
		return
	}
	defer g.mu.Unlock()
	t.failed = append(t.failed, m)
	now := time.Now()
	if t.ok || t.err == nil {
		t.ok = false
		t.since = now
		t.err = err
		g.log.Warn("Kafka refuses the topic; reading its files pauses once they hold their share of the buffer, its lines wait and are sent again, other topics go on",
			"topic", t.name, "reason", Explain(t.name, err), "err", err)
		if g.hooks.Topic != nil {
			g.hooks.Topic(t.name, err)
		}
	} else if known(err) || !known(t.err) {
		t.err = err
	}
	// The backoff grows with the probes refused, not with the records:
	// many in the client may come back refused at once.
	t.next = now.Add(backoff(g.first, t.attempt+1))
	g.poke()
}

func (g *gate) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Topics is the state of every topic Kafka refuses, sorted by topic.
func (g *gate) Topics() []TopicStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []TopicStatus
	for _, t := range g.topics {
		if t.err != nil && !t.dropping {
			// A refused topic's records in the client are probes.
			out = append(out, TopicStatus{Topic: t.name, Err: t.err, Since: t.since, Waiting: len(t.held) + len(t.failed) + t.inClient})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}

// Forget acks with ErrNotSent the waiting records of every topic not in
// use: a topic corrected in etcd leaves its lines in memory, and its
// files are read again for the new topic.
func (g *gate) Forget(inUse []string) {
	g.forget(inUse)
}

// forget is Forget; it returns the topics it dropped records of.
func (g *gate) forget(inUse []string) (dropped []string) {
	var q []*Message
	g.mu.Lock()
	for _, t := range g.topics {
		if t.ok || t.dropping || slices.Contains(inUse, t.name) {
			continue
		}
		dropped = append(dropped, t.name)
		t.dropping = true
		q = append(q, t.failed...)
		q = append(q, t.held...)
		t.failed, t.held = nil, nil
	}
	g.mu.Unlock()
	// Outside mu: the caller's ack takes its own locks.
	for _, m := range q {
		g.ack(m, ErrNotSent)
	}
	return dropped
}

// run sends held and refused records again; it ends when close is called.
func (g *gate) run() {
	defer close(g.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-g.wake:
		case <-timer.C:
		}
		next, ok := g.round()
		if !ok {
			return
		}
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
	}
}

// round does what is due for every topic and returns when the next probe
// is due (zero: none).
func (g *gate) round() (next time.Time, ok bool) {
	g.mu.Lock()
	ts := make([]*topicGate, 0, len(g.topics))
	for _, t := range g.topics {
		ts = append(ts, t)
	}
	g.mu.Unlock()
	for _, t := range ts {
		due, ok := g.advance(t)
		if !ok {
			return time.Time{}, false
		}
		if !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	return next, true
}

// advance sends what is due of t: its held records once Kafka takes it,
// else a probe once its backoff is over. It returns when to come back.
func (g *gate) advance(t *topicGate) (time.Time, bool) {
	g.mu.Lock()
	if t.inClient > 0 {
		// Wait for every record in the client: a refused one must be
		// sent again before those held after it.
		g.mu.Unlock()
		return time.Time{}, true
	}
	if len(t.failed) > 0 {
		// Held records came after every record that was in the client.
		sort.Slice(t.failed, func(i, j int) bool { return t.failed[i].seq < t.failed[j].seq })
		t.held = append(t.failed, t.held...)
		t.failed = nil
	}
	if len(t.held) == 0 {
		g.mu.Unlock()
		return time.Time{}, true
	}
	if !t.ok {
		if wait := time.Until(t.next); wait > 0 {
			g.mu.Unlock()
			return t.next, true
		}
		probe := t.held[0]
		t.held = t.held[1:]
		t.inClient++
		t.attempt++
		g.mu.Unlock()
		if g.hooks.Retry != nil {
			g.hooks.Retry()
		}
		return time.Time{}, g.send(probe) == nil
	}
	// Kafka takes the topic: its held records go in order, and so do
	// those admitted meanwhile, before records go straight again.
	t.flushing = true
	// A refusal meanwhile stops the flush: the rest waits for a probe.
	for t.ok && len(t.held) > 0 {
		q := t.held
		t.held = nil
		t.inClient += len(q)
		g.mu.Unlock()
		for _, m := range q {
			if g.send(m) != nil {
				return time.Time{}, false
			}
		}
		g.mu.Lock()
	}
	t.flushing = false
	g.mu.Unlock()
	return time.Time{}, true
}

// close stops the gate's goroutine. Held records are not acked: their
// lines are read again on the next start.
func (g *gate) close() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
}

// dropped reports whether m's topic was let go by Forget; if so it acks
// m with ErrNotSent and settles it. The backends ask it of a record they
// would produce again on their own (purged, or refused as too large).
func (g *gate) dropped(m *Message) bool {
	g.mu.Lock()
	t := g.topics[m.Topic]
	if t == nil || !t.dropping {
		g.mu.Unlock()
		return false
	}
	t.inClient--
	if t.inClient == 0 {
		g.poke()
	}
	g.mu.Unlock()
	g.ack(m, ErrNotSent)
	return true
}

// refusedInClient is how many records of topics Kafka refuses are in the
// client: the gate keeps their order itself (it sends one such record at
// a time), so a backend waiting for its records to come back need not
// wait for these, which may take long (a partition without a leader).
func (g *gate) refusedInClient() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, t := range g.topics {
		if !t.ok && t.err != nil {
			n += int64(t.inClient)
		}
	}
	return n
}
