package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
// record itself (too large, invalid) give it up; the others (a topic that
// does not exist or is not authorized, a producer ID fenced...) may pass,
// and the gate produces the record again after a backoff, never dropping
// it, while the other topics go on.
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

	ctx    context.Context
	cancel context.CancelFunc // on Close: retries stop
}

func franzOpts(c conf.Kafka) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID("logagent"),
		kgo.ProducerBatchMaxBytes(int32(batchMaxBytes(c))),
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
		// Our read budget bounds the bytes in flight; these are a second fence.
		kgo.MaxBufferedBytes(64 << 20),
		kgo.MaxBufferedRecords(1 << 20),
		kgo.RecordPartitioner(kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
			return func(r *kgo.Record, n int) int {
				return int(partitionFor(recOf(r).m.PartitionKey, int32(n)))
			}
		})),
	}
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
	hdrs [3]kgo.RecordHeader // logagent sends three
}

var frecs = sync.Pool{New: func() any { return new(frec) }}

func recOf(r *kgo.Record) *frec { return (*frec)(unsafe.Pointer(r)) }

// healthHook follows broker connections and produce results.
type healthHook struct{ p *franzProducer }

func (h healthHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.p.set(err)
		if h.p.hooks.Error != nil {
			h.p.hooks.Error(err)
		}
	}
}

func (h healthHook) OnProduceBatchWritten(kgo.BrokerMetadata, string, int32, kgo.ProduceBatchMetrics) {
	h.p.set(nil)
}

func newFranz(c conf.Kafka, ack AckFunc, hooks Hooks, log *slog.Logger) (*franzProducer, error) {
	fp := &franzProducer{ack: ack, hooks: hooks, log: log}
	fp.promiseFn = fp.promise
	fp.ctx, fp.cancel = context.WithCancel(context.Background())
	fp.gate = newGate(func(m *Message) error { fp.produce(fp.ctx, m); return fp.ctx.Err() }, ack, hooks, c.RetryBackoff, log)
	opts, err := franzOpts(c)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.WithHooks(healthHook{fp}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("franz-go client: %w", err)
	}
	fp.cl = cl
	fp.probe = startProber(c.Brokers, 2*time.Second, log)
	go fp.gate.run()
	return fp, nil
}

func (fp *franzProducer) Send(ctx context.Context, m *Message) error {
	if fp.admit(m) {
		fp.produce(ctx, m)
	}
	return ctx.Err()
}

// produce hands m to kgo.
func (fp *franzProducer) produce(ctx context.Context, m *Message) {
	fr := frecs.Get().(*frec)
	fr.m = m
	fr.Record = kgo.Record{Topic: m.Topic, Value: m.Value, Timestamp: m.Time}
	fr.Headers = fitHeaders(fr.hdrs[:], len(m.Headers))
	for i, h := range m.Headers {
		fr.Headers[i] = kgo.RecordHeader{Key: h.Key.s, Value: h.Value}
	}
	stamp(m, &fp.sends)
	fp.cl.Produce(ctx, &fr.Record, fp.promiseFn)
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
	case recordRefused(err):
		fp.settled(m)
		fp.log.Error("Kafka refused a record for good", "topic", m.Topic, "err", err)
		if fp.hooks.GiveUp != nil {
			fp.hooks.GiveUp(m, err)
		}
		fp.ack(m, err)
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

// recordRefused reports errors about the record itself, which no retry
// can fix: the counterpart of sarama's fatal.
func recordRefused(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidTopicException) || errors.Is(err, kerr.InvalidRecord)
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
		done := make(chan struct{})
		go func() {
			<-fp.gate.done
			// Records still buffered fail with ErrClientClosed and are not acked.
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
