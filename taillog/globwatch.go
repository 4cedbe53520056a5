package taillog

// The watcher's part in following glob entries: the directories a glob's
// matches may appear in are watched (one inotify watch per directory,
// shared with the tailers of files in it), and a creation, rename or
// removal in one is reported to the manager's glob loop, which lists that
// directory alone again. No tree is walked periodically.

// watchScan watches dir for a glob entry. It tells whether inotify
// watches it: if not, the glob loop lists it at each poll instead.
func (wt *watcher) watchScan(dir string) bool {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if wt.scans == nil {
		wt.scans = map[string]int{}
	}
	wt.scans[dir]++
	if wt.w == nil {
		return false
	}
	if wt.w.watched(dir) {
		return true
	}
	if err := wt.w.add(dir); err != nil {
		wt.log.Debug("cannot watch directory for new matches; listing it at each poll", "dir", dir, "err", err)
		return false
	}
	return true
}

// unwatchScan undoes watchScan.
func (wt *watcher) unwatchScan(dir string) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if wt.scans[dir] <= 1 {
		delete(wt.scans, dir)
		if _, tailed := wt.dirs[dir]; !tailed && wt.w != nil {
			wt.w.remove(dir)
		}
		return
	}
	wt.scans[dir]--
}

// scanWatched tells whether inotify reports dir's changes.
func (wt *watcher) scanWatched(dir string) bool {
	return wt.w != nil && wt.w.watched(dir)
}

// scanEvent reports a change in dir to the glob loop. wt.mu is held.
func (wt *watcher) scanEvent(dir string) {
	if wt.scans[dir] > 0 && wt.dirChanged != nil {
		wt.dirChanged(dir)
	}
}

// rescanAll reports every glob directory changed: events were lost.
// wt.mu is held.
func (wt *watcher) rescanAll() {
	for dir := range wt.scans {
		wt.scanEvent(dir)
	}
}

// rewatchScans watches again glob directories whose watch was lost; what
// changed meanwhile is listed. wt.mu is held.
func (wt *watcher) rewatchScans() {
	for dir := range wt.scans {
		if wt.w.watched(dir) {
			continue
		}
		if err := wt.w.add(dir); err == nil {
			wt.scanEvent(dir)
		}
	}
}
