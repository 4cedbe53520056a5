package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logagent/logagent/conf"
)

// saramaProducer wraps sarama's AsyncProducer. sarama retries a failed
// batch itself, without limit (keeping order with the idempotent
// producer); what still fails comes back on Errors and the gate sends it
// again after a backoff, so that nothing is dropped, while the topics
// Kafka takes go on.
//
// sarama cuts every topic's batches to one size (Producer.MaxMessageBytes).
// A topic whose limit on the brokers is lower (learned by topicLimits)
// gets a producer of its own, one per limit, that cuts them smaller; a
// record refused in a batch sized to its topic's limit is sent again by a
// producer that puts one record in each batch. Only a record refused
// alone is given up. A record refused as too large stays in the client
// for the gate (not settled) until it is taken or given up, so that its
// topic's held records wait for it.
type saramaProducer struct {
	cfg   *sarama.Config
	addrs []string
	ack   AckFunc
	hooks Hooks
	log   *slog.Logger
	first time.Duration

	ready   chan struct{} // closed once main is connected
	main    *saramaRoute
	routes  atomic.Pointer[map[string]*saramaRoute] // topics whose batches are cut smaller than main's
	limits  *topicLimits
	admin   *kgo.Client // DescribeConfigs, for limits
	closing chan struct{}
	senders sync.WaitGroup // connect, retryLoop and the gate: they must end before AsyncClose
	readers sync.WaitGroup // successes and errors: they end when sarama is closed
	once    sync.Once
	closed  chan struct{}

	mu       sync.Mutex
	retries  []*Message // judged, waiting for their producer to be made
	tooLarge []refused  // refused as too large: judged by retryLoop
	reroute  bool       // a topic's limit changed: retryLoop makes its route
	all      []*saramaRoute
	sized    map[int]*saramaRoute        // by batch limit; only retryLoop
	alone    atomic.Pointer[saramaRoute] // one record per batch; made by retryLoop
	resume   chan struct{}               // non-nil while records are sent again smaller: Send waits
	resuming atomic.Bool                 // resume != nil: Send looks at it only then
	retryCh  chan struct{}
	inflight atomic.Int64 // messages handed to sarama, not yet back

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
	// 1,000 retries are minutes while a broker answers (retry_backoff
	// each) and hours while none does (up to 10 s each; newSarama sets
	// the wait).
	cfg.Producer.Retry.Max = 1000
	cfg.Producer.Partitioner = func(string) sarama.Partitioner { return keyPartitioner{} }
	cfg.Metadata.Retry.Backoff = c.RetryBackoff
	cfg.Net.DialTimeout = 5 * time.Second
	if err := saramaSecurity(cfg, c); err != nil {
		return nil, err
	}
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
		ready: make(chan struct{}), closing: make(chan struct{}), retryCh: make(chan struct{}, 1),
		sized: map[int]*saramaRoute{}}
	sp.gate = newGate(sp.resend, ack, hooks, c.RetryBackoff, log)
	sp.admin, err = adminClient(c)
	if err != nil {
		return nil, fmt.Errorf("franz-go client for topic configs: %w", err)
	}
	// The prober tells retries whether the cluster answers (retryPolicy):
	// sarama looks a partition's leader up before it waits, then sends,
	// so a wait that grew while the old leader was down leaves lines
	// waiting for seconds after the new one is elected (issue #21 item 6).
	sp.probe = startProber(c.Brokers, 2*time.Second, log)
	retry := retryPolicy{first: c.RetryBackoff, probe: sp.probe}
	cfg.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration { return retry.wait(retries) }
	sp.limits = newTopicLimits(c, log, func(ctx context.Context, topics []string) (map[string]int, error) {
		return describeLimits(ctx, sp.admin, topics)
	}, sp.limitChanged)
	sp.conn = c
	notYet := errors.New("not connected to Kafka yet")
	sp.set(notYet)
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
			sp.main = sp.start(p, sp.cfg.Producer.MaxMessageBytes)
			sp.set(nil)
			if attempt > 1 {
				sp.log.Info("connected to Kafka", "brokers", sp.addrs)
			}
			close(sp.ready)
			sp.senders.Add(2)
			go sp.retryLoop()
			go func() { defer sp.senders.Done(); sp.gate.run() }()
			return
		}
		sp.set(err)
		if attempt == 1 {
			sp.log.Error("cannot connect to Kafka; retrying", "brokers", sp.addrs, "err", ExplainConn(sp.conn, err))
		}
		select {
		case <-sp.closing:
			return
		case <-time.After(backoff(sp.first, attempt)):
		}
	}
}

