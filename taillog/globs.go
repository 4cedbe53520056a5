package taillog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/logagent/logagent/internal/glob"
)

// Glob entries (#17): an entry whose path has glob characters follows
// every regular file that matches it, each with a tailer of its own, as
// if it were listed alone (its own position, rotation, truncation). The
// tailers do not know about globs: the manager turns the entries into one
// plain entry per match, and again whenever a match comes or goes.
//
// A match is found within moments by inotify on the directories the
// pattern can match in (each listed once at the start, then only when it
// changes); directories inotify cannot watch are listed at each poll.
//
// Compressed files (.gz, .zst, ... as rotatedName knows them) are never
// matched.
//
// A name that is a rotation of another match (app.log.1 beside app.log,
// see rotatedName), or of a match being drained, is not followed: that
// file is read by the tailer of the name it had (a rotation), never twice.

// DefaultMaxFilesPerEntry bounds the matches of one glob entry when
// Options.MaxFilesPerEntry is not set.
const DefaultMaxFilesPerEntry = 10000

// globs is the manager's glob entries.
type globs struct {
	m    *Manager
	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex // guards changed and snap
	changed map[string]bool
	snap    []Status // the entries that follow no file (Manager.Status)

	// Under m.reconcileMu.
	declared []Entry
	entries  map[string]*globEntry // by pattern
}

// globEntry is one glob entry and what it matches.
type globEntry struct {
	e    Entry
	root string
	// dirs is every directory listed (and watched) for the entry, with
	// the names in it that match (exclusions applied).
	dirs    map[string]map[string]bool
	files   []string // the matches followed, sorted
	from    map[string]string
	err     error
	kept    bool            // a match gone from its directory is kept while drained (match)
	refused map[string]bool // matches the filter refused (logged once)
	fresh   bool            // the entry's first listing: existing files start as read_from says
}

func newGlobs(m *Manager) *globs {
	g := &globs{m: m, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		changed: map[string]bool{}, entries: map[string]*globEntry{}}
	m.watch.mu.Lock()
	m.watch.dirChanged = g.dirChanged
	m.watch.mu.Unlock()
	go g.loop()
	return g
}

// dirChanged notes a change in dir (the inotify goroutine): never blocks.
func (g *globs) dirChanged(dir string) {
	g.mu.Lock()
	g.changed[dir] = true
	g.mu.Unlock()
	g.poke()
}

func (g *globs) poke() { signal(g.kick) }

// loop lists the directories that changed and applies the new matches.
func (g *globs) loop() {
	defer close(g.done)
	for {
		select {
		case <-g.stop:
			return
		case <-g.kick:
		}
		g.m.reconcileMu.Lock()
		if !g.m.stopped {
			g.mu.Lock()
			changed := g.changed
			g.changed = map[string]bool{}
			g.mu.Unlock()
			if g.rescan(changed) {
				g.m.reconcileFiles(g.concrete())
				g.snapshot()
			}
		}
		g.m.reconcileMu.Unlock()
	}
}

// tick is the poll's safety net: directories inotify does not watch are
// listed (a root that does not exist yet among them), and matches that
// are gone and drained are let go.
func (g *globs) tick() {
	g.mu.Lock()
	g.changed[""] = true // "": look at the unwatched directories
	g.mu.Unlock()
	g.poke()
}

func (g *globs) close() {
	close(g.stop)
	<-g.done
}

// set takes the declared entries (under m.reconcileMu) and returns the
// plain entries to follow.
func (g *globs) set(entries []Entry) []Entry {
	g.declared = entries
	keep := map[string]bool{}
	for _, e := range entries {
		if !glob.HasMeta(e.Path) {
			continue
		}
		keep[e.Path] = true
		if ge, ok := g.entries[e.Path]; ok && ge.sameAs(e) {
			continue
		} else if ok {
			g.forget(ge)
		}
		ge := &globEntry{e: e, root: glob.Root(e.Path), dirs: map[string]map[string]bool{},
			from: map[string]string{}, refused: map[string]bool{}}
		// The pattern's marker in the positions tells an entry seen
		// before (a restart, or an entry put back): then every match
		// without a saved position appeared since, and is read from its
		// beginning.
		if _, seen := g.m.store.Get(e.Path); !seen {
			ge.fresh = true
			g.m.store.SetCurrent(e.Path, FilePos{})
			// Saved now, not at the next flush: files that appear after a
			// crash within the second are new, read from their beginning.
			// A failed save is retried (and logged) by the flush loop.
			_ = g.m.store.Sync()
		}
		g.entries[e.Path] = ge
		g.scan(ge, ge.root)
		g.match(ge)
		ge.fresh = false
		g.m.log.Info("collecting glob", "entry", e.Path, "topic", e.Topic, "matches", len(ge.files), "dirs", len(ge.dirs))
	}
	for p, ge := range g.entries {
		if !keep[p] {
			g.forget(ge)
			delete(g.entries, p)
		}
	}
	g.snapshot()
	return g.concrete()
}

