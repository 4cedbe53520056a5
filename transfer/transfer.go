package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
)

// Transfer consumes the routed topics and indexes their records.
type Transfer struct {
	cfg      *conf.TransferConfig
	log      *slog.Logger
	version  string
	instance string
	started  time.Time

	etcd   *etcd.Client
	feed   *etcd.Follower[[]Route]
	search *search
	m      *metrics
	http   net.Listener // nil: http_addr is empty

	// routes carries each applied config to the consumer; only the
	// newest matters.
	routes chan []Route
	// dlq produces dead letters; made on the first one. Apart from the
	// consumer, so that only dead-letter topics are created on use, not a
	// misspelt topic in the routes.
	dlq *kgo.Client
	// retainNow asks retain to run (a session started with new routes).
	retainNow chan struct{}

	mu       sync.Mutex
	current  []Route            // the routes being consumed
	assigned map[string][]int32 // partitions of this member
	bulkErr  error              // the failing bulk's error, until one succeeds
	lastDLQ  string             // the last dead-letter reason
	indexed  int64
	dlqCount int64
	consumed int64
	heldPeak int64 // the most record bytes a session held (within buffer_bytes)
}

// New checks what can be checked before Run: the HTTP address, the data
// directory, the etcd client.
func New(cfg *conf.TransferConfig, log *slog.Logger, version string) (*Transfer, error) {
	t := &Transfer{cfg: cfg, log: log, version: version, instance: cfg.Transfer.Instance,
		started: time.Now(), search: newSearch(cfg.OpenSearch), m: newMetrics(),
		routes: make(chan []Route, 1), retainNow: make(chan struct{}, 1), assigned: map[string][]int32{}}
	if t.instance == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("[transfer] instance is empty and the host name is unknown: %w", err)
		}
		t.instance = h
	}
	if err := os.MkdirAll(cfg.Transfer.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("[transfer] data_dir: %w", err)
	}
	if a := cfg.Transfer.HTTPAddr; a != "" {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return nil, fmt.Errorf("[transfer] http_addr: %w", err)
		}
		t.http = l
	}
	ec := cfg.Etcd
	connect := func(ctx context.Context) (*clientv3.Client, error) { return etcd.Connect(ctx, ec) }
	if cli, err := connect(context.Background()); err == nil {
		t.etcd = etcd.Ready(cli)
	} else {
		// With authentication the client is made only once etcd answers:
		// the transfer runs on its cached routes meanwhile.
		t.etcd = etcd.Dial(err, connect, log.With("component", "etcd"))
	}
	t.feed = etcd.NewFollower(t.etcd, etcd.Spec[[]Route]{
		Key:         fleet.TransferConfigKey,
		Cache:       "transfer_config.json",
		What:        "transfer config",
		Absent:      []byte("[]"),
		AbsentMeans: "nothing to consume until it is put",
		Parse:       ParseRoutes,
		Attrs:       func(rs []Route) []any { return []any{"routes", len(rs)} },
	}, cfg.Transfer.DataDir, cfg.Etcd.DialTimeout, etcd.Hooks{
		Applied:  func(int64) { t.m.applied.Inc() },
		Rejected: func(error) { t.m.rejected.Inc() },
	}, log.With("component", "etcd"))
	return t, nil
}

// Instance is the transfer's name in its status key.
func (t *Transfer) Instance() string { return t.instance }

