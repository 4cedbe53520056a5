package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eapache/go-resiliency/breaker"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/internal/testenv"
)

type acks struct {
	mu   sync.Mutex
	ok   []string
	errs []error
	c    chan struct{}
}

func (a *acks) ack(m *Message, err error) {
	a.mu.Lock()
	if err != nil {
		a.errs = append(a.errs, err)
	} else {
		a.ok = append(a.ok, string(m.Value))
	}
	a.mu.Unlock()
	a.c <- struct{}{}
}

func (a *acks) wait(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-a.c:
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d of %d acks", i, n)
		}
	}
}

func newProducer(t *testing.T, client string, brokers []string, tweak func(*conf.Kafka)) (Producer, *acks) {
	t.Helper()
	return newProducerHooks(t, client, brokers, Hooks{}, tweak)
}

// newProducerHooks is newProducer with hooks.
func newProducerHooks(t *testing.T, client string, brokers []string, hooks Hooks, tweak func(*conf.Kafka)) (Producer, *acks) {
	t.Helper()
	c := conf.Default().Kafka
	c.Client, c.Brokers, c.Linger, c.RetryBackoff = client, brokers, time.Millisecond, 20*time.Millisecond
	if tweak != nil {
		tweak(&c)
	}
	a := &acks{c: make(chan struct{}, 10000)}
	p, err := New(c, a.ack, hooks, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p, a
}

// consume reads topic from its beginning until it has n records.
func consume(t *testing.T, addrs []string, topic string, n int) []testenv.Record {
	t.Helper()
	c, err := testenv.NewConsumer(addrs, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var rs []testenv.Record
	for deadline := time.Now().Add(10 * time.Second); len(rs) < n && time.Now().Before(deadline); {
		got, _ := c.Poll(context.Background(), 500*time.Millisecond)
		rs = append(rs, got...)
	}
	if len(rs) != n {
		t.Fatalf("%d records in %s, want %d", len(rs), topic, n)
	}
	return rs
}

// producerOnKfake is newProducer on an in-process Kafka of its own, which
// the test's cleanup stops (after the test has closed the producer).
func producerOnKfake(t *testing.T, client string, tweak func(*conf.Kafka)) (Producer, *acks) {
	t.Helper()
	return newProducer(t, client, startKafka(t).Addrs, tweak)
}

// startKafka starts an in-process Kafka that the test's cleanup stops.
func startKafka(t *testing.T) *testenv.Kafka {
	t.Helper()
	k, err := testenv.StartKafka(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

func TestBackends(t *testing.T) {
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			p, a := producerOnKfake(t, client, func(c *conf.Kafka) { c.MaxMessageBytes = 64 << 10 })
			defer p.Close(context.Background())
			key := NewHeaderKey("path")
			for i := 0; i < 100; i++ {
				m := &Message{Topic: "t", Value: []byte{byte('a' + i%26)}, PartitionKey: []byte("/f"),
					Headers: []Header{{Key: key, Value: []byte("/f")}}}
				if err := p.Send(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
			a.wait(t, 100)
			if len(a.ok) != 100 || len(a.errs) != 0 {
				t.Fatalf("%d acks, %d errors", len(a.ok), len(a.errs))
			}
			// A record Kafka can never take comes back with its error, once.
			big := &Message{Topic: "t", Value: []byte(strings.Repeat("x", 100<<10))}
			if err := p.Send(context.Background(), big); err != nil {
				t.Fatal(err)
			}
			a.wait(t, 1)
			if len(a.errs) != 1 {
				t.Fatalf("oversized record: %d errors, %d acks", len(a.errs), len(a.ok))
			}
			if err := p.Healthy(); err != nil {
				t.Fatalf("healthy: %v", err)
			}
		})
	}
}

// linger = 0 means "send at once", not "wait for a full batch": a single
// record is acked. (sarama with a flush size and no flush frequency held a
// partial batch forever.)
func TestLingerZeroSendsAtOnce(t *testing.T) {
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			p, a := producerOnKfake(t, client, func(c *conf.Kafka) { c.Linger = 0 })
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				p.Close(ctx)
			}()
			if err := p.Send(context.Background(), &Message{Topic: "t", Value: []byte("one")}); err != nil {
				t.Fatal(err)
			}
			a.wait(t, 1)
		})
	}
}

