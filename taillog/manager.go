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
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logagent/logagent/fleet"
)

// Options tune every tailer of a manager.
type Options struct {
	MaxLineBytes int           // longer lines are sent in pieces of this size
	BufferBytes  int64         // read but unacknowledged bytes, all files together
	RotateWait   time.Duration // a rotated file is closed after this long without growth
	PollInterval time.Duration // re-check when no inotify event arrives
	// Allow is [agent] allow_paths, checked at every open (nil: any path).
	Allow *AllowList
	// MaxReadDelay lets a trickling file gather lines before it is read: a
	// woken tailer waits until the file has appended about 4 KiB at its
	// recent rate, at most MaxReadDelay. 0 reads at once.
	MaxReadDelay    time.Duration
	ShutdownTimeout time.Duration // how long stopping a tailer waits for acks
	// LineOverhead is what each line costs in the budget beyond its bytes:
	// the bookkeeping that travels with it to Kafka and back (the Line
	// itself, the consumer's message, headers and client record). With it,
	// BufferBytes bounds the memory really held, even for short lines.
	// 0 means DefaultLineOverhead.
	LineOverhead int64
	// ConfirmTopics holds every topic to a quarter of BufferBytes until
	// SetTopicOK(topic, true): until Kafka has taken one of its lines.
	ConfirmTopics bool
	// MaxFilesPerEntry refuses a glob entry that matches more files (0:
	// DefaultMaxFilesPerEntry).
	MaxFilesPerEntry int
	// Filter, if set, is asked about every file a glob entry matches,
	// its links resolved: a file it returns an error for is not followed
	// (logged once).
	Filter func(path string) error
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

	// reconcileMu serialises Reconcile and Stop; mu guards the map only,
	// so that Status and the poller never wait while tailers stop.
	reconcileMu sync.Mutex
	mu          sync.Mutex
	tailers     map[string]*Tailer
	stopped     bool
	pollStop    chan struct{}
	pollDone    chan struct{}

	listsMu sync.Mutex
	lists   map[string]*dirListing

	globs     *globs // entries with glob paths (globs.go)
	globsOnce sync.Once
}

// dirListing is a directory's entries, shared for listTTL.
type dirListing struct {
	mu   sync.Mutex   // one listing at a time per directory
	at   atomic.Int64 // when it was made (unix ns; 0: not yet)
	ents []os.DirEntry
	err  error
}

// listTTL is how long a directory listing serves first opens.
const listTTL = time.Second

// listDir lists dir, or returns a listing made less than listTTL ago.
// Listings past their time are dropped: a directory of thousands of
// files must not stay listed in memory for the agent's lifetime.
func (m *Manager) listDir(dir string) ([]os.DirEntry, error) {
	now := time.Now().UnixNano()
	m.listsMu.Lock()
	if m.lists == nil {
		m.lists = map[string]*dirListing{}
	}
	for d, o := range m.lists {
		if at := o.at.Load(); d != dir && at != 0 && now-at >= int64(listTTL) {
			delete(m.lists, d)
		}
	}
	l := m.lists[dir]
	if l == nil {
		l = &dirListing{}
		m.lists[dir] = l
	}
	m.listsMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if at := l.at.Load(); at == 0 || time.Now().UnixNano()-at >= int64(listTTL) {
		l.ents, l.err = readDir(dir)
		l.at.Store(time.Now().UnixNano())
	}
	return l.ents, l.err
}

