// Package kafka sends records to Kafka and reports each acknowledgement
// back to the caller. It knows nothing of files: a record's Meta is handed
// back untouched in the ack.
//
// Two backends sit behind Producer: franz-go (the default) and sarama.
// Both retry a failed send until it succeeds or the producer is closed; a
// record is only given up when Kafka can never take it (too large by
// itself: a batch refused as too large is sent again in smaller batches),
// and then the ack carries the error.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/eapache/go-resiliency/breaker"

	"github.com/logagent/logagent/conf"
)

// Header is one record header.
type Header struct {
	Key   *HeaderKey
	Value []byte
}

// HeaderKey is a header name in both the forms the backends take (sarama
// wants bytes, franz-go a string), made once rather than per record.
type HeaderKey struct {
	s string
	b []byte
}

// NewHeaderKey returns the key for header name.
func NewHeaderKey(name string) *HeaderKey { return &HeaderKey{s: name, b: []byte(name)} }

// Message is one record to send.
type Message struct {
	Topic   string
	Value   []byte
	Headers []Header
	// Key is the record key (nil: none). It does not pick the partition.
	Key []byte
	// PartitionKey picks the partition (records with the same key keep
	// their order); it is not sent as the record key.
	PartitionKey []byte
	// Meta is returned with the ack.
	Meta any
	// Time is the record's timestamp (zero: the client's clock when it
	// takes the record). A non-zero Time stays the same when the record is
	// sent again, unless Kafka refuses it (restamp).
	Time time.Time

	// Kept by the backends, saving an allocation per record.
	sent   int64 // since epoch; 0: not timed
	seq    uint64
	failed bool
	alone  bool // sent in a batch of its own (its batch was refused as too large)
}

// Failed reports whether a send attempt of m failed (it was then sent
// again or given up). The backend may still read such a message after its
// ack, so its memory must not be reused (sarama reads a message it handed
// back as failed).
func (m *Message) Failed() bool { return m.failed }

// AckFunc is called once per sent message: err is nil when Kafka
// acknowledged it, otherwise the reason it can never be sent.
type AckFunc func(m *Message, err error)

// Producer sends messages asynchronously.
type Producer interface {
	// Send hands m to the producer. It blocks while the producer's buffers
	// are full and returns an error only if ctx ends first.
	Send(ctx context.Context, m *Message) error
	// Close stops retrying, waits (bounded by ctx) for messages in flight
	// and releases the connections. Safe to call twice.
	Close(ctx context.Context) error
	// Healthy reports whether the brokers were reachable recently.
	Healthy() error
	// Topics is the state of every topic Kafka refuses.
	Topics() []TopicStatus
	// Forget drops the records waiting for a refused topic that is not
	// in inUse (acked with ErrNotSent): their lines are read again by the
	// tailers that read their files now.
	Forget(inUse []string)
	// RecordBytes is the memory the backend holds for each record in
	// flight besides the Message and the bytes it points to (its own
	// record struct and bookkeeping): a share of the read budget.
	RecordBytes() int
	// Limits returns the topics whose message size limit on the brokers
	// is below max_message_bytes (their batches are cut to it).
	Limits() []TopicLimit
}

// Hooks observe the producer (metrics). Any field may be nil.
type Hooks struct {
	Error   func(err error)             // a send attempt failed (it will be retried)
	Retry   func()                      // a message is sent again
	Latency func(d time.Duration)       // send to ack
	GiveUp  func(m *Message, err error) // a message that can never be sent
	// Topic: Kafka refuses topic's records (err, the first refusal) or,
	// with a nil err, takes them (its first record, or again). Called in
	// order for a topic; it must not block.
	Topic func(topic string, err error)
}

// health is what both backends report as Healthy: the brokers' TCP
// reachability (the prober) first, then the outcome of the last produce.
type health struct {
	probe *prober
	last  atomic.Pointer[error]
	conn  conf.Kafka // what ExplainConn names

	connLogged atomic.Pointer[string] // the last connection error logged
}

// connFailed logs a connection to a broker that failed for a setting (a
// TLS handshake), unless it is the one logged last: it is retried without
// end. A broker that is down is the prober's to report.
func (h *health) connFailed(log *slog.Logger, broker string, err error) {
	explained := ExplainConn(h.conn, err)
	if explained == err {
		return
	}
	msg := err.Error()
	if old := h.connLogged.Swap(&msg); old != nil && *old == msg {
		return
	}
	log.Error("cannot connect to Kafka; lines wait, retrying", "broker", broker, "err", explained)
}