func (ge *globEntry) sameAs(e Entry) bool {
	return ge.e.Topic == e.Topic && ge.e.ReadFrom == e.ReadFrom && slices.Equal(ge.e.Exclude, e.Exclude) &&
		ge.e.Multiline.same(e.Multiline)
}

// forget stops watching ge's directories.
func (g *globs) forget(ge *globEntry) {
	for dir := range ge.dirs {
		g.m.watch.unwatchScan(dir)
	}
	ge.dirs = nil
}

// concrete is the plain entries and every glob entry's matches, in the
// order declared; a path is followed once, for the first entry that names it.
func (g *globs) concrete() []Entry {
	var out []Entry
	seen := map[string]bool{}
	for _, e := range g.declared {
		ge := g.entries[e.Path]
		if ge == nil {
			if !seen[e.Path] {
				seen[e.Path] = true
				out = append(out, e)
			}
			continue
		}
		for _, p := range ge.files {
			if seen[p] {
				continue
			}
			seen[p] = true
			m := e
			m.Path, m.Glob, m.ReadFrom = p, e.Path, ge.from[p]
			out = append(out, m)
		}
	}
	return out
}

// rescan lists the changed directories of every glob entry ("" in changed:
// the unwatched ones) and tells whether any entry's matches changed.
func (g *globs) rescan(changed map[string]bool) bool {
	any := false
	for _, ge := range g.entries {
		if ge.dirs == nil {
			continue
		}
		var todo []string
		for dir := range changed {
			if _, ok := ge.dirs[dir]; ok {
				todo = append(todo, dir)
			}
		}
		if changed[""] {
			if _, ok := ge.dirs[ge.root]; !ok {
				todo = append(todo, ge.root)
			}
			for dir := range ge.dirs {
				if !g.m.watch.scanWatched(dir) {
					todo = append(todo, dir)
				}
			}
		}
		if len(todo) == 0 && !ge.kept {
			// Nothing listed, nothing being drained: the matches are
			// as they were (a poll costs nothing per match).
			continue
		}
		sort.Strings(todo) // parents before their sub-directories
		for _, dir := range todo {
			if _, ok := ge.dirs[dir]; ok || dir == ge.root {
				g.scan(ge, dir)
			}
		}
		if g.match(ge) {
			any = true
		}
	}
	return any
}

// scan lists dir for ge: its matching files, and its sub-directories
// where matches may be (listed too, the first time they are seen). A
// directory that cannot be listed is forgotten with what is under it.
func (g *globs) scan(ge *globEntry, dir string) {
	if _, ok := ge.dirs[dir]; !ok {
		// Watched before it is listed: a file created in between is
		// reported, not missed until the directory's next change.
		g.m.watch.watchScan(dir) // if not watched, it is listed at each poll
		ge.dirs[dir] = nil
	}
	names, subdirs, err := globDir(ge.e.Path, ge.e.Exclude, dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			g.m.log.Warn("cannot list a directory of a glob entry", "entry", ge.e.Path, "dir", dir, "err", err)
		}
		g.drop(ge, dir)
		return
	}
	ge.dirs[dir] = names
	// Sub-directories gone since the last listing are forgotten; new ones
	// are listed (a directory created with files already in it).
	for d := range ge.dirs {
		if d != dir && filepath.Dir(d) == dir && !subdirs[d] {
			g.drop(ge, d)
		}
	}
	for d := range subdirs {
		if _, ok := ge.dirs[d]; !ok {
			g.scan(ge, d)
		}
	}
}