// NewManager returns a manager that sends batches of lines to out. Lines
// must be acked (Line.Ack) once Kafka has them.
func NewManager(opts Options, store *Positions, out chan<- *Batch, log *slog.Logger) *Manager {
	if opts.LineOverhead <= 0 {
		opts.LineOverhead = DefaultLineOverhead
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	m := &Manager{opts: opts, store: store, out: out, log: log,
		budget:   newBudget(opts.BufferBytes, opts.ConfirmTopics),
		watch:    newWatcher(log),
		tailers:  map[string]*Tailer{},
		pollStop: make(chan struct{}), pollDone: make(chan struct{})}
	m.globs = newGlobs(m)
	go m.poll()
	return m
}

// checkEvery is how many polls a followed path that inotify reports writes
// for goes without being looked at.
const checkEvery = 4

// poll has every tailer look at its path again each PollInterval, and read
// its files if inotify reported no write meanwhile: the re-check that
// catches what inotify does not report (a network file system, a directory
// that did not exist yet) and closes rotated files that stopped growing.
// It also watches again directories whose watch was lost.
// One ticker for all tailers: a thousand files cost one timer, not two
// thousand.
func (m *Manager) poll() {
	defer close(m.pollDone)
	tick := time.NewTicker(m.opts.PollInterval)
	defer tick.Stop()
	var ts []*Tailer
	for {
		select {
		case <-m.pollStop:
			return
		case <-tick.C:
		}
		m.mu.Lock()
		ts = ts[:0]
		for _, t := range m.tailers {
			ts = append(ts, t)
		}
		m.mu.Unlock()
		m.watch.rewatch()
		m.globs.tick()
		for _, t := range ts {
			// A file inotify reported a write for since the last tick is
			// being read: reading it once more would cost a read and an
			// fstat for nothing. Its path is looked at again (a stat)
			// at once if all is not well (after a read error only the
			// poll retries), else every checkEvery polls: inotify does
			// not see a parent directory renamed or re-linked while the
			// old file is still written.
			switch {
			case !t.pace.evented.Swap(false):
				t.pace.poke(true)
			case !t.following() || t.pace.unchecked >= checkEvery:
				t.pace.unchecked = 0
				t.pace.check()
			default:
				t.pace.unchecked++
			}
		}
	}
}

// Reconcile makes the running tailers match entries: it stops the tailers
// of removed entries (after their read lines are delivered, bounded by
// ShutdownTimeout), restarts those whose topic changed and starts new ones.
// An entry with a glob path stands for every file it matches (globs.go).
func (m *Manager) Reconcile(entries []Entry) {
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	if m.stopped {
		return
	}
	m.reconcileFiles(m.globs.set(entries))
}

// reconcileFiles is Reconcile for plain paths (m.reconcileMu is held).
func (m *Manager) reconcileFiles(entries []Entry) {
	want := make(map[string]Entry, len(entries))
	for _, e := range entries {
		want[e.Path] = e
	}
	var stopping []*Tailer
	m.mu.Lock()
	for path, t := range m.tailers {
		if e, ok := want[path]; !ok || e.Topic != t.entry.Topic || !e.Multiline.same(t.entry.Multiline) {
			stopping = append(stopping, t)
			delete(m.tailers, path)
		}
	}
	m.mu.Unlock()
	// Stopped before their successors start: two tailers never read one
	// file at once.
	m.stopAll(stopping, true)
	for _, e := range entries {
		m.mu.Lock()
		_, ok := m.tailers[e.Path]
		m.mu.Unlock()
		if ok {
			continue
		}
		t := newTailer(m, e)
		t.start()
		m.mu.Lock()
		m.tailers[e.Path] = t
		m.mu.Unlock()
		m.log.Info("collecting", "path", e.Path, "topic", e.Topic)
	}
}

// stopAll stops ts; handover: their paths may be read by new tailers
// (Reconcile), which own the saved offsets from then on.
func (m *Manager) stopAll(ts []*Tailer, handover bool) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.stop(ctx, handover)
			m.log.Info("stopped collecting", "path", t.entry.Path, "topic", t.entry.Topic)
		}()
	}
	wg.Wait()
}

// Stop stops every tailer: reading stops at once, then it waits (bounded by
// ShutdownTimeout) for the lines already read to be acknowledged. Safe to
// call twice.
func (m *Manager) Stop() {
	// Before reconcileMu: the glob loop takes it.
	m.globsOnce.Do(m.globs.close)
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	if m.stopped {
		return
	}
	m.stopped = true
	close(m.pollStop)
	<-m.pollDone
	m.mu.Lock()
	ts := make([]*Tailer, 0, len(m.tailers))
	for _, t := range m.tailers {
		ts = append(ts, t)
	}
	m.tailers = nil
	m.mu.Unlock()
	m.stopAll(ts, false)
	m.watch.close()
}

// Status describes one tailer: a file of the status document.
type Status = fleet.FileStatus

// Status returns the state of every tailer, sorted by path.
func (m *Manager) Status() []Status {
	ts := m.list()
	out := make([]Status, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.status())
	}
	out = append(out, m.globs.status()...)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// list is the tailers, copied under m.mu: what each one reports is asked
// without holding it.
func (m *Manager) list() []*Tailer {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := make([]*Tailer, 0, len(m.tailers))
	for _, t := range m.tailers {
		ts = append(ts, t)
	}
	return ts
}

// BufferedBytes is how much of BufferBytes is in use.
func (m *Manager) BufferedBytes() int64 { return m.budget.used.Load() }

// InFlight is the number of lines handed on and not yet acknowledged.
func (m *Manager) InFlight() int64 { return m.inFlight.Load() }
