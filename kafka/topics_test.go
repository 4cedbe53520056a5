package kafka

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/internal/testenv"
)

// topicEvent is one call of Hooks.Topic.
type topicEvent struct {
	topic string
	err   error
}

// producerWithTopicHook is newProducer whose Hooks.Topic calls go to the
// returned channel.
func producerWithTopicHook(t *testing.T, client string, brokers []string, tweak func(*conf.Kafka)) (Producer, *acks, chan topicEvent) {
	t.Helper()
	events := make(chan topicEvent, 100)
	p, a := newProducerHooks(t, client, brokers, Hooks{Topic: func(topic string, err error) { events <- topicEvent{topic, err} }}, tweak)
	return p, a, events
}

// awaitTopic waits for the hook's call for topic; refused: with an error.
func awaitTopic(t *testing.T, events chan topicEvent, topic string, refused bool) error {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case e := <-events:
			if e.topic == topic && (e.err != nil) == refused {
				return e.err
			}
		case <-deadline:
			t.Fatalf("no Topic(%s) hook call with refused=%v", topic, refused)
		}
	}
}

// sendN sends n records "<prefix><i>" to topic.
func sendN(t *testing.T, p Producer, topic, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		m := &Message{Topic: topic, Value: fmt.Appendf(nil, "%s%d", prefix, i), PartitionKey: []byte(prefix)}
		if err := p.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// onlyPrefix fails unless every acked value starts with prefix.
func (a *acks) onlyPrefix(t *testing.T, prefix string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, v := range a.ok {
		if !strings.HasPrefix(v, prefix) {
			t.Fatalf("acked %q while its topic was refused", v)
		}
	}
	if len(a.errs) != 0 {
		t.Fatalf("errors: %v", a.errs)
	}
}

// inOrder fails unless rs are "<prefix>0" .. "<prefix><n-1>".
func inOrder(t *testing.T, rs []testenv.Record, prefix string) {
	t.Helper()
	for i, r := range rs {
		if want := fmt.Sprintf("%s%d", prefix, i); string(r.Value) != want {
			t.Fatalf("record %d is %q, want %q", i, r.Value, want)
		}
	}
}

// A topic that does not exist, on a broker that creates none on demand,
// does not stall another topic: its records wait (Send does not block),
// the refusal is reported in plain words, and once the topic is created
// every record follows, in order. Before, sarama held every new record of
// every topic while one was failing, and kgo waited on the topic forever
// without saying why.
func TestUnknownTopicWaitsWhileOthersGoOn(t *testing.T) {
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			k, err := testenv.StartKafkaStrict(0, "good")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(k.Close)
			p, a, events := producerWithTopicHook(t, client, k.Addrs, nil)
			defer p.Close(context.Background())
			sendN(t, p, "missing", "m", 300)
			refusal := awaitTopic(t, events, "missing", true)
			sendN(t, p, "good", "g", 300)
			a.wait(t, 300)
			a.onlyPrefix(t, "g")
			ts := p.Topics()
			if len(ts) != 1 || ts[0].Topic != "missing" || ts[0].Reason() != "topic missing does not exist on the brokers" || ts[0].Waiting != 300 {
				t.Fatalf("topics %+v (first refusal %v), want missing, does not exist, 300 waiting", ts, refusal)
			}
			if _, err := k.CreateTopic("missing"); err != nil {
				t.Fatal(err)
			}
			awaitTopic(t, events, "missing", false)
			a.wait(t, 300)
			inOrder(t, consume(t, k.Addrs, "missing", 300), "m")
			inOrder(t, consume(t, k.Addrs, "good", 300), "g")
			if ts := p.Topics(); len(ts) != 0 {
				t.Fatalf("topics still refused: %+v", ts)
			}
		})
	}
}

// refuseTopic answers a produce request: the partitions of the topic
// named topic (or with id: newer requests name topics by id) with err,
// the others with NOT_LEADER_FOR_PARTITION, which both clients retry by
// themselves: the broker stored none of them.
func refuseTopic(kreq kmsg.Request, topic string, id [16]byte, err *kerr.Error) *kmsg.ProduceResponse {
	resp := refuseProduce(kreq, err)
	for i := range resp.Topics {
		if resp.Topics[i].Topic != topic && resp.Topics[i].TopicID != id {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = kerr.NotLeaderForPartition.Code
			}
		}
	}
	return resp
}

