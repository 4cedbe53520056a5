// Package taillog follows log files and turns them into lines for Kafka.
//
// A Manager runs one Tailer per configured entry and reconciles that set
// with the configuration; a Tailer follows one path across rotation and
// truncation; Positions keeps, per file identity, the offset up to which
// Kafka has acknowledged every line.
package taillog

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Options tune every tailer of a manager.
type Options struct {
	MaxLineBytes    int           // longer lines are sent in pieces of this size
	BufferBytes     int64         // read but unacknowledged bytes, all files together
	RotateWait      time.Duration // a rotated file is closed after this long without growth
	PollInterval    time.Duration // re-check when no inotify event arrives
	ShutdownTimeout time.Duration // how long stopping a tailer waits for acks
	// LineOverhead is what each line costs in the budget beyond its bytes:
	// the bookkeeping that travels with it to Kafka and back (the Line
	// itself, the consumer's message, headers and client record). With it,
	// BufferBytes bounds the memory really held, even for short lines.
	// 0 means DefaultLineOverhead.
	LineOverhead int64
}

// Manager runs the tailers for a set of entries.
type Manager struct {
	opts   Options
	store  *Positions
	out    chan<- *Batch
	budget *budget
	watch  *watcher
	// inFlight counts lines handed to the channel and not yet acked.
	inFlight atomic.Int64
	log      *slog.Logger

	mu      sync.Mutex
	tailers map[string]*Tailer
	stopped bool
}

// NewManager returns a manager that sends batches of lines to out. Lines
// must be acked (Line.Ack) once Kafka has them.
func NewManager(opts Options, store *Positions, out chan<- *Batch, log *slog.Logger) *Manager {
	if opts.LineOverhead <= 0 {
		opts.LineOverhead = DefaultLineOverhead
	}
	return &Manager{opts: opts, store: store, out: out, log: log,
		budget:  &budget{sem: semaphore.NewWeighted(opts.BufferBytes)},
		watch:   newWatcher(log),
		tailers: map[string]*Tailer{}}
}

// Reconcile makes the running tailers match entries: it stops the tailers
// of removed entries (after their read lines are delivered, bounded by
// ShutdownTimeout), restarts those whose topic changed and starts new ones.
func (m *Manager) Reconcile(entries []Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	want := make(map[string]Entry, len(entries))
	for _, e := range entries {
		want[e.Path] = e
	}
	var stopping []*Tailer
	for path, t := range m.tailers {
		if e, ok := want[path]; !ok || e.Topic != t.entry.Topic {
			stopping = append(stopping, t)
			delete(m.tailers, path)
		}
	}
	m.stopAll(stopping)
	for _, e := range entries {
		if _, ok := m.tailers[e.Path]; ok {
			continue
		}
		t := newTailer(m, e)
		m.tailers[e.Path] = t
		t.start()
		m.log.Info("collecting", "path", e.Path, "topic", e.Topic)
	}
}

func (m *Manager) stopAll(ts []*Tailer) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.stop(ctx)
			m.log.Info("stopped collecting", "path", t.entry.Path, "topic", t.entry.Topic)
		}()
	}
	wg.Wait()
}

// Stop stops every tailer: reading stops at once, then it waits (bounded by
// ShutdownTimeout) for the lines already read to be acknowledged. Safe to
// call twice.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	m.stopped = true
	ts := make([]*Tailer, 0, len(m.tailers))
	for _, t := range m.tailers {
		ts = append(ts, t)
	}
	m.stopAll(ts)
	m.tailers = nil
	m.watch.close()
}

// Status describes one tailer.
type Status struct {
	Path        string `json:"path"`
	Topic       string `json:"topic"`
	State       string `json:"state"`
	LastError   string `json:"last_error,omitempty"`
	Committed   int64  `json:"committed_offset"`
	Size        int64  `json:"size"`
	LagBytes    int64  `json:"lag_bytes"`
	LinesRead   int64  `json:"lines_read"`
	LinesAcked  int64  `json:"lines_acked"`
	BytesRead   int64  `json:"bytes_read"`
	Rotations   int64  `json:"rotations"`
	Truncations int64  `json:"truncations"`
	Oversized   int64  `json:"oversized_lines"`
}

// Lag is how many bytes of the file are not yet acknowledged.
func (s Status) Lag() int64 {
	if s.Size < s.Committed {
		return 0
	}
	return s.Size - s.Committed
}

// Status returns the state of every tailer, sorted by path.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	ts := make([]*Tailer, 0, len(m.tailers))
	for _, t := range m.tailers {
		ts = append(ts, t)
	}
	m.mu.Unlock()
	out := make([]Status, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// budget bounds the bytes read and not yet acknowledged, and counts them.
type budget struct {
	sem  *semaphore.Weighted
	used atomic.Int64
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

// BufferedBytes is how much of BufferBytes is in use.
func (m *Manager) BufferedBytes() int64 { return m.budget.used.Load() }

// InFlight is the number of lines handed on and not yet acknowledged.
func (m *Manager) InFlight() int64 { return m.inFlight.Load() }
