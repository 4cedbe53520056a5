package taillog

import (
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// watcher wakes tailers when their directory changes. It watches each
// directory once (inotify on a directory reports its files' writes,
// creations, renames and removals) and dispatches by file name. Without
// inotify (limit reached, unsupported file system) tailers still work: they
// fall back to their poll interval.
type watcher struct {
	log *slog.Logger
	w   *inotify // nil: polling only

	mu   sync.Mutex
	dirs map[string]map[*pacer]struct{} // every tailer of a directory (its pacer)
	// names finds the tailer of a path by its directory and base name, as
	// inotify reports them: a write's event is dispatched without building
	// its path.
	names map[string]map[string]*pacer
	// scans are the directories glob entries watch for new matches
	// (globwatch.go), each with how many entries watch it; dirChanged is
	// told of each creation, rename or removal in them.
	scans      map[string]int
	dirChanged func(dir string)
	stop       chan struct{}
	done       chan struct{}

	// Readers waiting for their file's next write (Tailer.untilReadable): its
	// event, dispatched by the goroutine that reads inotify's queue,
	// starts the reader's gather (or has it read at once) without waking
	// it first. A trickling file's reader then wakes once per read, not
	// once more for the first write after each read; and not at all for
	// a write whose event was still queued when the read took its bytes.
	waitMu  sync.Mutex
	serving bool                  // run reads the queue: waits are served
	waits   map[*pacer]readerWait // readers waiting for a write, or gathering since one came
}

// startInotify is newInotify; tests take inotify away.
var startInotify = newInotify

func newWatcher(log *slog.Logger) *watcher {
	wt := &watcher{log: log, dirs: map[string]map[*pacer]struct{}{}, names: map[string]map[string]*pacer{},
		done: make(chan struct{})}
	w, err := startInotify()
	if err != nil {
		log.Warn("inotify unavailable; files are polled", "err", err)
		close(wt.done)
		return wt
	}
	wt.w = w
	wt.stop = make(chan struct{})
	wt.waits = map[*pacer]readerWait{}
	wt.serving = true
	go wt.run()
	return wt
}

func (wt *watcher) add(p *pacer) {
	dir, base := filepath.Dir(p.path), filepath.Base(p.path)
	wt.mu.Lock()
	defer wt.mu.Unlock()
	subs, ok := wt.dirs[dir]
	if !ok {
		subs = map[*pacer]struct{}{}
		wt.dirs[dir] = subs
		if wt.w != nil {
			// A directory that does not exist yet is polled; the file
			// appearing later is found by the poll.
			if err := wt.w.add(dir); err != nil {
				wt.log.Debug("cannot watch directory; polling it", "dir", dir, "err", err)
			}
		}
	}
	subs[p] = struct{}{}
	names := wt.names[dir]
	if names == nil {
		names = map[string]*pacer{}
		wt.names[dir] = names
	}
	names[base] = p
}

// rewatch watches again the directories whose watch failed (not there
// yet) or was lost (deleted, renamed): until then their files are polled.
func (wt *watcher) rewatch() {
	if wt.w == nil {
		return
	}
	wt.mu.Lock()
	defer wt.mu.Unlock()
	var readded []string
	defer func() { wt.rewatchScans(readded) }()
	for dir, subs := range wt.dirs {
		if wt.w.watched(dir) {
			continue
		}
		if err := wt.w.add(dir); err == nil {
			readded = append(readded, dir)
			wt.log.Debug("watching directory again", "dir", dir)
			// What happened while it was not watched is looked at now.
			for p := range subs {
				p.poke(true)
			}
		}
	}
}

func (wt *watcher) remove(p *pacer) {
	dir, base := filepath.Dir(p.path), filepath.Base(p.path)
	wt.mu.Lock()
	defer wt.mu.Unlock()
	subs := wt.dirs[dir]
	delete(subs, p)
	if names := wt.names[dir]; names[base] == p {
		delete(names, base)
	}
	wt.awoken(p)
	if len(subs) == 0 {
		delete(wt.dirs, dir)
		delete(wt.names, dir)
		wt.tailersGone(dir)
	}
}

func (wt *watcher) run() {
	defer close(wt.done)
	defer wt.endWaits()
	err := wt.w.run(wt.stop, func(evs []fsEvent) {
		now := time.Now()
		wt.mu.Lock()
		defer wt.mu.Unlock()
		for _, ev := range evs {
			if ev.overflow {
				// An overflow loses events, not data: every tailer looks now.
				wt.log.Warn("inotify queue overflowed; every file is checked")
				for _, subs := range wt.dirs {
					for p := range subs {
						p.poke(true)
					}
				}
				wt.rescanAll()
				continue
			}
			wt.dispatch(ev, now)
		}
	})
	if err != nil {
		wt.log.Error("reading inotify events failed; files are polled from now on", "err", err)
	}
}

// readerWait is a reader waiting for its file's next write (awaitWrite).
type readerWait struct {
	delay     time.Duration // its gather, once the write comes
	since     time.Time     // its last read of data (zero: none yet)
	gathering bool          // the write came: the reader's gather timer runs
}

// awaitWrite has the reader of p wait for its file's next write without
// being woken by it: the write's event starts its gather of delay on
// p.gather, or sends p.hurry to have it read at once (since is when it
// last read data). It tells whether it will be: without inotify the
// reader is woken by each write, and keeps its own timer.
func (wt *watcher) awaitWrite(p *pacer, delay time.Duration, since time.Time) bool {
	wt.waitMu.Lock()
	defer wt.waitMu.Unlock()
	if !wt.serving {
		return false
	}
	wt.waits[p] = readerWait{delay: delay, since: since}
	return true
}

// awoken ends p's reader's wait (it was woken, or stops), and tells
// whether a write had started its gather.
func (wt *watcher) awoken(p *pacer) (gathering bool) {
	wt.waitMu.Lock()
	defer wt.waitMu.Unlock()
	gathering = wt.waits[p].gathering
	delete(wt.waits, p)
	return gathering
}

// written is a write's event for p's file (the inotify goroutine).
func (wt *watcher) written(p *pacer, now time.Time) {
	wt.waitMu.Lock()
	defer wt.waitMu.Unlock()
	w, ok := wt.waits[p]
	switch {
	case !ok:
		p.written()
		return
	case w.gathering:
		p.countWrite()
		return
	}
	p.evented.Store(true)
	// The reader is waiting: it closes none of its files (under waitMu),
	// and its offsets hold still.
	switch p.unread() {
	case unreadNone:
		// A write the last read took already: wait on.
		return
	case unreadGather:
		// No delay: the last read found the file busy.
		if w.delay > 0 && now.Sub(w.since) <= p.maxDelay {
			p.countWrite()
			wt.waits[p] = readerWait{gathering: true}
			p.gather.Reset(w.delay)
			return
		}
	}
	// Plenty, truncated, or the first line after a pause: read at once.
	delete(wt.waits, p)
	p.hurryUp()
}

// endWaits ends every wait for a write: run has stopped reading the
// queue, and the readers are woken by each write (pokes) from now on.
func (wt *watcher) endWaits() {
	wt.waitMu.Lock()
	defer wt.waitMu.Unlock()
	wt.serving = false
	for p := range wt.waits {
		delete(wt.waits, p)
		p.hurryUp()
	}
}

// dispatch wakes the tailers an event concerns. wt.mu is held.
func (wt *watcher) dispatch(ev fsEvent, now time.Time) {
	// A write wakes the file's own tailer: no walk over the directory,
	// which may hold hundreds of followed files.
	if !ev.pathChanged {
		// string(ev.name) in the index does not allocate.
		if p, ok := wt.names[ev.dir][string(ev.name)]; ok {
			wt.written(p, now)
			return
		}
		// Perhaps a rotated-away file still being read (its new name is
		// not one we know): wake the tailers that hold one.
		for p := range wt.dirs[ev.dir] {
			if p.hasRotated.Load() {
				p.poke(false)
			}
		}
		return
	}
	// A create, rename or removal may be a new match of a glob.
	wt.scanEvent(ev.dir)
	// A create, rename or removal may be a rotation of any file of the
	// directory; an event about the directory itself concerns them all.
	subs, ok := wt.dirs[ev.path()]
	if !ok {
		subs = wt.dirs[ev.dir]
	}
	for p := range subs {
		p.poke(true)
	}
}

func (wt *watcher) close() {
	if wt.w != nil {
		close(wt.stop)
		wt.w.close()
	}
	<-wt.done
}

// fsEvent is one inotify event: the watched directory and the name in it
// (empty for an event about the directory itself), whether it may be a
// rotation rather than a write, or an overflow of the kernel's queue
// (events were dropped). name points into the read buffer: it is valid
// only during the callback, so that the common event, a write, costs no
// allocation (a thousand files written ten times a second are ten
// thousand events a second).
type fsEvent struct {
	dir         string
	name        []byte
	pathChanged bool
	overflow    bool
}

// path is the event's path: dir, or dir/name.
func (ev *fsEvent) path() string {
	if len(ev.name) == 0 {
		return ev.dir
	}
	return joinPath(ev.dir, string(ev.name))
}

// joinPath is filepath.Join for a clean directory and a plain name, without
// Join's cleaning pass: it runs for every event.
func joinPath(dir, name string) string {
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}
