package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logagent/logagent/conf"
)

// franzProducer uses franz-go's kgo.Client. kgo retries retriable errors
// itself (RecordRetries and RecordDeliveryTimeout are left unlimited). A
// promise still fails for errors kgo does not retry: those about the
// record itself (invalid) give it up; the others (a topic that does not
// exist or is not authorized, a producer ID fenced...) may pass, and the
// gate produces the record again after a backoff, never dropping it,
// while the other topics go on. A record refused as too large is
// produced again in smaller batches (the topic's limit, learned), or in a
// batch of its own; only a record too large by itself is given up. Such a
// record stays in the client for the gate (not settled) until it is
// taken or given up, so that its topic's held records wait for it.
type franzProducer struct {
	cl    *kgo.Client
	ack   AckFunc
	hooks Hooks
	log   *slog.Logger
	health
	*gate
	once sync.Once
	// promiseFn is fp.promise, made once: a method value allocates.
	promiseFn func(*kgo.Record, error)
	sends     atomic.Uint64
	restamped atomic.Uint64 // records Kafka refused for their timestamp (restamp)

	first     time.Duration // retry_backoff
	ctx       context.Context
	cancel    context.CancelFunc // on Close: retries stop
	retryMu   sync.Mutex
	retryQ    []*Message // purged, or waiting for the alone client: produced again
	retryWake chan struct{}
	tooLargeQ []refused // under retryMu: refused as too large, judged by retryLoop

	limits   *topicLimits
	batchMax int // batches to a topic of unknown limit
	builtMu  sync.Mutex
	built    map[string]int // the batch limit kgo made each topic's partitions with

	// alone sends one record per batch (it buffers one record at a time):
	// for records refused in a batch sized to their topic's limit.
	aloneMu     sync.Mutex
	alone       *kgo.Client
	aloneOpts   []kgo.Opt
	aloneClosed bool
}

// refused is a record refused as too large, with the batch limit it was
// sent under (0: alone).
type refused struct {
	m    *Message
	sent int
	err  error
}

func franzOpts(c conf.Kafka, batchMax func(topic string) int32) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID("logagent"),
		kgo.ProducerBatchMaxBytesFn(batchMax),
		kgo.ProducerLinger(c.Linger),
		// Like sarama: let the broker create a missing topic (if it allows
		// it). A topic that does not exist fails its records after a few
		// metadata loads, so that the gate sees the refusal, holds the
		// topic's lines back (they are not dropped) and says why.
		kgo.AllowAutoTopicCreation(),
		// KIP-714 telemetry pushed to the broker: kgo compresses it with
		// lz4's default 4 MiB blocks, two of them held for good (8 MiB, a
		// third of the agent's heap). The agent's metrics are on /metrics.
		kgo.DisableClientMetrics(),
		kgo.UnknownTopicRetries(3),
		kgo.RetryBackoffFn(func(n int) time.Duration { return backoff(c.RetryBackoff, n) }),
		// A send that failed because its leader moved waits for kgo to
		// look the leader up again, which it does at most every
		// MetadataMinAge (5 s by default): a leader elected just after a
		// lookup is found up to 5 s late (issue #21 item 6). Kafka's own
		// clients look up again after retry.backoff.ms.
		kgo.MetadataMinAge(max(c.RetryBackoff, minMetadataAge)),
		// Our read budget bounds the bytes in flight; these are a second fence.
		kgo.MaxBufferedBytes(64 << 20),
		kgo.MaxBufferedRecords(1 << 20),
		kgo.RecordPartitioner(kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
			return func(r *kgo.Record, n int) int {
				return int(partitionFor(recOf(r).m.PartitionKey, int32(n)))
			}
		})),
	}
	sec, err := FranzSecurity(c)
	if err != nil {
		return nil, err
	}
	opts = append(opts, sec...)
	switch c.RequiredAcks {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if !c.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	codec := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}[c.Compression]
	if c.Compression == "lz4" {
		opts = append(opts, kgo.WithCompressor(newLz4Compressor()))
	} else {
		opts = append(opts, kgo.ProducerBatchCompression(codec))
	}
	return opts, nil
}

