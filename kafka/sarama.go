package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/IBM/sarama"

	"github.com/logagent/logagent/conf"
)

// saramaProducer wraps sarama's AsyncProducer. sarama retries a failed
// batch itself, without limit (keeping order with the idempotent
// producer); what still fails comes back on Errors and is queued here to
// be sent again after a backoff, so that nothing is dropped.
type saramaProducer struct {
	cfg   *sarama.Config
	addrs []string
	ack   AckFunc
	hooks Hooks
	log   *slog.Logger
	first time.Duration

	ready   chan struct{} // closed once p is connected
	p       sarama.AsyncProducer
	closing chan struct{}
	senders sync.WaitGroup // connect and retryLoop: they must end before AsyncClose
	readers sync.WaitGroup // successes and errors: they end when sarama is closed
	once    sync.Once
	closed  chan struct{}

	mu       sync.Mutex
	retries  []*Message    // failed, to be sent again
	resume   chan struct{} // non-nil while failed messages are re-sent: Send waits
	resuming atomic.Bool   // resume != nil: Send looks at it only then
	retryCh  chan struct{}
	seq      atomic.Uint64 // send order, to re-send failed messages in it
	inflight atomic.Int64  // messages handed to sarama, not yet back

	health
	sends     atomic.Uint64
	restamped atomic.Uint64 // records Kafka refused for their timestamp (restamp)
}

func saramaConfig(c conf.Kafka) (*sarama.Config, error) {
	cfg := sarama.NewConfig()
	cfg.ClientID = "logagent"
	v, err := sarama.ParseKafkaVersion(c.Version)
	if err != nil {
		return nil, fmt.Errorf("[kafka] version: %w", err)
	}
	cfg.Version = v

	// Deeper channels between sarama's stages: fewer goroutine switches
	// per record (they hold pointers; the bytes are bounded by our budget).
	cfg.ChannelBufferSize = 2048
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	switch c.RequiredAcks {
	case "all":
		cfg.Producer.RequiredAcks = sarama.WaitForAll
	case "leader":
		cfg.Producer.RequiredAcks = sarama.WaitForLocal
	case "none":
		cfg.Producer.RequiredAcks = sarama.NoResponse
	}
	if c.Idempotent {
		cfg.Producer.Idempotent = true
		cfg.Net.MaxOpenRequests = 1
	}
	switch c.Compression {
	case "none":
		cfg.Producer.Compression = sarama.CompressionNone
	case "gzip":
		cfg.Producer.Compression = sarama.CompressionGZIP
	case "snappy":
		cfg.Producer.Compression = sarama.CompressionSnappy
	case "lz4":
		cfg.Producer.Compression = sarama.CompressionLZ4
	case "zstd":
		cfg.Producer.Compression = sarama.CompressionZSTD
	}
	cfg.Producer.MaxMessageBytes = c.MaxMessageBytes
	// A request must stay well under the broker's limit even uncompressed,
	// or it is refused as MESSAGE_TOO_LARGE and retried forever.
	cfg.Producer.Flush.Bytes = min(c.MaxMessageBytes/2, 512<<10)
	cfg.Producer.Flush.Frequency = c.Linger
	if c.Linger == 0 {
		// sarama flushes at once only when no trigger is set: a flush size
		// without a frequency would hold a partial batch until it fills.
		// Requests stay under MaxMessageBytes per partition all the same.
		cfg.Producer.Flush.Bytes = 0
	}
	// sarama retries in order (idempotent, one request in flight), so it
	// is left to retry for a long time: an outage delays lines but neither
	// drops nor reorders them. What still comes back on Errors is queued
	// and sent again by retryLoop.
	// sarama keeps per-retry state (Retry.Max+1 entries per partition):
	// 1,000 retries with a backoff capped at 10 s is hours of outage.
	cfg.Producer.Retry.Max = 1000
	cfg.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration { return backoff(c.RetryBackoff, retries) }
	cfg.Producer.Partitioner = func(string) sarama.Partitioner { return keyPartitioner{} }
	cfg.Metadata.Retry.Backoff = c.RetryBackoff
	cfg.Net.DialTimeout = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sarama config: %w", err)
	}
	return cfg, nil
}

// keyPartitioner hashes Message.PartitionKey (carried in Metadata).
type keyPartitioner struct{}

func (keyPartitioner) Partition(pm *sarama.ProducerMessage, n int32) (int32, error) {
	return partitionFor(pm.Metadata.(*Message).PartitionKey, n), nil
}
func (keyPartitioner) RequiresConsistency() bool { return true }

