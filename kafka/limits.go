package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/fleet"
)

// TopicLimit is a topic whose message size limit on the brokers (its
// max.message.bytes, which inherits the brokers' message.max.bytes) is
// below [kafka] max_message_bytes: a part of the status document.
type TopicLimit = fleet.TopicLimit

// limitProblem says what a topic limit below max_message_bytes means for
// the agent's lines, or "" when there is no mismatch.
func limitProblem(c conf.Kafka, topic string, limit int) string {
	if limit <= 0 || limit >= c.MaxMessageBytes {
		return ""
	}
	s := fmt.Sprintf("topic %s takes batches of at most %d bytes (its max.message.bytes), less than [kafka] max_message_bytes %d: the agent cuts its batches to fit",
		topic, limit, c.MaxMessageBytes)
	if linesSkipped(c, limit) {
		fit := limit - conf.RecordOverhead
		s += fmt.Sprintf("; but a line longer than about %d bytes does not fit on its own and is skipped ([agent] max_line_bytes %d lets longer lines through whole): set max_line_bytes to %d or less, so that long lines are sent in pieces that fit, or raise the topic's max.message.bytes",
			fit, c.LargestRecord-conf.RecordOverhead, fit)
	}
	return s
}

// linesSkipped reports whether the agent's longest lines (max_line_bytes)
// may not fit in a batch of limit bytes.
func linesSkipped(c conf.Kafka, limit int) bool { return c.LargestRecord > limit }

// recordBatchHeader is the size of a record batch without its records, as
// the broker counts it against max.message.bytes.
const recordBatchHeader = 61

// minRecordBytes is a lower bound of what m takes in a batch of its own:
// when even that is over a topic's limit, m can never be sent to it.
func minRecordBytes(m *Message) int {
	n := recordBatchHeader + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key.s) + len(h.Value)
	}
	return n
}

// tooLarge is what to do with a record Kafka (or the client, against its
// configured limit) refused as too large.
type tooLarge int

const (
	giveUp      tooLarge = iota // too large on its own: it can never be sent
	resendBatch                 // batches to its topic are smaller now
	resendAlone                 // its batch was sized to the topic's limit: send it in a batch of its own
)

// judgeTooLarge decides the fate of a refused record m: sentLimit is the
// batch limit it was sent under (0: alone in its batch), recordLimit the
// topic's limit as known now, batchLimit the size batches to its topic are
// cut to now. A record refused in a batch of several is never given up
// unless it is over the topic's limit by itself.
func judgeTooLarge(m *Message, sentLimit, recordLimit, batchLimit int) tooLarge {
	switch {
	case sentLimit == 0 || minRecordBytes(m) > recordLimit:
		return giveUp
	case batchLimit < sentLimit:
		return resendBatch
	default:
		return resendAlone
	}
}

// judge learns the limits of the topics of records refused as too large
// and judges each (judgeTooLarge, with batchLimit the size a topic's
// batches are cut to now): drop gets those too large by themselves,
// with the error their ack carries; the others are returned, marked alone
// where they must go in a batch of their own, to be sent again.
func (l *topicLimits) judge(big []refused, batchLimit func(topic string) int, drop func(m *Message, err error)) []*Message {
	if len(big) == 0 {
		return nil
	}
	var topics []string
	for _, r := range big {
		if !slices.Contains(topics, r.m.Topic) {
			topics = append(topics, r.m.Topic)
		}
	}
	l.learn(topics, 10*time.Second)
	var again []*Message
	for _, r := range big {
		limit := l.recordLimit(r.m.Topic)
		switch judgeTooLarge(r.m, r.sent, limit, batchLimit(r.m.Topic)) {
		case giveUp:
			drop(r.m, refusedTooLarge(r.m, limit, r.err))
			continue
		case resendAlone:
			r.m.alone = true
		}
		again = append(again, r.m)
	}
	return again
}

// refusedTooLarge is the error an ack carries for a record given up as
// too large.
func refusedTooLarge(m *Message, limit int, err error) error {
	return fmt.Errorf("record too large: %d bytes or more, and topic %s takes batches of at most %d bytes: %w",
		minRecordBytes(m), m.Topic, limit, err)
}