// set records the last produce outcome (nil: it worked).
func (h *health) set(err error) {
	if errors.Is(err, breaker.ErrBreakerOpen) {
		// sarama's breaker opens after failures and stays open for
		// seconds after Kafka is back: no news of Kafka, and words that
		// say nothing to an operator. The failure that opened it stands.
		if h.last.Load() != nil {
			return
		}
		err = errors.New("sends paused for a few seconds after failed sends (sarama's circuit breaker); retrying")
	}
	if err != nil {
		h.last.Store(&err)
	} else if h.last.Load() != nil { // no store per ack while healthy
		h.last.Store(nil)
	}
}

// Healthy reports whether the brokers were reachable recently.
func (h *health) Healthy() error {
	if err := h.probe.Err(); err != nil {
		return err
	}
	if e := h.last.Load(); e != nil {
		return ExplainConn(h.conn, *e)
	}
	return nil
}

// recordShare is a record's share of a client's encoded request buffers
// and bookkeeping, in RecordBytes.
const recordShare = 128

// fitHeaders returns room[:n] when n headers fit in it, else a new slice:
// the backends keep room for logagent's four headers in each record.
func fitHeaders[H any](room []H, n int) []H {
	if n <= len(room) {
		return room[:n]
	}
	return make([]H, n)
}

// New returns the backend cfg.Client names.
func New(cfg conf.Kafka, ack AckFunc, hooks Hooks, log *slog.Logger) (Producer, error) {
	switch cfg.Client {
	case conf.ClientFranzGo, "":
		return newFranz(cfg, ack, hooks, log)
	case conf.ClientSarama:
		return newSarama(cfg, ack, hooks, log)
	}
	return nil, fmt.Errorf("unknown kafka client %q", cfg.Client)
}

// partitionFor keeps every record of one key in one partition, so that the
// lines of a file stay in order.
func partitionFor(key []byte, n int32) int32 {
	if len(key) == 0 || n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32() % uint32(n))
}

// stampEvery: one record in stampEvery is timed for the ack-latency
// histogram. time.Now per record was a fifth of the franz-go send path.
const stampEvery = 32

// epoch is what Message.sent counts from (a monotonic reading).
var epoch = time.Now()

// stamp sets m.sent on every stampEvery-th call (n counts calls).
func stamp(m *Message, n *atomic.Uint64) {
	if n.Add(1)%stampEvery == 0 {
		m.sent = int64(time.Since(epoch)) + 1
	}
}

// observe reports m's latency if it was stamped.
func (h Hooks) observe(m *Message) {
	if h.Latency != nil && m.sent != 0 {
		h.Latency(time.Since(epoch) - time.Duration(m.sent-1))
	}
}

// restamp clears the Time of a record Kafka refused for its timestamp: a
// topic's message.timestamp.before.max.ms (or after.max.ms) rejects a
// line read long before it could be sent, as after a long Kafka outage.
// The line is not lost for it: it is sent again with the time of sending
// (a zero Time: the client's clock), which the broker takes. n counts
// them: the first and every 1000th are logged.
func restamp(m *Message, n *atomic.Uint64, log *slog.Logger) {
	if k := n.Add(1); k%1000 == 1 {
		log.Warn("Kafka refused a record's timestamp (the topic's message.timestamp.before.max.ms or after.max.ms); sending it again with the time of sending",
			"topic", m.Topic, "read_at", m.Time, "refused_so_far", k)
	}
	m.Time = time.Time{}
}

// retryPolicy is how long a client waits before it sends again a request
// that failed for a reason that passes on its own: a partition's leader
// that moved or is being elected, a broker connection lost.
type retryPolicy struct {
	first time.Duration // retry_backoff
	probe *prober       // nil: not known yet
}

// wait is the wait before attempt (counted from 1). While a broker
// answers, the cluster can say where a moved leader went (the client
// looks it up again as it retries): every attempt waits first, so
// that lines flow again soon after a new leader is elected, not after a
// wait that grew while the old leader was down. While no broker answers,
// the wait doubles up to 10 s: a cluster that is down is not hammered.
func (r retryPolicy) wait(attempt int) time.Duration {
	if r.probe != nil && r.probe.Err() == nil {
		return r.first
	}
	return backoff(r.first, attempt)
}

// backoff doubles from first up to 10s.
func backoff(first time.Duration, attempt int) time.Duration {
	d := first
	for i := 1; i < attempt && d < 10*time.Second; i++ {
		d *= 2
	}
	return min(d, 10*time.Second)
}