// A message's Time is its record's timestamp, to the millisecond, with
// either client; without one the client's clock stamps it.
func TestRecordTimestampIsMessageTime(t *testing.T) {
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			k := startKafka(t)
			p, a := newProducer(t, client, k.Addrs, nil)
			defer p.Close(context.Background())
			read := time.Date(2021, 3, 4, 5, 6, 7, 89_123_456, time.UTC)
			before := time.Now().Truncate(time.Millisecond)
			for _, m := range []*Message{{Topic: "ts", Value: []byte("read"), Time: read}, {Topic: "ts", Value: []byte("unstamped")}} {
				if err := p.Send(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
			a.wait(t, 2)
			after := time.Now()
			rs := consume(t, k.Addrs, "ts", 2)
			if want := read.Truncate(time.Millisecond); !rs[0].Timestamp.Equal(want) {
				t.Errorf("record with Time: timestamp %s, want %s", rs[0].Timestamp.UTC(), want)
			}
			if ts := rs[1].Timestamp; ts.Before(before) || ts.After(after) {
				t.Errorf("record without Time: timestamp %s, want the send's time (%s to %s)", ts.UTC(), before.UTC(), after.UTC())
			}
		})
	}
}

// franz-go's lz4 frames: 64 KiB blocks, no content checksum (the batch's
// CRC covers them), and they decompress to what went in.
func TestLz4Frame(t *testing.T) {
	src := bytes.Repeat([]byte("10.0.0.1 - - [02/Dec/2026:03:00:00 +0000] \"GET /a HTTP/1.1\" 200 123\n"), 5000)
	var dst bytes.Buffer
	out, codec := newLz4Compressor().Compress(&dst, src)
	if codec != kgo.CodecLz4 {
		t.Fatalf("codec %v", codec)
	}
	// The frame descriptor: magic (4 bytes), FLG, BD. FLG bit 2 is the
	// content checksum, bit 5 block independence (Kafka's reader requires
	// it); BD bits 4-6 the block size (4: 64 KiB).
	if len(out) < 6 || out[4]&0x04 != 0 || out[4]&0x20 == 0 || (out[5]>>4)&0x7 != 4 {
		t.Fatalf("frame descriptor FLG %08b BD %08b: want independent blocks, no content checksum, 64 KiB blocks", out[4], out[5])
	}
	back, err := io.ReadAll(lz4.NewReader(bytes.NewReader(out)))
	if err != nil || !bytes.Equal(back, src) {
		t.Fatalf("round trip: %d bytes, err %v", len(back), err)
	}
}

// franz-go's batch limit is also its record limit: it follows the largest
// record the caller announces, and such a record is delivered.
func TestLargestRecordIsSent(t *testing.T) {
	c := conf.Default().Kafka
	for _, tc := range []struct{ largest, want int }{
		{0, c.MaxMessageBytes}, {100 << 10, 256 << 10}, {528 << 10, 528 << 10}, {2 << 20, c.MaxMessageBytes}} {
		c.LargestRecord = tc.largest
		if got := batchMaxBytes(c); got != tc.want {
			t.Errorf("LargestRecord %d: batch max %d, want %d", tc.largest, got, tc.want)
		}
	}
	p, a := producerOnKfake(t, conf.ClientFranzGo, func(c *conf.Kafka) { c.LargestRecord = 400 << 10 })
	defer p.Close(context.Background())
	if err := p.Send(context.Background(), &Message{Topic: "t", Value: bytes.Repeat([]byte("x"), 390<<10)}); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 1)
	if len(a.errs) != 0 {
		t.Fatalf("refused: %v", a.errs)
	}
}

// refuseProduce answers a produce request with err for every partition.
func refuseProduce(kreq kmsg.Request, err *kerr.Error) *kmsg.ProduceResponse {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Version = req.Version
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = err.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// A refusal that is not about the record (here: the topic not authorized,
// as while an ACL is being fixed) is not a reason to drop the line: the
// record is produced again and acked once Kafka takes it.
func TestRefusedRecordIsProducedAgain(t *testing.T) {
	k, err := testenv.StartKafka(0)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	refusals := 0
	k.C.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if refusals == 3 {
			return nil, nil, false // from now on the broker answers
		}
		k.C.KeepControl()
		refusals++
		return refuseProduce(kreq, kerr.TopicAuthorizationFailed), nil, true
	})
	p, a := newProducer(t, conf.ClientFranzGo, k.Addrs, nil)
	defer p.Close(context.Background())
	if err := p.Send(context.Background(), &Message{Topic: "t", Value: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 1)
	if len(a.errs) != 0 || len(a.ok) != 1 || refusals != 3 {
		t.Fatalf("acks %q, errors %v after %d refusals", a.ok, a.errs, refusals)
	}
}