// Run consumes and indexes until ctx is done.
func (t *Transfer) Run(ctx context.Context) error {
	defer t.etcd.Close()
	defer func() {
		if t.dlq != nil {
			t.dlq.Close()
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	goRun := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	if t.http != nil {
		goRun(func() { t.serveHTTP(ctx) })
	}
	goRun(func() {
		t.feed.Run(ctx, func(rs []Route) {
			// Replace a config the consumer has not taken yet.
			select {
			case <-t.routes:
			default:
			}
			t.routes <- rs
		})
	})
	goRun(func() { t.publishStatus(ctx) })
	if t.cfg.Transfer.RetentionDays > 0 {
		goRun(func() { t.retain(ctx) })
	}
	t.log.Info("transfer started", "instance", t.instance, "group", t.cfg.Kafka.Group,
		"opensearch", t.cfg.OpenSearch.URLs, "version", t.version)

	var routes []Route
	select {
	case routes = <-t.routes:
	case <-ctx.Done():
		return nil
	}
	for ctx.Err() == nil {
		routes = t.session(ctx, routes)
	}
	t.log.Info("transfer stopped")
	return nil
}

// session consumes routes until ctx is done (it returns nil) or another
// config arrives (it returns that one). Every change of the routes makes a
// new group member: everything indexed is committed, the rest is read
// again by whoever owns the partition next.
func (t *Transfer) session(ctx context.Context, routes []Route) []Route {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next []Route
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		select {
		case next = <-t.routes:
			cancel()
		case <-sctx.Done():
		}
	}()
	t.mu.Lock()
	t.current = routes
	t.mu.Unlock()
	if len(routes) == 0 {
		t.log.Warn("no topic routed in " + fleet.TransferConfigKey + "; waiting for one")
		<-sctx.Done()
		<-done
		return next
	}
	index := map[string]string{}
	var topics []string
	for _, r := range routes {
		index[r.Topic] = r.Index
		topics = append(topics, r.Topic)
	}
	for _, r := range routes {
		if !t.retry(sctx, "install the index template of "+r.Index, func() error {
			return t.search.putTemplate(sctx, r.Index, t.cfg.OpenSearch.Shards, t.cfg.OpenSearch.Replicas)
		}) {
			<-done
			return next
		}
	}
	select {
	case t.retainNow <- struct{}{}:
	default:
	}
	b := newBudget(t.cfg.Transfer.BufferBytes, t.m.buffered)
	cl, err := kgo.NewClient(append(b.opts(),
		kgo.SeedBrokers(t.cfg.Kafka.Brokers...),
		kgo.ConsumerGroup(t.cfg.Kafka.Group),
		kgo.SessionTimeout(t.cfg.Kafka.SessionTimeout),
		kgo.HeartbeatInterval(max(t.cfg.Kafka.SessionTimeout/5, 100*time.Millisecond)),
		kgo.ConsumeTopics(topics...),
		// A group that has no offset yet starts at the oldest record:
		// nothing written before the first transfer started is skipped.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Offsets are committed by hand after the bulk succeeded, and no
		// rebalance takes a partition between the poll and that commit.
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			t.log.Info("partitions assigned", "partitions", fmt.Sprint(a))
			t.setAssigned(a, true)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			t.log.Info("partitions revoked", "partitions", fmt.Sprint(r))
			t.setAssigned(r, false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			t.log.Warn("partitions lost", "partitions", fmt.Sprint(l))
			t.setAssigned(l, false)
		}),
	)...)
	if err != nil {
		t.log.Error("cannot make the Kafka client", "err", err)
		<-sctx.Done()
		<-done
		return next
	}
	b.setClient(cl)
	defer func() {
		// Leaves the group: the partitions go to the others at once.
		cl.Close()
		t.setAssigned(nil, false)
		t.m.buffered.Set(0)
		_, peak := b.held()
		t.mu.Lock()
		t.heldPeak = max(t.heldPeak, peak)
		t.mu.Unlock()
	}()
	t.log.Info("consuming", "topics", topics, "group", t.cfg.Kafka.Group)
	for {
		fetches := cl.PollFetches(sctx)
		if fetches.IsClientClosed() || sctx.Err() != nil {
			cl.AllowRebalance()
			break
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.log.Warn("fetch failed", "topic", topic, "partition", p, "err", err)
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				last := p.Records[n-1].Offset
				t.m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(p.HighWatermark-last-1, 0)))
				t.m.consumed.WithLabelValues(p.Topic).Add(float64(n))
			}
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			cl.AllowRebalance()
			continue
		}
		t.mu.Lock()
		t.consumed += int64(len(recs))
		t.mu.Unlock()
		if !t.index(sctx, recs, index) {
			// Stopping: what was not committed is read again by the
			// partition's next owner, and replaces the same documents.
			b.release(recs)
			cl.AllowRebalance()
			break
		}
		b.release(recs)
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := cl.CommitUncommittedOffsets(cctx); err != nil {
			t.m.commitErrors.Inc()
			t.log.Warn("offset commit failed; the records will be indexed again (same ids)", "err", err)
		}
		ccancel()
		cl.AllowRebalance()
	}
	<-done
	return next
}

