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

	mu   sync.Mutex
	dirs map[string]map[*Tailer]struct{}
	done chan struct{}
}

func newWatcher(log *slog.Logger) *watcher {
	wt := &watcher{log: log, dirs: map[string]map[*Tailer]struct{}{}, done: make(chan struct{})}
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
}

func (wt *watcher) remove(t *Tailer) {
	dir := filepath.Dir(t.entry.Path)
	wt.mu.Lock()
	defer wt.mu.Unlock()
	subs := wt.dirs[dir]
	delete(subs, t)
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
	dir := filepath.Dir(ev.Name)
	// A create, rename or removal in a directory may be a rotation of any
	// of its files (the old file's new name is not one we know).
	all := ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove)
	wt.mu.Lock()
	defer wt.mu.Unlock()
	for t := range wt.dirs[dir] {
		if all || t.entry.Path == ev.Name || t.hasRotated.Load() {
			t.poke()
		}
	}
}

func (wt *watcher) close() {
	if wt.w != nil {
		wt.w.Close()
	}
	<-wt.done
}