// topicLimits learns each topic's message size limit from Kafka
// (DescribeConfigs), for the topics the agent sends to: before a topic's
// first record is sent (so that its first batches are cut to it already:
// a refused batch is sent again, and its lines could land after later
// ones), again every refreshEvery, and at once when a record was refused
// as too large (learn).
type topicLimits struct {
	cfg      conf.Kafka
	log      *slog.Logger
	describe func(ctx context.Context, topics []string) (map[string]int, error)
	changed  func(topic string) // a topic's limit was learned or changed

	mu     sync.Mutex
	limits map[string]int  // learned; 0: not yet
	failed map[string]bool // the last lookup failed (logged once per failure streak)
	last   atomic.Pointer[string]
	ctx    context.Context
	cancel context.CancelFunc // Stop: ends a lookup under way too
	done   chan struct{}
}

// refreshEvery is how often the limits of known topics are looked up
// again: as often as the clients refresh their metadata by default. A
// topic whose limit is not known yet (Kafka was away) is tried every
// unknownEvery, so that its batches are cut before a refusal is needed.
const refreshEvery = 5 * time.Minute

var unknownEvery = 30 * time.Second // a variable for tests

func newTopicLimits(c conf.Kafka, log *slog.Logger, describe func(context.Context, []string) (map[string]int, error), changed func(string)) *topicLimits {
	l := &topicLimits{cfg: c, log: log, describe: describe, changed: changed,
		limits: map[string]int{}, failed: map[string]bool{},
		done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.run()
	return l
}

// firstLookup bounds the lookup of a new topic's limit, which its first
// record waits for (Kafka away: the record waits in the client anyway).
const firstLookup = 3 * time.Second

// see notes that topic is sent to; a new topic's limit is looked up
// before see returns (or ctx ends). It is called for every record, so the
// common case (the topic of the previous record) takes no lock.
func (l *topicLimits) see(ctx context.Context, topic string) {
	if p := l.last.Load(); p != nil && *p == topic {
		return
	}
	l.mu.Lock()
	_, ok := l.limits[topic]
	if !ok {
		l.limits[topic] = 0
	}
	l.mu.Unlock()
	l.last.Store(&topic)
	if !ok {
		l.learnCtx(ctx, []string{topic}, firstLookup)
	}
}

// get returns topic's learned limit (0: not known).
func (l *topicLimits) get(topic string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limits[topic]
}

// recordLimit is the largest batch topic takes, as far as the agent knows.
func (l *topicLimits) recordLimit(topic string) int {
	if n := l.get(topic); n > 0 {
		return min(n, l.cfg.MaxMessageBytes)
	}
	return l.cfg.MaxMessageBytes
}

func (l *topicLimits) run() {
	defer close(l.done)
	t := time.NewTicker(unknownEvery)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(last) >= refreshEvery {
			last = time.Now()
			l.learn(l.topics(), 10*time.Second)
		} else {
			l.learn(l.unknown(), 10*time.Second)
		}
	}
}

// unknown returns the topics whose limit is not known.
func (l *topicLimits) unknown() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for topic, n := range l.limits {
		if n == 0 {
			out = append(out, topic)
		}
	}
	return out
}

// topics returns the topics sent to so far.
func (l *topicLimits) topics() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.limits))
	for topic := range l.limits {
		out = append(out, topic)
	}
	return out
}

// learn looks up the limits of topics now (within timeout), and reports
// those that changed.
func (l *topicLimits) learn(topics []string, timeout time.Duration) {
	l.learnCtx(l.ctx, topics, timeout)
}

// learnCtx is learn that also ends with ctx.
func (l *topicLimits) learnCtx(ctx context.Context, topics []string, timeout time.Duration) {
	if len(topics) == 0 {
		return
	}
	slices.Sort(topics)
	dctx, cancel := context.WithTimeout(ctx, timeout)
	stop := context.AfterFunc(l.ctx, cancel)
	got, err := l.describe(dctx, topics)
	stop()
	cancel()
	if l.ctx.Err() != nil || ctx.Err() != nil {
		return // stopping, or the record's sender is
	}
	var changed []string
	l.mu.Lock()
	for _, topic := range topics {
		n, ok := got[topic]
		if !ok {
			if err != nil && !l.failed[topic] {
				l.failed[topic] = true
				l.log.Warn("cannot learn a topic's message size limit; looked up again when it refuses a batch as too large, and every 5 minutes; meanwhile refused records are sent again one per batch",
					"topic", topic, "err", err)
			}
			continue
		}
		delete(l.failed, topic)
		if old := l.limits[topic]; old != n {
			l.limits[topic] = n
			changed = append(changed, topic)
			if p := limitProblem(l.cfg, topic, n); p != "" {
				l.log.Warn(p)
			}
		}
	}
	l.mu.Unlock()
	for _, topic := range changed {
		if l.changed != nil {
			l.changed(topic)
		}
	}
}