// A topic whose message.timestamp.before.max.ms refuses a line read long
// ago (INVALID_TIMESTAMP, which no client retries) does not lose it, nor
// stall on it: it is sent again with the time of sending.
func TestRefusedTimestampIsSentAgainWithSendTime(t *testing.T) {
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			k := startKafka(t)
			var refusals atomic.Int32
			k.C.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				if refusals.Load() > 0 {
					return nil, nil, false
				}
				refusals.Add(1)
				return refuseProduce(kreq, kerr.InvalidTimestamp), nil, true
			})
			p, a := newProducer(t, client, k.Addrs, nil)
			defer p.Close(context.Background())
			before := time.Now().Truncate(time.Millisecond)
			read := before.Add(-48 * time.Hour)
			if err := p.Send(context.Background(), &Message{Topic: "ts", Value: []byte("late"), Time: read}); err != nil {
				t.Fatal(err)
			}
			a.wait(t, 1)
			after := time.Now()
			if len(a.errs) != 0 || len(a.ok) != 1 || refusals.Load() != 1 {
				t.Fatalf("acks %q, errors %v after %d refusals", a.ok, a.errs, refusals.Load())
			}
			rs := consume(t, k.Addrs, "ts", 1)
			if ts := rs[0].Timestamp; ts.Before(before) || ts.After(after) {
				t.Fatalf("timestamp %s, want the second send's (%s to %s), not the refused %s", ts.UTC(), before.UTC(), after.UTC(), read.UTC())
			}
		})
	}
}

// Kafka down: Send blocks or buffers, Healthy says why, Close is bounded.
func TestBrokerDown(t *testing.T) {
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			port, _ := testenv.FreePort()
			p, a := newProducer(t, client, []string{"127.0.0.1:" + strconv.Itoa(port)}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			p.Send(ctx, &Message{Topic: "t", Value: []byte("x")})
			deadline := time.Now().Add(5 * time.Second)
			for p.Healthy() == nil && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if err := p.Healthy(); err == nil {
				t.Fatal("healthy with no broker")
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer ccancel()
			start := time.Now()
			err := p.Close(cctx)
			if time.Since(start) > 3*time.Second {
				t.Fatalf("Close took %s", time.Since(start))
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Close: %v", err)
			}
			if len(a.ok) != 0 {
				t.Fatal("acked with no broker")
			}
		})
	}
}

// The record key (the line's id, different for every line) is sent as the
// key but does not pick the partition: PartitionKey (the path) does, so
// the lines of one file stay in one partition, in order.
func TestPartitionIsByPartitionKeyNotRecordKey(t *testing.T) {
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			k := startKafka(t)
			const parts = 8
			createTopic(t, k.Addrs, "keyed", parts)
			p, a := newProducer(t, client, k.Addrs, nil)
			defer p.Close(context.Background())
			path := NewHeaderKey("path")
			const n = 200
			files := []string{"/var/log/a.log", "/var/log/b.log"}
			for i := 0; i < n; i++ {
				f := files[i%2]
				m := &Message{Topic: "keyed", Value: []byte(strconv.Itoa(i)), Key: []byte(fmt.Sprintf("h:%016x:%d", i, i)),
					PartitionKey: []byte(f), Headers: []Header{{Key: path, Value: []byte(f)}}}
				if err := p.Send(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
			a.wait(t, n)
			last := map[string]int{}
			for _, r := range consume(t, k.Addrs, "keyed", n) {
				f := r.Headers["path"]
				if want := partitionFor([]byte(f), parts); r.Partition != want {
					t.Fatalf("record of %s in partition %d, want %d (by the path)", f, r.Partition, want)
				}
				i, _ := strconv.Atoi(string(r.Value))
				if want := fmt.Sprintf("h:%016x:%d", i, i); string(r.Key) != want {
					t.Fatalf("record %d has key %q, want %q", i, r.Key, want)
				}
				if prev, ok := last[f]; ok && i < prev {
					t.Fatalf("%s: record %d after %d", f, i, prev)
				}
				last[f] = i
			}
		})
	}
}