func newSarama(c conf.Kafka, ack AckFunc, hooks Hooks, log *slog.Logger) (*saramaProducer, error) {
	cfg, err := saramaConfig(c)
	if err != nil {
		return nil, err
	}
	sp := &saramaProducer{cfg: cfg, addrs: c.Brokers, ack: ack, hooks: hooks, log: log, first: c.RetryBackoff,
		ready: make(chan struct{}), closing: make(chan struct{}), retryCh: make(chan struct{}, 1)}
	notYet := errors.New("not connected to Kafka yet")
	sp.set(notYet)
	sp.probe = startProber(c.Brokers, 2*time.Second, log)
	sp.senders.Add(1)
	go sp.connect()
	return sp, nil
}

// connect creates the sarama producer, retrying while no broker answers:
// the agent starts (and reads up to its buffer) even when Kafka is down.
func (sp *saramaProducer) connect() {
	defer sp.senders.Done()
	for attempt := 1; ; attempt++ {
		p, err := sarama.NewAsyncProducer(sp.addrs, sp.cfg)
		if err == nil {
			sp.p = p
			sp.set(nil)
			if attempt > 1 {
				sp.log.Info("connected to Kafka", "brokers", sp.addrs)
			}
			close(sp.ready)
			sp.readers.Add(2)
			sp.senders.Add(1)
			go sp.successes()
			go sp.errors()
			go sp.retryLoop()
			return
		}
		sp.set(err)
		if attempt == 1 {
			sp.log.Error("cannot connect to Kafka; retrying", "brokers", sp.addrs, "err", err)
		}
		select {
		case <-sp.closing:
			return
		case <-time.After(backoff(sp.first, attempt)):
		}
	}
}

