package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// broker is the Kafka every contender talks to: the in-process kfake
// (default) or a real cluster given with -brokers / BROKERS.
type broker struct {
	addrs      []string
	partitions int32
	admin      *kgo.Client
	inProcess  bool
}

func newBroker(addrs []string, partitions int32, inProcess bool) (*broker, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequestTimeoutOverhead(5*time.Second),
		kgo.RetryTimeout(15*time.Second))
	if err != nil {
		return nil, err
	}
	return &broker{addrs: addrs, partitions: partitions, admin: cl, inProcess: inProcess}, nil
}

func (b *broker) list() string { return strings.Join(b.addrs, ",") }

func (b *broker) close() { b.admin.Close() }

// createTopic creates topic with b.partitions partitions and the broker's
// default replication factor, and waits until every partition has a leader.
func (b *broker) createTopic(ctx context.Context, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 15000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = b.partitions
	rt.ReplicationFactor = -1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			msg := ""
			if t.ErrorMessage != nil {
				msg = " (" + *t.ErrorMessage + ")"
			}
			return fmt.Errorf("create topic %s: %w%s", topic, err, msg)
		}
	}
	// Wait until the partitions are led (a real cluster needs a moment).
	for {
		n, err := b.endOffset(ctx, topic)
		if err == nil && n >= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not ready: %v", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deleteTopic frees the broker's memory (kfake) or disk (real Kafka).
func (b *broker) deleteTopic(ctx context.Context, topic string) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 15000
	req.TopicNames = []string{topic}
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.RequestWith(ctx, b.admin) //nolint:errcheck // best effort
}

// endOffset is the sum over the topic's partitions of the high watermark:
// with one producer and a fresh topic, the number of records that Kafka
// has acknowledged (acks=all: replicated).
func (b *broker) endOffset(ctx context.Context, topic string) (int64, error) {
	m, err := b.endOffsets(ctx, []string{topic})
	if err != nil {
		return 0, err
	}
	return m[topic], nil
}

func (b *broker) endOffsets(ctx context.Context, topics []string) (map[string]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	for _, t := range topics {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t
		for p := int32(0); p < b.partitions; p++ {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = -1 // latest
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(topics))
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("list offsets %s/%d: %w", t.Topic, p.Partition, err)
			}
			out[t.Topic] += p.Offset
		}
	}
	return out, nil
}

// waitEndOffset polls until the topic holds at least n records; it returns
// the time that was first seen, or an error when ctx ends or done closes
// first (the producer died).
func (b *broker) waitEndOffset(ctx context.Context, topic string, n int64, every time.Duration, done <-chan struct{}) (time.Time, int64, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	for {
		got, err := b.endOffset(ctx, topic)
		if err == nil {
			last = got
			if got >= n {
				return time.Now(), got, nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, last, fmt.Errorf("%v with %d of %d records in %s", context.Cause(ctx), last, n, topic)
		case <-done:
			got, err := b.endOffset(context.Background(), topic)
			if err == nil && got >= n {
				return time.Now(), got, nil
			}
			return time.Time{}, got, fmt.Errorf("process exited with %d of %d records in %s", got, n, topic)
		case <-t.C:
		}
	}
}

// firstRecord returns the value of the record at offset 0 of partition 0.
func (b *broker) firstRecord(ctx context.Context, topic string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().At(0)}}), kgo.FetchMaxBytes(1<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for {
		fs := cl.PollRecords(ctx, 1)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s/0@0: %w", topic, err)
		}
		var out []byte
		found := false
		fs.EachRecord(func(r *kgo.Record) {
			if !found && r.Offset == 0 {
				out, found = r.Value, true
			}
		})
		if found {
			return out, nil
		}
	}
}