// createTopic creates topic with parts partitions.
func createTopic(t *testing.T, addrs []string, topic string, parts int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, parts, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func TestPartitionForIsStable(t *testing.T) {
	a, b := partitionFor([]byte("/var/log/a.log"), 12), partitionFor([]byte("/var/log/a.log"), 12)
	if a != b || a < 0 || a >= 12 {
		t.Fatalf("partition %d then %d", a, b)
	}
	if partitionFor(nil, 12) != 0 || partitionFor([]byte("x"), 1) != 0 {
		t.Fatal("degenerate cases")
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {50, 10 * time.Second}} {
		if got := backoff(100*time.Millisecond, tc.attempt); got != tc.want {
			t.Errorf("backoff(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}

// BenchmarkLz4Compress: one 512 KiB batch of access-log lines, as franz-go
// hands the compressor (the agent's batches are at most 520 KiB).
func BenchmarkLz4Compress(b *testing.B) {
	var src []byte
	for i := 0; len(src) < 512<<10; i++ {
		src = fmt.Appendf(src, "10.%d.%d.%d - - [02/Dec/2026:03:%02d:%02d +0000] \"GET /api/items/%d HTTP/1.1\" %d %d\n",
			i%256, i*7%256, i*13%256, i/60%60, i%60, i*7919%10000, []int{200, 200, 304, 404}[i%4], 100+i*31%9000)
	}
	c := newLz4Compressor()
	var dst bytes.Buffer
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		dst.Reset()
		c.Compress(&dst, src)
	}
}

// startKafkaLimited starts an in-process Kafka whose brokers take batches
// of at most maxBytes (message.max.bytes), as shared clusters often do.
func startKafkaLimited(t *testing.T, maxBytes int) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(maxBytes)}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// shortLines are n lines of about 90 bytes that compress about 2:1 (hex),
// so that even lz4 batches of the agent's size are over 100,000 bytes.
func shortLines(n int) [][]byte {
	out := make([][]byte, n)
	x := uint64(88172645463325252)
	for i := range out {
		var b []byte
		b = fmt.Appendf(b, "%07d ", i)
		for len(b) < 90 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b = fmt.Appendf(b, "%016x", x)
		}
		out[i] = b[:90]
	}
	return out
}

// sendAll sends values to topic with a path header, from a goroutine of
// its own (acks are awaited meanwhile), and fails the test on an error.
func sendAll(t *testing.T, p Producer, topic string, values [][]byte) {
	t.Helper()
	key := NewHeaderKey("path")
	errc := make(chan error, 1)
	go func() {
		for _, v := range values {
			m := &Message{Topic: topic, Value: v, PartitionKey: []byte("/f"), Headers: []Header{{Key: key, Value: []byte("/var/log/f.log")}}}
			if err := p.Send(context.Background(), m); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	t.Cleanup(func() {
		if err := <-errc; err != nil {
			t.Errorf("send: %v", err)
		}
	})
}

// withLine returns lines with line inserted in the middle.
func withLine(lines [][]byte, line []byte) [][]byte {
	return slices.Concat(lines[:len(lines)/2], [][]byte{line}, lines[len(lines)/2:])
}

// checkGivenUp fails unless a acked want records and gave up exactly one,
// the line too large by itself.
func checkGivenUp(t *testing.T, a *acks, want int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ok) != want || len(a.errs) != 1 || !strings.Contains(a.errs[0].Error(), "record too large") {
		t.Fatalf("%d acked, %d given up (%v); want %d acked and the 300 KB line given up", len(a.ok), len(a.errs), a.errs, want)
	}
}

// A topic whose limit (message.max.bytes 100,000) is far below the agent's
// batches: its limit is learned before its first batch, batches are cut
// to it, and every short line arrives, in order; none is given up. A line
// too large by itself (300 KB) is given up alone. The limit is reported.
func TestBatchTooLargeForTopicIsSentSmaller(t *testing.T) {
	const n = 50000
	lines := shortLines(n)
	big := bytes.Repeat([]byte("y"), 300<<10)
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		for _, codec := range []string{"none", "lz4"} {
			t.Run(client+"/"+codec, func(t *testing.T) {
				k := startKafkaLimited(t, 100000)
				addrs := k.ListenAddrs()
				p, a := newProducer(t, client, addrs, func(c *conf.Kafka) {
					c.Compression, c.Linger = codec, 20*time.Millisecond
				})
				defer p.Close(context.Background())
				sendAll(t, p, "small", withLine(lines, big))
				a.wait(t, n+1)
				checkGivenUp(t, a, n)
				rs := consume(t, addrs, "small", n)
				for i, r := range rs {
					if !bytes.Equal(r.Value, lines[i]) {
						t.Fatalf("record %d is %.20q, want %.20q", i, r.Value, lines[i])
					}
				}
				ls := p.Limits()
				if len(ls) != 1 || ls[0].Topic != "small" || ls[0].MaxMessageBytes != 100000 ||
					!strings.Contains(ls[0].Problem, "max_message_bytes 1000000") {
					t.Fatalf("limits %+v, want topic small at 100000 bytes, below max_message_bytes", ls)
				}
			})
		}
	}
}

// A topic whose limit is lowered while the agent sends to it: the batches
// it refuses are sent again cut to its new limit, learned at once; every
// short line arrives, none is given up.
func TestTopicLimitLoweredWhileSending(t *testing.T) {
	const n = 30000
	lines := shortLines(2 * n)
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			k := startKafka(t)
			p, a := newProducer(t, client, k.Addrs, func(c *conf.Kafka) { c.Compression, c.Linger = "none", 20*time.Millisecond })
			defer p.Close(context.Background())
			sendAll(t, p, "lowered", lines[:n])
			a.wait(t, n)
			if err := k.AlterConfig(kmsg.ConfigResourceTypeTopic, "lowered", "max.message.bytes", "100000"); err != nil {
				t.Fatal(err)
			}
			sendAll(t, p, "lowered", lines[n:])
			a.wait(t, n)
			if len(a.errs) != 0 || len(a.ok) != 2*n {
				t.Fatalf("%d acked, %d given up (%v), want %d acked", len(a.ok), len(a.errs), a.errs, 2*n)
			}
			if ls := p.Limits(); len(ls) != 1 || ls[0].MaxMessageBytes != 100000 {
				t.Fatalf("limits %+v, want topic lowered at 100000 bytes", ls)
			}
			checkDelivered(t, k.Addrs, "lowered", lines)
		})
	}
}

