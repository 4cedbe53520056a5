package taillog

// The watcher's part in following glob entries: the directories a glob's
// matches may appear in are watched (one inotify watch per directory,
// shared with the tailers of files in it), and a creation, rename or
// removal in one is reported to the manager's glob loop, which lists that
// directory alone again. No tree is walked periodically.

// watchScan watches dir for a glob entry. A directory inotify does not
// watch (scanWatched) is listed at each poll instead.
func (wt *watcher) watchScan(dir string) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if wt.scans == nil {
		wt.scans = map[string]int{}
	}
	wt.scans[dir]++
	if wt.w == nil || wt.w.watched(dir) {
		return // polled; or watched with the tailers' mask, or for names already
	}
	// Names only: the writes to the files of a directory where no match
	// is followed (/var/log/journal under /var/log/**) would each wake
	// the agent for nothing.
	if err := wt.w.addNames(dir); err != nil {
		wt.log.Debug("cannot watch directory for new matches; listing it at each poll", "dir", dir, "err", err)
	}
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

// tailersGone is called when the last tailer of dir stops: a directory a
// glob still watches goes back to names only. wt.mu is held.
func (wt *watcher) tailersGone(dir string) {
	if wt.w == nil {
		return
	}
	if wt.scans[dir] == 0 {
		wt.w.remove(dir)
		return
	}
	wt.w.addNames(dir) //nolint:errcheck // the directory may be gone: the glob's listing finds it so
}

// rewatchScans watches again glob directories whose watch was lost, after
// rewatch watched again readded for their tailers; what changed meanwhile
// is listed. wt.mu is held.
func (wt *watcher) rewatchScans(readded []string) {
	for _, dir := range readded {
		wt.scanEvent(dir)
	}
	for dir := range wt.scans {
		if wt.w.watched(dir) {
			continue
		}
		if err := wt.w.addNames(dir); err == nil {
			wt.scanEvent(dir)
		}
	}
}