// denyTopic makes k refuse topic (id: its topic id) with
// TOPIC_AUTHORIZATION_FAILED while the returned flag is set.
func denyTopic(k *testenv.Kafka, topic string, id [16]byte) *atomic.Bool {
	denied := new(atomic.Bool)
	k.C.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		k.C.KeepControl()
		if !denied.Load() {
			return nil, nil, false
		}
		for _, rt := range kreq.(*kmsg.ProduceRequest).Topics {
			if rt.Topic == topic || rt.TopicID == id {
				return refuseTopic(kreq, topic, id, kerr.TopicAuthorizationFailed), nil, true
			}
		}
		return nil, nil, false
	})
	return denied
}

// A topic the agent may no longer write (TOPIC_AUTHORIZATION_FAILED: its
// ACL revoked) waits beside one it may: the other's records go on, and
// once the ACL is granted again the refused ones follow, in order after
// those taken before.
func TestUnauthorisedTopicWaitsWhileOthersGoOn(t *testing.T) {
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			k := startKafka(t)
			id, err := k.CreateTopic("secret")
			if err != nil {
				t.Fatal(err)
			}
			denied := denyTopic(k, "secret", id)
			p, a, events := producerWithTopicHook(t, client, k.Addrs, nil)
			defer p.Close(context.Background())
			sendN(t, p, "secret", "s", 100)
			a.wait(t, 100)
			denied.Store(true)
			for i := 100; i < 400; i++ {
				if err := p.Send(context.Background(), &Message{Topic: "secret", Value: fmt.Appendf(nil, "s%d", i), PartitionKey: []byte("s")}); err != nil {
					t.Fatal(err)
				}
			}
			awaitTopic(t, events, "secret", true)
			a.mu.Lock()
			a.ok = nil
			a.mu.Unlock()
			sendN(t, p, "open", "o", 300)
			a.wait(t, 300)
			a.onlyPrefix(t, "o")
			if ts := p.Topics(); len(ts) != 1 || ts[0].Reason() != "the agent is not authorised to write to topic secret" {
				t.Fatalf("topics %+v, want secret, not authorised", ts)
			}
			denied.Store(false)
			awaitTopic(t, events, "secret", false)
			a.wait(t, 300)
			inOrder(t, consume(t, k.Addrs, "secret", 400), "s")
			inOrder(t, consume(t, k.Addrs, "open", 300), "o")
		})
	}
}

// A topic whose batches were refused as too large (#27: sent again
// smaller, and a line too large by itself given up) and that Kafka then
// refuses (#25): the records refused as too large left the gate's count
// when they were taken or given up, so the refused topic counts exactly
// its waiting records, is probed, and once it is granted again every
// waiting record follows. Without the gate settling a given-up record,
// the topic counted one record too many in the client and was never
// probed again.
func TestTooLargeThenRefusedTopic(t *testing.T) {
	const n = 20000
	lines := shortLines(2 * n)
	big := bytes.Repeat([]byte("y"), 300<<10)
	for _, client := range []string{conf.ClientSarama, conf.ClientFranzGo} {
		t.Run(client, func(t *testing.T) {
			k := startKafka(t)
			id, err := k.CreateTopic("shrunk")
			if err != nil {
				t.Fatal(err)
			}
			denied := denyTopic(k, "shrunk", id)
			p, a, events := producerWithTopicHook(t, client, k.Addrs, func(c *conf.Kafka) {
				c.Compression, c.Linger = "none", 20*time.Millisecond
			})
			defer p.Close(context.Background())
			sendAll(t, p, "shrunk", lines[:n])
			a.wait(t, n)
			if err := k.AlterConfig(kmsg.ConfigResourceTypeTopic, "shrunk", "max.message.bytes", "100000"); err != nil {
				t.Fatal(err)
			}
			sendAll(t, p, "shrunk", withLine(lines[n:], big))
			a.wait(t, n+1)
			checkGivenUp(t, a, 2*n)
			if ls := p.Limits(); len(ls) != 1 || ls[0].MaxMessageBytes != 100000 {
				t.Fatalf("limits %+v, want topic shrunk at 100000 bytes", ls)
			}

			denied.Store(true)
			sendN(t, p, "shrunk", "s", 300)
			awaitTopic(t, events, "shrunk", true)
			ts := p.Topics()
			if len(ts) != 1 || ts[0].Topic != "shrunk" || ts[0].Waiting != 300 {
				t.Fatalf("topics %+v, want shrunk refused with 300 waiting", ts)
			}
			denied.Store(false)
			awaitTopic(t, events, "shrunk", false)
			a.wait(t, 300)
			a.mu.Lock()
			acked := len(a.ok)
			a.mu.Unlock()
			if acked != 2*n+300 {
				t.Fatalf("%d acked, want %d", acked, 2*n+300)
			}
			if ts := p.Topics(); len(ts) != 0 {
				t.Fatalf("topics still refused: %+v", ts)
			}
		})
	}
}