func (t *Transfer) setAssigned(ps map[string][]int32, add bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ps == nil {
		t.assigned = map[string][]int32{}
		t.m.lag.Reset()
		return
	}
	for topic, parts := range ps {
		for _, p := range parts {
			if add {
				if !slices.Contains(t.assigned[topic], p) {
					t.assigned[topic] = append(t.assigned[topic], p)
				}
				continue
			}
			t.assigned[topic] = slices.DeleteFunc(t.assigned[topic], func(q int32) bool { return q == p })
			t.m.lag.DeleteLabelValues(topic, strconv.Itoa(int(p)))
		}
		if len(t.assigned[topic]) == 0 {
			delete(t.assigned, topic)
		} else {
			slices.Sort(t.assigned[topic])
		}
	}
}

// index puts every record into OpenSearch or the dead-letter topic, in
// bulk requests of at most bulk_bytes, one at a time. The next request's
// body is encoded while the one before is in flight, so that OpenSearch
// is not left waiting for it. It returns false only when ctx ended first.
func (t *Transfer) index(ctx context.Context, recs []*kgo.Record, index map[string]string) bool {
	type chunk struct {
		recs []*kgo.Record
		body []byte
	}
	// Unbuffered: the encoder fills one body while the other is sent,
	// and takes a body back only once the request that used it is done.
	chunks, quit, done := make(chan chunk), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer close(chunks)
		var bodies [2]bytes.Buffer
		for n, start := 0, 0; start < len(recs); n++ {
			body := &bodies[n%2]
			end := t.encodeChunk(body, recs, start, index)
			select {
			case chunks <- chunk{recs[start:end], body.Bytes()}:
			case <-quit:
				return
			}
			start = end
		}
	}()
	for c := range chunks {
		if !t.indexChunk(ctx, c.recs, index, c.body) {
			// Nobody receives any more: the encoder sees only quit, and
			// encodes nothing more than the chunk it is on.
			close(quit)
			<-done
			return false
		}
	}
	return true
}

// encodeChunk encodes records from recs[start] into body, up to bulk_bytes
// (at least one), and returns the end of those it took.
func (t *Transfer) encodeChunk(body *bytes.Buffer, recs []*kgo.Record, start int, index map[string]string) int {
	limit := int(t.cfg.Transfer.BulkBytes)
	body.Reset()
	end := start
	for end < len(recs) && (end == start || body.Len() < limit) {
		before := body.Len()
		if err := appendBulk(body, recs[end], index[recs[end].Topic]); err != nil {
			t.log.Error("cannot encode a record", "topic", recs[end].Topic, "offset", recs[end].Offset, "err", err)
		}
		if body.Len() > limit && end > start {
			body.Truncate(before) // it starts the next request
			break
		}
		end++
	}
	return end
}

// indexChunk sends recs in one bulk request (body, their encoding, or nil
// to encode them), again and again (with backoff) for those OpenSearch
// could not take yet, until each is indexed or dead-lettered.
func (t *Transfer) indexChunk(ctx context.Context, recs []*kgo.Record, index map[string]string, body []byte) bool {
	var buf bytes.Buffer
	for attempt := 0; len(recs) > 0; attempt++ {
		if attempt > 0 {
			t.m.retried.Add(float64(len(recs)))
			if !sleep(ctx, t.backoff(attempt)) {
				return false
			}
		}
		if body == nil {
			buf.Reset()
			for _, r := range recs {
				appendBulk(&buf, r, index[r.Topic])
			}
			body = buf.Bytes()
		}
		began := time.Now()
		res, err := t.search.bulk(ctx, body, len(recs))
		if ctx.Err() != nil {
			return false
		}
		t.m.bulkLatency.Observe(time.Since(began).Seconds())
		if errors.Is(err, errTooLarge) {
			if len(recs) == 1 {
				res, err = []itemResult{{outcome: itemPermanent, reason: err.Error()}}, nil
			} else {
				half := len(recs) / 2
				return t.indexChunk(ctx, recs[:half], index, nil) && t.indexChunk(ctx, recs[half:], index, nil)
			}
		}
		if err != nil {
			t.m.bulkErrors.Inc()
			t.setBulkErr(err, attempt)
			continue // the same body
		}
		indexed := map[string]int{} // by topic: counted once per request
		for i, r := range res {
			if r.outcome == itemOK {
				indexed[recs[i].Topic]++
			}
		}
		for topic, n := range indexed {
			t.m.indexed.WithLabelValues(topic).Add(float64(n))
			t.mu.Lock()
			t.indexed += int64(n)
			t.mu.Unlock()
		}
		var again []*kgo.Record
		for i, r := range res {
			switch r.outcome {
			case itemRetry:
				again = append(again, recs[i])
			case itemPermanent:
				if !t.deadLetter(ctx, recs[i], r.reason) {
					return false
				}
			}
		}
		if len(again) > 0 {
			first := res[slices.IndexFunc(res, func(r itemResult) bool { return r.outcome == itemRetry })]
			t.setBulkErr(fmt.Errorf("%d of %d documents not taken yet (%s)", len(again), len(recs), first.reason), attempt)
		} else {
			t.setBulkErr(nil, attempt)
		}
		if len(again) < len(recs) {
			body = nil // encode the rest
		}
		recs = again
	}
	return true
}