// start reads p's successes and errors; Close closes it.
func (sp *saramaProducer) start(p sarama.AsyncProducer, limit int) *saramaRoute {
	r := &saramaRoute{p: p, limit: limit}
	sp.mu.Lock()
	sp.all = append(sp.all, r)
	sp.mu.Unlock()
	sp.readers.Add(2)
	go sp.successes(r)
	go sp.errors(r)
	return r
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
	// A new topic's limit is learned first: a topic that needs smaller
	// batches gets its producer (retryLoop) before its first record.
	sp.limits.see(ctx, m.Topic)
	if !sp.admit(m) {
		return nil // held by the gate: its topic is refused
	}
	stamp(m, &sp.sends)
	return sp.enqueue(ctx.Done(), m)
}

// resend is the gate's send: m again, or a record its topic held back.
func (sp *saramaProducer) resend(m *Message) error { return sp.enqueue(nil, m) }

// enqueue hands m to its producer. While records refused as too large
// are sent again smaller, or a topic switches producer, nothing new goes
// in: they must reach the partition before anything read after them.
func (sp *saramaProducer) enqueue(stop <-chan struct{}, m *Message) error {
	if sp.resuming.Load() {
		if err := sp.waitResumed(stop); err != nil {
			sp.settled(m)
			return err
		}
	}
	r := sp.routeOf(m)
	if r == nil {
		r = sp.main // no alone producer (yet): refused again, and judged
	}
	sp.inflight.Add(1)
	if err := sp.input(stop, r.p, sp.message(m)); err != nil {
		sp.inflight.Add(-1)
		sp.settled(m)
		return err
	}
	return nil
}