// minMetadataAge bounds how often kgo asks for metadata when retry_backoff
// is set very low.
const minMetadataAge = 100 * time.Millisecond

// batchMaxBytes is kgo's batch size limit, which is also the largest
// record it takes: the largest record the caller sends (520 KiB with the
// agent's defaults), at least 256 KiB, rather than 1 MiB. The read budget
// bounds the lines in flight; with up to five requests in flight, smaller
// batches are acked, and free budget, sooner (1M lines: 0.65–0.70 s →
// 0.55 s, kcat 0.46 s).
func batchMaxBytes(c conf.Kafka) int {
	largest := c.LargestRecord
	if largest <= 0 {
		largest = c.MaxMessageBytes
	}
	return min(c.MaxMessageBytes, max(256<<10, largest))
}

// frec is a kgo.Record with the message it carries. kgo hands the
// *kgo.Record back to the partitioner and the promise; as it is the first
// field, the frec is found from it without a closure or a context per
// record. frecs are pooled: kgo lets a record go once its promise ran.
type frec struct {
	kgo.Record
	m    *Message
	hdrs [4]kgo.RecordHeader // logagent sends four
}

var frecs = sync.Pool{New: func() any { return new(frec) }}

func recOf(r *kgo.Record) *frec { return (*frec)(unsafe.Pointer(r)) }

// healthHook follows broker connections and produce results.
type healthHook struct{ p *franzProducer }

func (h healthHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.p.connFailed(h.p.log, net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), err)
		h.p.set(err)
		if h.p.hooks.Error != nil {
			h.p.hooks.Error(err)
		}
	}
}

func (h healthHook) OnProduceBatchWritten(kgo.BrokerMetadata, string, int32, kgo.ProduceBatchMetrics) {
	h.p.set(nil)
}

// aloneBatchMax is the alone client's batch limit: max_message_bytes, within
// what kgo takes (its buffer limit, MaxBufferedBytes, is 64 MiB).
func aloneBatchMax(c conf.Kafka) int32 { return int32(min(c.MaxMessageBytes, 64<<20)) }

func newFranz(c conf.Kafka, ack AckFunc, hooks Hooks, log *slog.Logger) (*franzProducer, error) {
	fp := &franzProducer{ack: ack, hooks: hooks, log: log, first: c.RetryBackoff, retryWake: make(chan struct{}, 1),
		batchMax: batchMaxBytes(c), built: map[string]int{}}
	fp.promiseFn = fp.promise
	fp.conn = c
	fp.ctx, fp.cancel = context.WithCancel(context.Background())
	fp.gate = newGate(func(m *Message) error { return fp.resend(fp.ctx, m) }, ack, hooks, c.RetryBackoff, log)
	opts, err := franzOpts(c, fp.madeBatchLimit)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.WithHooks(healthHook{fp}))
	if fp.aloneOpts, err = franzOpts(c, func(string) int32 { return aloneBatchMax(c) }); err != nil {
		return nil, err
	}
	fp.aloneOpts = append(fp.aloneOpts, kgo.WithHooks(healthHook{fp}), kgo.MaxBufferedRecords(1))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("franz-go client: %w", err)
	}
	fp.cl = cl
	fp.limits = newTopicLimits(c, log, func(ctx context.Context, topics []string) (map[string]int, error) {
		return describeLimits(ctx, cl, topics)
	}, fp.limitChanged)
	fp.probe = startProber(c.Brokers, 2*time.Second, log)
	go fp.retryLoop()
	go fp.gate.run()
	return fp, nil
}

// batchLimit is the size batches to topic are cut to: the topic's limit
// when known and lower than the agent's batch size.
func (fp *franzProducer) batchLimit(topic string) int {
	n := fp.batchMax
	if fp.limits != nil {
		if l := fp.limits.get(topic); l > 0 {
			n = min(n, l)
		}
	}
	return max(n, 512) // kgo's least
}