// checkDelivered fails unless every line is in topic (once or more: a
// batch refused is sent again, and may have been partly written).
func checkDelivered(t *testing.T, addrs []string, topic string, lines [][]byte) {
	t.Helper()
	c, err := testenv.NewConsumer(addrs, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	missing := map[string]bool{}
	for _, l := range lines {
		missing[string(l)] = true
	}
	for deadline := time.Now().Add(20 * time.Second); len(missing) > 0 && time.Now().Before(deadline); {
		got, _ := c.Poll(context.Background(), 500*time.Millisecond)
		for _, r := range got {
			delete(missing, string(r.Value))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d lines not in %s", len(missing), len(lines), topic)
	}
}

// Brokers that do not let the agent read configs (no DescribeConfigs
// ACL): the topic's limit stays unknown, so a record refused in a batch of
// several is sent again in a batch of its own; every short line arrives,
// and only the 300 KB line, refused alone, is given up.
func TestBatchTooLargeWhenLimitUnknown(t *testing.T) {
	const n = 3000
	lines := shortLines(n)
	big := bytes.Repeat([]byte("y"), 300<<10)
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			k := startKafkaLimited(t, 100000)
			var denied atomic.Int32
			k.ControlKey(int16(kmsg.DescribeConfigs), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				k.KeepControl()
				denied.Add(1)
				req := kreq.(*kmsg.DescribeConfigsRequest)
				resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
				resp.Version = req.Version
				for _, rr := range req.Resources {
					r := kmsg.NewDescribeConfigsResponseResource()
					r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
					r.ErrorCode = kerr.TopicAuthorizationFailed.Code
					if rr.ResourceType == kmsg.ConfigResourceTypeBroker {
						r.ErrorCode = kerr.ClusterAuthorizationFailed.Code
					}
					resp.Resources = append(resp.Resources, r)
				}
				return resp, nil, true
			})
			p, a := newProducer(t, client, k.ListenAddrs(), func(c *conf.Kafka) { c.Compression, c.Linger = "none", 20*time.Millisecond })
			defer p.Close(context.Background())
			sendAll(t, p, "unknown", withLine(lines, big))
			a.wait(t, n+1)
			checkGivenUp(t, a, n)
			if denied.Load() == 0 {
				t.Fatal("the agent never asked for the topic's config")
			}
			if ls := p.Limits(); len(ls) != 0 {
				t.Fatalf("limits %+v, want none known", ls)
			}
			checkDelivered(t, k.ListenAddrs(), "unknown", lines)
		})
	}
}

