package kafka

import (
	"github.com/IBM/sarama"
)

// sarama cuts every topic's batches to one size: a topic whose limit is
// below it gets a producer of its own (a route), one per limit, and a
// record refused alone in a batch cut to its topic's limit goes through the
// one-record-per-batch producer. This file is which producer a record goes
// to and how the routes are made and changed.

// saramaRoute is one sarama producer and the batch limit it cuts
// batches to (0: one record per batch).
type saramaRoute struct {
	p     sarama.AsyncProducer
	limit int
}

// routeOf returns the producer m goes to.
func (sp *saramaProducer) routeOf(m *Message) *saramaRoute {
	if m.alone {
		if r := sp.alone.Load(); r != nil {
			return r
		}
		return nil
	}
	if rs := sp.routes.Load(); rs != nil {
		if r, ok := (*rs)[m.Topic]; ok {
			return r
		}
	}
	return sp.main
}

// batchLimit is the size topic's batches are cut to: main's, or less to
// fit the topic's limit with room for the batch header and for compression
// that does not shrink the records (sarama counts them uncompressed).
func (sp *saramaProducer) batchLimit(topic string) int {
	n := sp.cfg.Producer.MaxMessageBytes
	if l := sp.limits.get(topic); l > 0 && l < n {
		n = l - recordBatchHeader - l/128
	}
	return max(n, 512)
}

// limitChanged: topic's batches are cut to its new limit once the
// records in flight are back (retryLoop), new records waiting meanwhile,
// so that a partition's records keep their order.
func (sp *saramaProducer) limitChanged(topic string) {
	select {
	case <-sp.ready:
	default:
		return // no topic is seen before (Send waits for it)
	}
	cur := sp.main.limit
	if rs := sp.routes.Load(); rs != nil {
		if r, ok := (*rs)[topic]; ok {
			cur = r.limit
		}
	}
	if cur == sp.batchLimit(topic) {
		return
	}
	sp.mu.Lock()
	sp.reroute = true
	sp.holdLocked()
	sp.mu.Unlock()
	sp.kickRetry()
}

// makeRoutes gives each topic whose batches must be cut smaller than
// main's a producer that does, and makes the one-record-per-batch producer
// if alone needs it. A producer that cannot be made (Kafka away) leaves
// its records where they were: they are refused again and come back.
func (sp *saramaProducer) makeRoutes(alone bool) {
	if alone && sp.alone.Load() == nil {
		if p, err := sarama.NewAsyncProducer(sp.addrs, sp.routeConfig(0)); err != nil {
			sp.log.Error("cannot make a producer for records sent one per batch; retrying", "err", err)
		} else {
			sp.alone.Store(sp.start(p, 0))
		}
	}
	routes := map[string]*saramaRoute{}
	for _, t := range sp.limits.topics() {
		n := sp.batchLimit(t)
		if n >= sp.main.limit {
			continue
		}
		r := sp.sized[n]
		if r == nil {
			p, err := sarama.NewAsyncProducer(sp.addrs, sp.routeConfig(n))
			if err != nil {
				sp.log.Error("cannot make a producer for a topic's smaller batches; retrying", "topic", t, "err", err)
				continue
			}
			r = sp.start(p, n)
			sp.sized[n] = r
		}
		routes[t] = r
	}
	sp.routes.Store(&routes)
}

// routeConfig is the config of a producer cutting batches to limit bytes
// (0: one record per batch, each up to max_message_bytes).
func (sp *saramaProducer) routeConfig(limit int) *sarama.Config {
	c := *sp.cfg
	if limit == 0 {
		c.Producer.Flush.MaxMessages = 1
		return &c
	}
	c.Producer.MaxMessageBytes = limit
	if c.Producer.Flush.Bytes > 0 {
		c.Producer.Flush.Bytes = min(c.Producer.Flush.Bytes, limit/2)
	}
	return &c
}

// Limits returns the topics whose limit is below max_message_bytes.
func (sp *saramaProducer) Limits() []TopicLimit { return sp.limits.Limits() }