func (sp *saramaProducer) Send(ctx context.Context, m *Message) error {
	// Each channel operation below first tries without blocking: a select
	// that may block locks all its channels, and Send runs for every line
	// (those selects and the mutex were about 7 % of the sarama agent's
	// CPU shipping 1M lines).
	select {
	case <-sp.ready:
	default:
		select {
		case <-sp.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// While failed messages are being sent again, nothing new goes in:
	// they must reach the partition before anything read after them.
	if sp.resuming.Load() {
		if err := sp.waitResumed(ctx); err != nil {
			return err
		}
	}
	stamp(m, &sp.sends)
	m.seq = sp.seq.Add(1)
	sp.inflight.Add(1)
	if err := sp.input(ctx.Done(), sp.message(m)); err != nil {
		sp.inflight.Add(-1)
		return err
	}
	return nil
}

// waitResumed waits until the failed messages were sent again.
func (sp *saramaProducer) waitResumed(ctx context.Context) error {
	sp.mu.Lock()
	resume := sp.resume
	sp.mu.Unlock()
	if resume != nil {
		select {
		case <-resume:
		case <-ctx.Done():
			return ctx.Err()
		case <-sp.closing:
			return errors.New("producer closed")
		}
	}
	return nil
}

// smsg is a ProducerMessage with room for its headers and value encoder:
// one pooled allocation per record instead of three fresh ones. sarama
// is done with a message once it comes back on Successes.
type smsg struct {
	sarama.ProducerMessage
	val  byteEncoder
	key  byteEncoder
	hdrs [4]sarama.RecordHeader // logagent sends four
}

var smsgs = sync.Pool{New: func() any { return new(smsg) }}

// byteEncoder is sarama.ByteEncoder with pointer methods: storing a
// pointer in the Encoder interface does not allocate.
type byteEncoder []byte

func (b *byteEncoder) Encode() ([]byte, error) { return *b, nil }
func (b *byteEncoder) Length() int             { return len(*b) }

func (sp *saramaProducer) message(m *Message) *sarama.ProducerMessage {
	s := smsgs.Get().(*smsg)
	s.val = m.Value
	s.ProducerMessage = sarama.ProducerMessage{Topic: m.Topic, Value: &s.val, Metadata: m, Timestamp: m.Time}
	if m.Key != nil {
		s.key = m.Key
		s.Key = &s.key
	}
	s.Headers = fitHeaders(s.hdrs[:], len(m.Headers))
	for i, h := range m.Headers {
		s.Headers[i] = sarama.RecordHeader{Key: h.Key.b, Value: h.Value}
	}
	return &s.ProducerMessage
}

// release returns a message sarama is done with to the pool.
func release(pm *sarama.ProducerMessage) {
	s := (*smsg)(unsafe.Pointer(pm))
	*s = smsg{}
	smsgs.Put(s)
}

func (sp *saramaProducer) input(stop <-chan struct{}, pm *sarama.ProducerMessage) error {
	select {
	case sp.p.Input() <- pm:
		return nil
	default: // full: wait, or stop
	}
	select {
	case sp.p.Input() <- pm:
		return nil
	case <-stop:
		return context.Canceled
	case <-sp.closing:
		return errors.New("producer closed")
	}
}

func (sp *saramaProducer) successes() {
	defer sp.readers.Done()
	for pm := range sp.p.Successes() {
		m := pm.Metadata.(*Message)
		release(pm)
		sp.set(nil)
		sp.hooks.observe(m)
		sp.ack(m, nil)
		sp.inflight.Add(-1)
	}
}

func (sp *saramaProducer) errors() {
	defer sp.readers.Done()
	for pe := range sp.p.Errors() {
		// Not released to the pool: sarama may still read a message it
		// handed back as failed (updateLeaderIfBrokerProducerIsNil reads
		// msg.retries after returnError).
		f := pe.Msg.Metadata.(*Message)
		f.failed = true
		if sp.hooks.Error != nil {
			sp.hooks.Error(pe.Err)
		}
		if fatal(pe.Err) {
			if sp.hooks.GiveUp != nil {
				sp.hooks.GiveUp(f, pe.Err)
			}
			sp.ack(f, pe.Err)
			sp.inflight.Add(-1)
			continue
		}
		sp.set(pe.Err)
		if errors.Is(pe.Err, sarama.ErrInvalidTimestamp) {
			restamp(f, &sp.restamped, sp.log)
		}
		sp.mu.Lock()
		if sp.resume == nil {
			sp.log.Warn("Kafka send failed; holding new lines and retrying the failed ones in order", "topic", f.Topic, "err", pe.Err)
			sp.resume = make(chan struct{})
			sp.resuming.Store(true)
		}
		sp.retries = append(sp.retries, f)
		sp.mu.Unlock()
		sp.inflight.Add(-1)
		select {
		case sp.retryCh <- struct{}{}:
		default:
		}
	}
}

// retryLoop sends failed messages again, in the order they were first
// sent, after a backoff that grows with consecutive failures. sarama
// hands back in any order the messages it gave up on, and new ones keep
// coming: so recovery first waits until every message sarama holds has
// come back, then sends the failed ones sorted, and lets new messages in
// only once a round went through without a failure.
func (sp *saramaProducer) retryLoop() {
	defer sp.senders.Done()
	for attempt := 1; ; attempt++ {
		select {
		case <-sp.closing:
			return
		case <-sp.retryCh:
		}
		select {
		case <-sp.closing:
			return
		case <-time.After(backoff(sp.first, attempt)):
		}
		if !sp.waitDrained() {
			return
		}
		sp.mu.Lock()
		batch := sp.retries
		sp.retries = nil
		sp.mu.Unlock()
		sort.Slice(batch, func(i, j int) bool { return batch[i].seq < batch[j].seq })
		for _, m := range batch {
			if sp.hooks.Retry != nil {
				sp.hooks.Retry()
			}
			sp.inflight.Add(1)
			if sp.input(nil, sp.message(m)) != nil {
				return
			}
		}
		if !sp.waitDrained() {
			return
		}
		sp.mu.Lock()
		if len(sp.retries) == 0 && sp.resume != nil {
			close(sp.resume)
			sp.resume = nil
			sp.resuming.Store(false)
			attempt = 0
			sp.log.Info("Kafka takes lines again; failed lines re-sent in order", "lines", len(batch))
		}
		sp.mu.Unlock()
	}
}

// waitDrained waits until sarama holds no message of ours: each has come
// back as a success or an error. It polls: sarama has no such signal.
func (sp *saramaProducer) waitDrained() bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for sp.inflight.Load() > 0 {
		select {
		case <-sp.closing:
			return false
		case <-t.C:
		}
	}
	return true
}

// fatal reports errors that no retry can fix. sarama refuses a record over
// Producer.MaxMessageBytes itself, with a ConfigurationError.
func fatal(err error) bool {
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) || errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrInvalidMessageSize) ||
		errors.Is(err, sarama.ErrInvalidTopic)
}

// RecordBytes: the pooled smsg, and sarama's per-message bookkeeping and
// the record's share of the encoded request buffers.
func (sp *saramaProducer) RecordBytes() int { return int(unsafe.Sizeof(smsg{})) + recordShare }

// Close must be called after the last Send has returned. Messages still
// waiting for a retry are not acknowledged: their lines are read again on
// the next start.
func (sp *saramaProducer) Close(ctx context.Context) error {
	done := make(chan struct{})
	sp.once.Do(func() {
		sp.probe.Stop()
		close(sp.closing)
		go func() {
			// sarama panics on a send after AsyncClose: stop our senders first.
			sp.senders.Wait()
			select {
			case <-sp.ready:
				sp.p.AsyncClose()
			default:
			}
			sp.readers.Wait()
			close(done)
		}()
		sp.closed = done
	})
	select {
	case <-sp.closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close Kafka producer: %w", ctx.Err())
	}
}