// Limits returns the topics whose limit is below max_message_bytes.
func (l *topicLimits) Limits() []TopicLimit {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []TopicLimit
	for topic, n := range l.limits {
		if p := limitProblem(l.cfg, topic, n); p != "" {
			out = append(out, TopicLimit{Topic: topic, MaxMessageBytes: n, Problem: p})
		}
	}
	slices.SortFunc(out, func(a, b TopicLimit) int { return strings.Compare(a.Topic, b.Topic) })
	return out
}

// Stop ends the lookups; safe to call twice.
func (l *topicLimits) Stop() {
	l.cancel()
	<-l.done
}

// describeLimits asks Kafka for the message size limit of each topic: its
// max.message.bytes when set on the topic, else the brokers'
// message.max.bytes; for a topic that does not exist yet, the brokers'
// (which a topic created on its first record inherits).
func describeLimits(ctx context.Context, cl *kgo.Client, topics []string) (map[string]int, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, t := range topics {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType = kmsg.ConfigResourceTypeTopic
		r.ResourceName = t
		r.ConfigNames = []string{"max.message.bytes", "message.max.bytes"}
		req.Resources = append(req.Resources, r)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("describe configs of topics %v: %w", topics, err)
	}
	out := map[string]int{}
	var errs []error
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			if !errors.Is(err, kerr.UnknownTopicOrPartition) {
				errs = append(errs, fmt.Errorf("describe configs of topic %s: %w", r.ResourceName, err))
			}
			continue
		}
		if n := limitOf(r.Configs); n > 0 {
			out[r.ResourceName] = n
		}
	}
	if len(out)+len(errs) < len(topics) {
		n, err := describeBrokerLimit(ctx, cl)
		if err != nil {
			errs = append(errs, err)
		}
		for _, t := range topics {
			if _, ok := out[t]; !ok && n > 0 {
				out[t] = n
			}
		}
	}
	return out, errors.Join(errs...)
}

// describeBrokerLimit returns a broker's message.max.bytes. A broker
// describes its static configs only when asked by its id.
func describeBrokerLimit(ctx context.Context, cl *kgo.Client) (int, error) {
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("metadata: %w", err)
	}
	if len(meta.Brokers) == 0 {
		return 0, errors.New("metadata: no broker")
	}
	id := strconv.Itoa(int(meta.Brokers[0].NodeID))
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType = kmsg.ConfigResourceTypeBroker
	r.ResourceName = id
	r.ConfigNames = []string{"message.max.bytes"}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("describe configs of broker %s: %w", id, err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return 0, fmt.Errorf("describe configs of broker %s: %w", id, err)
		}
		return limitOf(r.Configs), nil
	}
	return 0, fmt.Errorf("describe configs of broker %s: no answer", id)
}

// limitOf picks a topic's limit from its described configs: the topic's
// own max.message.bytes, else the brokers' message.max.bytes (which a
// topic inherits), else max.message.bytes as described (its default).
func limitOf(cs []kmsg.DescribeConfigsResponseResourceConfig) int {
	var own, broker, def int
	for _, c := range cs {
		if c.Value == nil {
			continue
		}
		n, err := strconv.Atoi(*c.Value)
		if err != nil || n <= 0 {
			continue
		}
		switch {
		case c.Name == "max.message.bytes" && c.Source == kmsg.ConfigSourceDynamicTopicConfig:
			own = n
		case c.Name == "message.max.bytes":
			broker = n
		case c.Name == "max.message.bytes":
			def = n
		}
	}
	for _, n := range []int{own, broker, def} {
		if n > 0 {
			return n
		}
	}
	return 0
}
