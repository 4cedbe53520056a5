package taillog

import (
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// watcher wakes tailers when their directory changes. It watches each
// directory once (inotify on a directory reports its files' writes,
// creations, renames and removals) and dispatches by file name. Without
// inotify (limit reached, unsupported file system) tailers still work: they
// fall back to their poll interval.
type watcher struct {
	log *slog.Logger
	w   *fsnotify.Watcher // nil: polling only

	mu    sync.Mutex
	dirs  map[string]map[*Tailer]struct{} // every tailer of a directory
	paths map[string]*Tailer              // the tailer of each path
	done  chan struct{}
}

func newWatcher(log *slog.Logger) *watcher {
	wt := &watcher{log: log, dirs: map[string]map[*Tailer]struct{}{}, paths: map[string]*Tailer{}, done: make(chan struct{})}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("inotify unavailable; files are polled", "err", err)
		close(wt.done)
		return wt
	}
	wt.w = w
	go wt.run()
	return wt
}

func (wt *watcher) add(t *Tailer) {
	dir := filepath.Dir(t.entry.Path)
	wt.mu.Lock()
	defer wt.mu.Unlock()
	subs, ok := wt.dirs[dir]
	if !ok {
		subs = map[*Tailer]struct{}{}
		wt.dirs[dir] = subs
		if wt.w != nil {
			// A directory that does not exist yet is polled; the file
			// appearing later is found by the poll.
			if err := wt.w.Add(dir); err != nil {
				wt.log.Debug("cannot watch directory; polling it", "dir", dir, "err", err)
			}
		}
	}
	subs[t] = struct{}{}
	wt.paths[t.entry.Path] = t
}

func (wt *watcher) remove(t *Tailer) {
	dir := filepath.Dir(t.entry.Path)
	wt.mu.Lock()
	defer wt.mu.Unlock()
	subs := wt.dirs[dir]
	delete(subs, t)
	if wt.paths[t.entry.Path] == t {
		delete(wt.paths, t.entry.Path)
	}
	if len(subs) == 0 {
		delete(wt.dirs, dir)
		if wt.w != nil {
			wt.w.Remove(dir)
		}
	}
}

func (wt *watcher) run() {
	defer close(wt.done)
	for {
		select {
		case ev, ok := <-wt.w.Events:
			if !ok {
				return
			}
			wt.dispatch(ev)
		case err, ok := <-wt.w.Errors:
			if !ok {
				return
			}
			// An overflow loses events, not data: every tailer also polls.
			wt.log.Warn("inotify error; relying on polling until it recovers", "err", err)
		}
	}
}

func (wt *watcher) dispatch(ev fsnotify.Event) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	// A write wakes the file's own tailer: no walk over the directory,
	// which may hold hundreds of followed files.
	if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Rename) && !ev.Has(fsnotify.Remove) {
		if t, ok := wt.paths[ev.Name]; ok {
			t.poke(false)
			return
		}
		// Perhaps a rotated-away file still being read (its new name is
		// not one we know): wake the tailers that hold one.
		for t := range wt.dirs[filepath.Dir(ev.Name)] {
			if t.hasRotated.Load() {
				t.poke(false)
			}
		}
		return
	}
	// A create, rename or removal may be a rotation of any file of the directory.
	for t := range wt.dirs[filepath.Dir(ev.Name)] {
		t.poke(true)
	}
}

func (wt *watcher) close() {
	if wt.w != nil {
		wt.w.Close()
	}
	<-wt.done
}