func (t *Transfer) setBulkErr(err error, attempt int) {
	t.mu.Lock()
	was := t.bulkErr
	t.bulkErr = err
	t.mu.Unlock()
	switch {
	case err != nil && (was == nil || attempt == 1):
		t.log.Error("bulk request failed; retrying with backoff (offsets stay uncommitted)", "err", err)
	case err == nil && was != nil:
		t.log.Info("OpenSearch takes bulk requests again")
	}
}

func (t *Transfer) backoff(attempt int) time.Duration {
	d := t.cfg.Transfer.RetryBackoff
	for i := 1; i < attempt && d < t.cfg.Transfer.RetryMax; i++ {
		d *= 2
	}
	return min(d, t.cfg.Transfer.RetryMax)
}

// Dead-letter headers, added to the record's own.
const (
	HeaderDLQReason    = "dlq_reason"
	HeaderDLQTopic     = "dlq_topic"
	HeaderDLQPartition = "dlq_partition"
	HeaderDLQOffset    = "dlq_offset"
)

// deadLetter produces r to its topic's dead-letter topic with the reason
// OpenSearch gave, retrying until Kafka took it: only then may r's offset
// be committed.
func (t *Transfer) deadLetter(ctx context.Context, r *kgo.Record, reason string) bool {
	d := &kgo.Record{Topic: r.Topic + t.cfg.Transfer.DeadLetter, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
		Headers: append(slices.Clone(r.Headers),
			kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(reason)},
			kgo.RecordHeader{Key: HeaderDLQTopic, Value: []byte(r.Topic)},
			kgo.RecordHeader{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			kgo.RecordHeader{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))})}
	for attempt := 1; ; attempt++ {
		if t.dlq == nil {
			var err error
			t.dlq, err = kgo.NewClient(kgo.SeedBrokers(t.cfg.Kafka.Brokers...), kgo.AllowAutoTopicCreation())
			if err != nil {
				return false // only for invalid options: the brokers are checked by conf
			}
		}
		err := t.dlq.ProduceSync(ctx, d).FirstErr()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		t.log.Warn("cannot write to the dead-letter topic; retrying", "topic", d.Topic, "err", err)
		if !sleep(ctx, t.backoff(attempt)) {
			return false
		}
	}
	t.m.deadLettered.WithLabelValues(r.Topic).Inc()
	t.mu.Lock()
	t.dlqCount++
	t.lastDLQ = reason
	t.mu.Unlock()
	t.log.Error("document refused by OpenSearch; sent to the dead-letter topic",
		"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "id", docID(r), "dead_letter_topic", d.Topic, "reason", reason)
	return true
}

// retry calls f until it succeeds (true) or ctx ends (false).
func (t *Transfer) retry(ctx context.Context, what string, f func() error) bool {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt == 1 {
			t.log.Error("cannot "+what+"; retrying", "err", err)
		}
		if !sleep(ctx, t.backoff(attempt)) {
			return false
		}
	}
}

// retain deletes the daily indices older than retention_days when a
// session starts and every hour.
func (t *Transfer) retain(ctx context.Context) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.retainNow:
		}
		t.mu.Lock()
		routes := t.current
		t.mu.Unlock()
		for _, r := range routes {
			deleted, err := t.search.deleteOlder(ctx, r.Index, t.cfg.Transfer.RetentionDays, time.Now())
			if len(deleted) > 0 {
				t.log.Info("deleted daily indices past retention", "indices", deleted, "retention_days", t.cfg.Transfer.RetentionDays)
			}
			if err != nil && ctx.Err() == nil {
				t.log.Warn("retention", "err", err)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
