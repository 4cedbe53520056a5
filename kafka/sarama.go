package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/IBM/sarama"

	"github.com/logagent/logagent/conf"
)

// saramaProducer wraps sarama's AsyncProducer. sarama retries a failed
// batch itself, without limit (keeping order with the idempotent
// producer); what still fails comes back on Errors and the gate sends it
// again after a backoff, so that nothing is dropped, while the topics
// Kafka takes go on.
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
	senders sync.WaitGroup // connect and the gate: they must end before AsyncClose
	readers sync.WaitGroup // successes and errors: they end when sarama is closed
	once    sync.Once
	closed  chan struct{}

	health
	*gate
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
	// drops nor reorders them. What still comes back on Errors is sent
	// again by the gate.
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
		ready: make(chan struct{}), closing: make(chan struct{})}
	sp.gate = newGate(func(m *Message) error { return sp.enqueue(nil, m) }, ack, hooks, c.RetryBackoff, log)
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
			go func() { defer sp.senders.Done(); sp.gate.run() }()
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
	if !sp.admit(m) {
		return nil // held by the gate: its topic is refused
	}
	stamp(m, &sp.sends)
	return sp.enqueue(ctx.Done(), m)
}

// enqueue hands m to sarama.
func (sp *saramaProducer) enqueue(stop <-chan struct{}, m *Message) error {
	if err := sp.input(stop, sp.message(m)); err != nil {
		sp.settled(m)
		return err
	}
	return nil
}

// smsg is a ProducerMessage with room for its headers and value encoder:
// one pooled allocation per record instead of three fresh ones. sarama
// is done with a message once it comes back on Successes.
type smsg struct {
	sarama.ProducerMessage
	val  byteEncoder
	hdrs [3]sarama.RecordHeader // logagent sends three
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
		sp.taken(m) // before the ack, which may reuse m
		sp.hooks.observe(m)
		sp.ack(m, nil)
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
			sp.settled(f)
			if sp.hooks.GiveUp != nil {
				sp.hooks.GiveUp(f, pe.Err)
			}
			sp.ack(f, pe.Err)
			continue
		}
		sp.set(pe.Err)
		if errors.Is(pe.Err, sarama.ErrInvalidTimestamp) {
			restamp(f, &sp.restamped, sp.log)
		}
		sp.refused(f, pe.Err)
	}
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
		sp.gate.close()
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
