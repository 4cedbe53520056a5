package taillog

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// budget bounds the bytes read and not yet acknowledged, all files
// together (BufferBytes), and counts them. Each topic also has a share of
// it of its own (topicBudget): the lines of a topic Kafka refuses wait in
// memory, and without a share they would fill the whole budget and stop
// the reading of every other file on the host (issue #25).
type budget struct {
	sem  *semaphore.Weighted
	used atomic.Int64

	total int64
	// confirm holds a topic to its refused share until SetTopicOK says
	// Kafka takes it: the lines of a topic that does not exist must not
	// fill the budget before the first refusal comes back.
	confirm bool

	mu     sync.Mutex
	topics map[string]*topicBudget
}

func newBudget(total int64, confirm bool) *budget {
	return &budget{sem: semaphore.NewWeighted(total), total: total, confirm: confirm, topics: map[string]*topicBudget{}}
}

func (b *budget) Acquire(ctx context.Context, n int64) error {
	if err := b.sem.Acquire(ctx, n); err != nil {
		return err
	}
	b.used.Add(n)
	return nil
}

func (b *budget) Release(n int64) {
	b.used.Add(-n)
	b.sem.Release(n)
}

// Shares of the budget: a topic Kafka takes may hold three quarters of
// it, so that the other topics keep a quarter even when it turns refused
// with its lines in memory; a refused (or not yet confirmed) topic may
// hold a quarter.
func (b *budget) okShare() int64      { return b.total - b.total/4 }
func (b *budget) refusedShare() int64 { return b.total / 4 }

// topic returns the share of topic, made on first use.
func (b *budget) topic(name string) *topicBudget {
	if b == nil {
		return nil // a bare Manager of a test that reads nothing
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[name]
	if t == nil {
		t = &topicBudget{all: b, name: name, ok: !b.confirm, limit: b.okShare()}
		if !t.ok {
			t.limit = b.refusedShare()
		}
		b.topics[name] = t
	}
	return t
}

// topicBudget is one topic's share of the budget. A tailer takes its
// topic's share before the shared budget, so that a tailer of a paused
// topic waits holding nothing of the shared budget.
type topicBudget struct {
	all  *budget
	name string

	mu    sync.Mutex
	ok    bool
	used  int64
	limit int64
	wait  int           // acquirers waiting
	wake  chan struct{} // closed when used drops or limit grows; nil while nobody waits
}

// Acquire takes n bytes of the topic's share, then of the shared budget.
// A topic that holds nothing may always take n, even beyond its share:
// one read or one long line must never wait for ever.
func (t *topicBudget) Acquire(ctx context.Context, n int64) error {
	t.mu.Lock()
	for t.used > 0 && t.used+n > t.limit {
		if t.wake == nil {
			t.wake = make(chan struct{})
		}
		w := t.wake
		t.wait++
		t.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			t.mu.Lock()
			t.wait--
			t.mu.Unlock()
			return ctx.Err()
		}
		t.mu.Lock()
		t.wait--
	}
	t.used += n
	t.mu.Unlock()
	if err := t.all.Acquire(ctx, n); err != nil {
		t.give(n)
		return err
	}
	return nil
}

// Release gives n bytes back to the shared budget and the topic's share.
func (t *topicBudget) Release(n int64) {
	t.all.Release(n)
	t.give(n)
}

func (t *topicBudget) give(n int64) {
	t.mu.Lock()
	t.used -= n
	t.wakeAll()
	t.mu.Unlock()
}

// wakeAll wakes the waiting acquirers to look again; mu held.
func (t *topicBudget) wakeAll() {
	if t.wake != nil {
		close(t.wake)
		t.wake = nil
	}
}

// setOK gives the topic its share for a topic Kafka takes (ok) or for a
// refused one. Lowering the share frees nothing: the lines in flight stay
// until Kafka takes them, and the topic's files are not read further
// until it holds less than its share.
func (t *topicBudget) setOK(ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ok = ok
	if ok {
		t.limit = t.all.okShare()
		t.wakeAll()
	} else {
		t.limit = t.all.refusedShare()
	}
}

// TopicBudget is one topic's use of the read budget.
type TopicBudget struct {
	Topic string `json:"topic"`
	// Refused: Kafka refuses the topic (or has not taken any of its
	// lines yet); it is held to a quarter of the budget.
	Refused bool  `json:"refused"`
	Bytes   int64 `json:"buffered_bytes"` // read and not yet acknowledged
	Limit   int64 `json:"limit_bytes"`    // its share
	// Paused: its files wait for the topic to hold less than its share.
	Paused bool `json:"paused"`
}

func (t *topicBudget) state() TopicBudget {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TopicBudget{Topic: t.name, Refused: !t.ok, Bytes: t.used, Limit: t.limit, Paused: t.wait > 0}
}

// SetTopicOK tells the manager whether Kafka takes topic's lines (ok) or
// refuses them: a refused topic holds at most a quarter of BufferBytes,
// and reading its files pauses until Kafka takes it again, while the
// other topics' files go on.
func (m *Manager) SetTopicOK(topic string, ok bool) { m.budget.topic(topic).setOK(ok) }

// TopicBudgets is every topic's use of the read budget, sorted by topic.
func (m *Manager) TopicBudgets() []TopicBudget {
	m.budget.mu.Lock()
	ts := make([]*topicBudget, 0, len(m.budget.topics))
	for _, t := range m.budget.topics {
		ts = append(ts, t)
	}
	m.budget.mu.Unlock()
	out := make([]TopicBudget, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.state())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}