// globDir lists dir for pattern: the names of its files that match (and
// are not excluded), and its sub-directories where matches may lie.
func globDir(pattern string, exclude []string, dir string) (names, subdirs map[string]bool, err error) {
	ents, err := readDir(dir)
	if err != nil {
		return nil, nil, err
	}
	names, subdirs = map[string]bool{}, map[string]bool{}
	for _, de := range ents {
		p := joinPath(dir, de.Name())
		typ := de.Type()
		if typ&fs.ModeSymlink != 0 {
			// A link to a file is followed; a link to a directory is not
			// walked (a loop under ** would never end).
			fi, err := os.Stat(p)
			if err != nil || fi.IsDir() {
				continue
			}
			typ = fi.Mode().Type()
		}
		switch {
		case typ.IsDir():
			if glob.Within(pattern, p) {
				subdirs[p] = true
			}
		case typ.IsRegular() && glob.Match(pattern, p) && !excluded(exclude, p) && !compressedName(de.Name()):
			names[de.Name()] = true
		}
	}
	return names, subdirs, nil
}

// GlobMatches is what a glob entry follows now, rotated names left out
// (logagent check): an error if more than limit files match.
func GlobMatches(pattern string, exclude []string, limit int) ([]string, error) {
	var files []string
	var walk func(dir string) error
	walk = func(dir string) error {
		names, subdirs, err := globDir(pattern, exclude, dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		for name := range names {
			if !rotationOfAny(name, names) {
				files = append(files, joinPath(dir, name))
			}
		}
		if len(files) > limit {
			return fmt.Errorf("glob %s matches more than max_files_per_entry (%d) files; refused, none of them is read", pattern, limit)
		}
		for d := range subdirs {
			if err := walk(d); err != nil {
				return err
			}
		}
		return nil
	}
	err := walk(glob.Root(pattern))
	sort.Strings(files)
	return files, err
}

// drop forgets dir and the directories under it.
func (g *globs) drop(ge *globEntry, dir string) {
	for d := range ge.dirs {
		if d == dir || strings.HasPrefix(d, dir+"/") || dir == "/" {
			g.m.watch.unwatchScan(d)
			delete(ge.dirs, d)
		}
	}
}

// compressedName tells a compressed file (app.log.2.gz): never followed,
// its lines are not text.
func compressedName(name string) bool {
	return slices.ContainsFunc(compressed, func(ext string) bool { return strings.HasSuffix(name, ext) })
}

// excluded tells whether an exclude pattern names path: one with a '/'
// is matched against the whole path, one without against the file's name.
func excluded(patterns []string, path string) bool {
	for _, x := range patterns {
		if strings.Contains(x, "/") {
			if glob.Match(x, path) {
				return true
			}
		} else if ok, _ := filepath.Match(x, filepath.Base(path)); ok {
			return true
		}
	}
	return false
}

// match works out ge's matches from its listings, and tells whether
// they changed: rotations of other matches left out, a match that is gone
// kept while its tailer still drains it or a rotation of it is there,
// the filter applied, and the limit.
func (g *globs) match(ge *globEntry) bool {
	limit := g.m.opts.MaxFilesPerEntry
	if limit <= 0 {
		limit = DefaultMaxFilesPerEntry
	}
	var files []string
	var tooMany error
	ge.kept = false
	for dir, names := range ge.dirs {
		// The names of the directory's matches, and of the matches being
		// drained: what a rotated name is a rotation of.
		bases, copied := names, false
		keep := func(p string) {
			if !copied {
				bases, copied = maps(names), true
			}
			bases[filepath.Base(p)] = true
			files = append(files, p)
			ge.kept = true
		}
		for _, p := range ge.files {
			if filepath.Dir(p) == dir && !names[filepath.Base(p)] && g.draining(p, names) {
				keep(p)
			}
		}
		// A followed file (it has a saved position) renamed to a rotated
		// name while the agent was stopped, no new file at its name yet:
		// its tailer reads the rest of it (reconcileSaved), and the
		// rotated name is not a new file read from its beginning.
		for name := range names {
			gone := rotationOf(name, func(base string) bool {
				p := joinPath(dir, base)
				if bases[base] || !glob.Match(ge.e.Path, p) || excluded(ge.e.Exclude, p) {
					return false
				}
				_, saved := g.m.store.Get(p)
				return saved
			})
			if gone != "" {
				keep(joinPath(dir, gone))
			}
		}
		for name := range names {
			if rotationOfAny(name, bases) {
				continue
			}
			files = append(files, joinPath(dir, name))
		}
		if len(files) > limit {
			tooMany = fmt.Errorf("glob %s matches more than max_files_per_entry (%d) files; refused, none of them is read", ge.e.Path, limit)
			files = nil
			break
		}
	}
	if g.m.opts.Filter != nil {
		// Asked once per match: a thousand matches are not resolved
		// again at every poll.
		had := make(map[string]bool, len(ge.files))
		for _, p := range ge.files {
			had[p] = true
		}
		files = slices.DeleteFunc(files, func(p string) bool { return !had[p] && g.refuse(ge, p) })
	}
	sort.Strings(files)
	errChanged := (tooMany == nil) != (ge.err == nil) || (tooMany != nil && tooMany.Error() != ge.err.Error())
	if errChanged {
		if tooMany != nil {
			g.m.log.Error("glob entry refused", "entry", ge.e.Path, "err", tooMany)
		}
		ge.err = tooMany
	}
	if slices.Equal(files, ge.files) {
		return errChanged
	}
	from := map[string]string{}
	for _, p := range files {
		switch f, ok := ge.from[p]; {
		case ok:
			from[p] = f
		case ge.fresh:
			from[p] = ge.e.ReadFrom // there when the entry appeared: as a listed path
		default:
			from[p] = "beginning" // appeared since
		}
	}
	ge.files, ge.from = files, from
	return true
}

// refuse applies the filter (Options.Filter) to a match, with its links
// resolved: a refused match is logged once and not followed.
func (g *globs) refuse(ge *globEntry, p string) bool {
	real, err := filepath.EvalSymlinks(p)
	if err == nil {
		err = g.m.opts.Filter(real)
	}
	if err == nil {
		delete(ge.refused, p)
		return false
	}
	if !ge.refused[p] {
		ge.refused[p] = true
		g.m.log.Error("glob match refused", "entry", ge.e.Path, "path", p, "err", err)
	}
	return true
}

func maps(m map[string]bool) map[string]bool {
	c := make(map[string]bool, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

// draining tells whether the match p, no longer in its directory's
// listing, is still followed: its tailer holds a file (drains a rotated
// one), or a rotation of it is in the directory (app.log renamed to
// app.log.1, the new app.log not created yet).
func (g *globs) draining(p string, names map[string]bool) bool {
	g.m.mu.Lock()
	t := g.m.tailers[p]
	g.m.mu.Unlock()
	if t != nil && len(t.snapshot()) > 0 {
		return true
	}
	base := filepath.Base(p)
	for name := range names {
		if rotatedName(name, base) {
			return true
		}
	}
	return false
}

// rotationOfAny tells whether name is a rotation (rotatedName), or a
// compressed rotated copy, of one of names.
func rotationOfAny(name string, names map[string]bool) bool {
	return rotationOf(name, func(base string) bool { return names[base] }) != ""
}

// rotationOf is the name name is a rotation of, among those known says
// are there ("": none). Only the names name can be a rotation of are
// asked about: name cut before a '.' or '-' followed by a digit
// (app.log.1, app.log-20261206), and that with name's extension
// (app-2026-12-06.log of app.log); for a compressed name, the name
// without its compression's extension too (app.log.gz of app.log).
func rotationOf(name string, known func(base string) bool) string {
	plain := name
	for _, ext := range compressed {
		if s, ok := strings.CutSuffix(name, ext); ok && s != "" {
			plain = s
			break
		}
	}
	if plain != name && known(plain) {
		return plain // app.log.gz beside app.log
	}
	ext := filepath.Ext(plain)
	for i := 1; i+1 < len(plain); i++ {
		if (plain[i] != '.' && plain[i] != '-') || plain[i+1] < '0' || plain[i+1] > '9' {
			continue
		}
		for _, base := range []string{plain[:i], plain[:i] + ext} {
			if base != plain && rotatedName(plain, base) && known(base) {
				return base
			}
		}
	}
	return ""
}

// status reports the glob entries that follow no file: refused, or
// matching nothing yet.
func (g *globs) status() []Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.snap
}

// snapshot takes the status of the entries that follow no file, for
// status (which does not wait for reconcileMu).
func (g *globs) snapshot() {
	var out []Status
	for _, e := range g.declared {
		ge := g.entries[e.Path]
		if ge == nil || len(ge.files) > 0 {
			continue
		}
		s := Status{Path: e.Path, Entry: e.Path, Topic: e.Topic, State: StateWaiting}
		if ge.err != nil {
			s.State, s.LastError = StateError, ge.err.Error()
		}
		out = append(out, s)
	}
	g.mu.Lock()
	g.snap = out
	g.mu.Unlock()
}