// A topic's limit is its own max.message.bytes, else the brokers'
// message.max.bytes, else max.message.bytes as described (its default).
func TestLimitOf(t *testing.T) {
	cfg := func(name, value string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfig {
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.Source = name, kmsg.StringPtr(value), src
		return c
	}
	def := cfg("max.message.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)
	broker := cfg("message.max.bytes", "100000", kmsg.ConfigSourceDynamicBrokerConfig)
	own := cfg("max.message.bytes", "50000", kmsg.ConfigSourceDynamicTopicConfig)
	for _, tc := range []struct {
		cs   []kmsg.DescribeConfigsResponseResourceConfig
		want int
	}{
		{nil, 0},
		{[]kmsg.DescribeConfigsResponseResourceConfig{def}, 1048588},
		{[]kmsg.DescribeConfigsResponseResourceConfig{def, broker}, 100000},
		{[]kmsg.DescribeConfigsResponseResourceConfig{def, broker, own}, 50000},
		{[]kmsg.DescribeConfigsResponseResourceConfig{cfg("max.message.bytes", "x", kmsg.ConfigSourceDynamicTopicConfig), def}, 1048588},
	} {
		if got := limitOf(tc.cs); got != tc.want {
			t.Errorf("limitOf(%d configs) = %d, want %d", len(tc.cs), got, tc.want)
		}
	}
}

// A refused record is given up only when it was alone in its batch or is
// over its topic's limit by itself.
func TestJudgeTooLarge(t *testing.T) {
	small := &Message{Value: make([]byte, 100)}
	big := &Message{Value: make([]byte, 300<<10)}
	for _, tc := range []struct {
		name                string
		m                   *Message
		sent, record, batch int
		want                tooLarge
	}{
		{"refused alone", small, 0, 100000, 100000, giveUp},
		{"over the limit by itself", big, 1000000, 100000, 100000, giveUp},
		{"batches now smaller", small, 1000000, 100000, 100000, resendBatch},
		{"batch already cut to the limit", small, 100000, 100000, 100000, resendAlone},
		{"limit unknown", small, 1000000, 1000000, 1000000, resendAlone},
	} {
		if got := judgeTooLarge(tc.m, tc.sent, tc.record, tc.batch); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// A topic whose limit could not be read when its first record was sent
// (here: DescribeConfigs refused once) is looked up again in the
// background, so that its batches are cut to its limit before Kafka has
// to refuse one: later lines arrive in order.
func TestTopicLimitLearnedAfterFailedLookup(t *testing.T) {
	old := unknownEvery
	unknownEvery = 50 * time.Millisecond
	defer func() { unknownEvery = old }()
	const n = 20000
	lines := shortLines(n)
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			k := startKafkaLimited(t, 100000)
			var refused atomic.Bool
			k.ControlKey(int16(kmsg.DescribeConfigs), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				if refused.Swap(true) {
					return nil, nil, false
				}
				return nil, errors.New("refused once"), true // the connection is closed
			})
			p, a := newProducer(t, client, k.ListenAddrs(), func(c *conf.Kafka) { c.Compression, c.Linger = "none", 20*time.Millisecond })
			defer p.Close(context.Background())
			sendAll(t, p, "later", lines[:1])
			a.wait(t, 1)
			for deadline := time.Now().Add(10 * time.Second); len(p.Limits()) == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the topic's limit was never learned after the first lookup failed")
				}
			}
			sendAll(t, p, "later", lines[1:])
			a.wait(t, n-1)
			if len(a.errs) != 0 || len(a.ok) != n {
				t.Fatalf("%d acked, %d given up, want %d acked", len(a.ok), len(a.errs), n)
			}
			for i, r := range consume(t, k.ListenAddrs(), "later", n) {
				if !bytes.Equal(r.Value, lines[i]) {
					t.Fatalf("record %d is %.20q, want %.20q", i, r.Value, lines[i])
				}
			}
		})
	}
}

// sarama's open circuit breaker is no news of Kafka: the failure that
// opened it stays the health's reason, in words an operator can act on.
func TestHealthIgnoresOpenBreaker(t *testing.T) {
	var h health
	h.probe = &prober{}
	refused := errors.New("dial tcp 127.0.0.1:9092: connect: connection refused")
	h.set(refused)
	h.set(breaker.ErrBreakerOpen)
	if err := h.Healthy(); err != refused {
		t.Fatalf("health after the breaker opened: %v, want the failure that opened it", err)
	}
	var fresh health
	fresh.probe = &prober{}
	fresh.set(breaker.ErrBreakerOpen)
	if err := fresh.Healthy(); err == nil || strings.Contains(err.Error(), "circuit breaker is open") {
		t.Fatalf("health with only the breaker's error: %v, want plain words", err)
	}
}