// madeBatchLimit is kgo's ProducerBatchMaxBytesFn: kgo asks it once, when
// it makes a topic's partitions.
func (fp *franzProducer) madeBatchLimit(topic string) int32 {
	n := fp.batchLimit(topic)
	if topic != "" {
		fp.builtMu.Lock()
		fp.built[topic] = n
		fp.builtMu.Unlock()
	}
	return int32(n)
}

// sentLimit is the batch limit topic's records are sent under now.
func (fp *franzProducer) sentLimit(topic string) int {
	fp.builtMu.Lock()
	defer fp.builtMu.Unlock()
	if n, ok := fp.built[topic]; ok {
		return n
	}
	return fp.batchMax
}

// limitChanged makes kgo cut topic's batches to its new limit. kgo reads
// a topic's batch limit only when it makes the topic's partitions, so they
// are purged and made again; the records kgo held for the topic come back
// (errPurged) and are produced again.
func (fp *franzProducer) limitChanged(topic string) {
	fp.builtMu.Lock()
	n, ok := fp.built[topic]
	stale := ok && n != fp.batchLimit(topic)
	if stale {
		delete(fp.built, topic)
	}
	fp.builtMu.Unlock()
	if stale {
		fp.cl.PurgeTopicsFromProducing(topic)
	}
}

// Limits returns the topics whose limit is below max_message_bytes.
func (fp *franzProducer) Limits() []TopicLimit { return fp.limits.Limits() }

func (fp *franzProducer) Send(ctx context.Context, m *Message) error {
	fp.limits.see(ctx, m.Topic)
	if fp.admit(m) {
		stamp(m, &fp.sends)
		fp.cl.Produce(ctx, fp.record(m), fp.promiseFn)
	}
	return ctx.Err()
}

// resend produces m again (the gate, retryLoop): in a batch of its own
// when its batch was refused as too large in a batch sized to its topic.
func (fp *franzProducer) resend(ctx context.Context, m *Message) error {
	if m.alone {
		return fp.sendAlone(ctx, m)
	}
	fp.cl.Produce(ctx, fp.record(m), fp.promiseFn)
	return ctx.Err()
}

// record returns m as a pooled kgo record.
func (fp *franzProducer) record(m *Message) *kgo.Record {
	fr := frecs.Get().(*frec)
	fr.m = m
	fr.Record = kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value, Timestamp: m.Time}
	fr.Headers = fitHeaders(fr.hdrs[:], len(m.Headers))
	for i, h := range m.Headers {
		fr.Headers[i] = kgo.RecordHeader{Key: h.Key.s, Value: h.Value}
	}
	return &fr.Record
}

// sendAlone produces m in a batch of its own, with the alone client (made
// when first needed). It waits while that client holds another record.
func (fp *franzProducer) sendAlone(ctx context.Context, m *Message) error {
	fp.aloneMu.Lock()
	if fp.aloneClosed {
		fp.aloneMu.Unlock()
		return kgo.ErrClientClosed
	}
	if fp.alone == nil {
		cl, err := kgo.NewClient(fp.aloneOpts...)
		if err != nil {
			fp.aloneMu.Unlock()
			// Not a closing producer: m waits for the next round.
			fp.log.Error("cannot make a client for records sent one per batch; retrying", "err", err)
			fp.retryMu.Lock()
			fp.retryQ = append(fp.retryQ, m)
			fp.retryMu.Unlock()
			fp.wakeRetry()
			return nil
		}
		fp.alone = cl
	}
	cl := fp.alone
	fp.aloneMu.Unlock()
	m.alone = true
	cl.Produce(ctx, fp.record(m), fp.promiseFn)
	return ctx.Err()
}