// waitResumed waits until the records refused as too large were sent
// again.
func (sp *saramaProducer) waitResumed(stop <-chan struct{}) error {
	sp.mu.Lock()
	resume := sp.resume
	sp.mu.Unlock()
	if resume != nil {
		select {
		case <-resume:
		case <-stop:
			return context.Canceled
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

func (sp *saramaProducer) input(stop <-chan struct{}, p sarama.AsyncProducer, pm *sarama.ProducerMessage) error {
	select {
	case p.Input() <- pm:
		return nil
	default: // full: wait, or stop
	}
	select {
	case p.Input() <- pm:
		return nil
	case <-stop:
		return context.Canceled
	case <-sp.closing:
		return errors.New("producer closed")
	}
}

func (sp *saramaProducer) successes(r *saramaRoute) {
	defer sp.readers.Done()
	for pm := range r.p.Successes() {
		m := pm.Metadata.(*Message)
		release(pm)
		sp.set(nil)
		sp.taken(m) // before the ack, which may reuse m
		sp.hooks.observe(m)
		sp.ack(m, nil)
		sp.inflight.Add(-1)
	}
}

func (sp *saramaProducer) errors(r *saramaRoute) {
	defer sp.readers.Done()
	for pe := range r.p.Errors() {
		// Not released to the pool: sarama may still read a message it
		// handed back as failed (updateLeaderIfBrokerProducerIsNil reads
		// msg.retries after returnError).
		f := pe.Msg.Metadata.(*Message)
		f.failed = true
		if sp.hooks.Error != nil {
			sp.hooks.Error(pe.Err)
		}
		if saramaTooLarge(pe.Err) {
			// Its batch may hold many small records: retryLoop judges each.
			sp.mu.Lock()
			sp.holdLocked()
			sp.tooLarge = append(sp.tooLarge, refused{m: f, sent: r.limit, err: pe.Err})
			sp.mu.Unlock()
			sp.inflight.Add(-1)
			sp.kickRetry()
			continue
		}
		if fatal(pe.Err) {
			sp.giveUp(f, pe.Err)
			sp.inflight.Add(-1)
			continue
		}
		sp.set(pe.Err)
		if errors.Is(pe.Err, sarama.ErrInvalidTimestamp) {
			restamp(f, &sp.restamped, sp.log)
		}
		sp.refused(f, pe.Err)
		sp.inflight.Add(-1)
	}
}

// holdLocked makes Send wait until retryLoop has sent again what was
// refused as too large, or made a topic's new producer.
func (sp *saramaProducer) holdLocked() {
	if sp.resume == nil {
		sp.resume = make(chan struct{})
		sp.resuming.Store(true)
	}
}

func (sp *saramaProducer) kickRetry() {
	select {
	case sp.retryCh <- struct{}{}:
	default:
	}
}

// saramaTooLarge reports a record refused as too large: by the broker
// (for its batch, which may hold many records) or by sarama itself,
// against Producer.MaxMessageBytes, with a ConfigurationError.
func saramaTooLarge(err error) bool {
	var ce sarama.ConfigurationError
	return errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrMessageSetSizeTooLarge) ||
		errors.As(err, &ce) && strings.Contains(string(ce), "MaxMessageBytes")
}

// giveUp acks m, which can never be sent, with err.
func (sp *saramaProducer) giveUp(m *Message, err error) {
	sp.settled(m)
	if sp.hooks.GiveUp != nil {
		sp.hooks.GiveUp(m, err)
	}
	sp.ack(m, err)
}

// retryLoop sends the records refused as too large again, judged (in
// smaller batches, one of its own, or given up), in the order they were
// first sent, and switches a topic whose limit changed to its producer.
// sarama hands back in any order the messages it gave up on, and new
// ones keep coming: so it first waits until every message sarama holds
// has come back, then sends the refused ones sorted, and lets new
// messages in only once a round went through without a refusal. Records
// refused for a reason that may pass are the gate's.
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
		batch, big := sp.retries, sp.tooLarge
		sp.retries, sp.tooLarge = nil, nil
		sp.mu.Unlock()
		batch = append(batch, sp.limits.judge(big, sp.batchLimit, sp.giveUp)...) // learning may ask for a reroute
		sp.mu.Lock()
		sp.reroute = false
		sp.mu.Unlock()
		sp.makeRoutes(slices.ContainsFunc(batch, func(m *Message) bool { return m.alone }))
		sort.Slice(batch, func(i, j int) bool { return batch[i].seq < batch[j].seq })
		var prev *saramaRoute
		for _, m := range batch {
			if sp.dropped(m) {
				continue // Forget let its topic go meanwhile
			}
			if sp.hooks.Retry != nil {
				sp.hooks.Retry()
			}
			r := sp.routeOf(m)
			if r == nil { // its producer could not be made: try again later
				sp.mu.Lock()
				sp.retries = append(sp.retries, m)
				sp.mu.Unlock()
				sp.kickRetry()
				continue
			}
			// Records of one partition that go to two producers keep their
			// order: the first producer's are acked before the next's go.
			if prev != nil && r != prev && !sp.waitDrained() {
				return
			}
			prev = r
			sp.inflight.Add(1)
			if sp.input(nil, r.p, sp.message(m)) != nil {
				return
			}
		}
		if !sp.waitDrained() {
			return
		}
		sp.mu.Lock()
		if len(sp.retries) == 0 && len(sp.tooLarge) == 0 && !sp.reroute && sp.resume != nil {
			close(sp.resume)
			sp.resume = nil
			sp.resuming.Store(false)
			attempt = 0
			if len(batch) > 0 {
				sp.log.Info("records refused as too large sent again in order", "lines", len(batch))
			}
		}
		sp.mu.Unlock()
	}
}

// waitDrained waits until sarama holds no message of ours, besides those
// of topics Kafka refuses (refusedInClient): each has come back as a
// success or an error. It polls: sarama has no such signal.
func (sp *saramaProducer) waitDrained() bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for sp.inflight.Load()-sp.refusedInClient() > 0 {
		select {
		case <-sp.closing:
			return false
		case <-t.C:
		}
	}
	return true
}

// fatal reports errors that no retry can fix (too large is judged apart:
// saramaTooLarge).
func fatal(err error) bool {
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) || errors.Is(err, sarama.ErrInvalidMessageSize) || errors.Is(err, sarama.ErrInvalidTopic)
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
			sp.limits.Stop()
			sp.admin.Close()
			// sarama panics on a send after AsyncClose: stop our senders first.
			sp.senders.Wait()
			sp.mu.Lock()
			all := sp.all
			sp.mu.Unlock()
			for _, r := range all {
				r.p.AsyncClose()
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