func (fp *franzProducer) promise(r *kgo.Record, err error) {
	fr := recOf(r)
	m := fr.m
	*fr = frec{}
	frecs.Put(fr)
	switch {
	case err == nil:
		fp.taken(m) // before the ack, which may reuse m
		fp.hooks.observe(m)
		fp.ack(m, nil)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed):
		// Not sent: the line is read again on the next start.
		fp.settled(m)
	case errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge):
		// The batch may hold many small records: retryLoop judges each.
		sent := 0
		if !m.alone {
			sent = fp.sentLimit(m.Topic)
		}
		fp.retryMu.Lock()
		fp.tooLargeQ = append(fp.tooLargeQ, refused{m: m, sent: sent, err: err})
		fp.retryMu.Unlock()
		fp.wakeRetry()
	case isPurged(err):
		if fp.dropped(m) {
			return // Forget purged its topic
		}
		// The topic's partitions are made again (limitChanged): nothing failed.
		fp.retryMu.Lock()
		fp.retryQ = append(fp.retryQ, m)
		fp.retryMu.Unlock()
		fp.wakeRetry()
	case recordRefused(err):
		fp.giveUp(m, err)
	default:
		fp.set(err)
		if fp.hooks.Error != nil {
			fp.hooks.Error(err)
		}
		if errors.Is(err, kerr.InvalidTimestamp) {
			restamp(m, &fp.restamped, fp.log)
		}
		fp.refused(m, err)
	}
}

func (fp *franzProducer) wakeRetry() {
	select {
	case fp.retryWake <- struct{}{}:
	default:
	}
}

// isPurged reports kgo's errPurged (unexported): a record of a topic
// whose partitions were purged while it was buffered.
func isPurged(err error) bool { return err != nil && err.Error() == "topic purged while buffered" }

// recordRefused reports errors about the record itself, which no retry
// can fix: the counterpart of sarama's fatal.
func recordRefused(err error) bool {
	return errors.Is(err, kerr.InvalidTopicException) || errors.Is(err, kerr.InvalidRecord)
}

// retryLoop produces again, after a backoff, the records refused as too
// large (judged first: smaller batches, one of its own, or given up) and
// those purged. They have not left the client for the gate, so they skip
// it; records refused for a reason that may pass go back to the gate.
func (fp *franzProducer) retryLoop() {
	for {
		select {
		case <-fp.ctx.Done():
			return
		case <-fp.retryWake:
		}
		select {
		case <-fp.ctx.Done():
			return
		case <-time.After(backoff(fp.first, 1)):
		}
		fp.retryMu.Lock()
		q, big := fp.retryQ, fp.tooLargeQ
		fp.retryQ, fp.tooLargeQ = nil, nil
		fp.retryMu.Unlock()
		q = append(fp.limits.judge(big, fp.batchLimit, fp.giveUp), q...)
		for _, m := range q {
			if fp.dropped(m) {
				continue // Forget let its topic go meanwhile
			}
			if fp.hooks.Retry != nil {
				fp.hooks.Retry()
			}
			if fp.resend(fp.ctx, m) != nil {
				return // closing: not acked, read again on the next start
			}
		}
	}
}

// giveUp acks m, which can never be sent, with err.
func (fp *franzProducer) giveUp(m *Message, err error) {
	fp.settled(m)
	fp.log.Error("Kafka refused a record for good", "topic", m.Topic, "err", err)
	if fp.hooks.GiveUp != nil {
		fp.hooks.GiveUp(m, err)
	}
	fp.ack(m, err)
}

// Forget also fails the probe kgo holds for a dropped topic: kgo gives
// up on a topic that does not exist only after several metadata loads.
func (fp *franzProducer) Forget(inUse []string) {
	if dropped := fp.forget(inUse); len(dropped) > 0 {
		fp.cl.PurgeTopicsFromProducing(dropped...)
	}
}

// RecordBytes: the pooled frec, and kgo's promise entry and the record's
// share of the encoded request buffers.
func (fp *franzProducer) RecordBytes() int { return int(unsafe.Sizeof(frec{})) + recordShare }

func (fp *franzProducer) Close(ctx context.Context) error {
	var err error
	fp.once.Do(func() {
		fp.cancel()
		fp.gate.close()
		fp.probe.Stop()
		fp.aloneMu.Lock()
		fp.aloneClosed = true
		alone := fp.alone
		fp.aloneMu.Unlock()
		done := make(chan struct{})
		go func() {
			<-fp.gate.done
			fp.limits.Stop()
			// Records still buffered fail with ErrClientClosed and are not acked.
			if alone != nil {
				alone.Close()
			}
			fp.cl.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("close Kafka client: %w", ctx.Err())
		}
	})
	return err
}
