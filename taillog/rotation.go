package taillog

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Rotation: a path that names a new file, files rotated away (read to
// their end, then closed), generations missed between two looks, and
// rotated files found again at start.

func (t *Tailer) supersede(f *openFile) {
	f.supersede()
	t.pace.hasRotated.Store(true)
	t.pace.wakeReader()
}

// awaiting notes that the path names no file. Once the path has been seen
// missing, the file that appears is new and is read from its beginning,
// also after a restart: the zero FileID saved here says so.
func (t *Tailer) awaiting() {
	t.missing = true
	// Forget the saved position of the file that was here: a new file may
	// get the same inode (ext4 reuses a freed one at once) and must not
	// resume at the old file's offset.
	t.deps.store.SetCurrent(t.entry.Path, FilePos{})
	t.setState(StateWaiting, "")
}

func (t *Tailer) rotatedDone(f *openFile) bool {
	if time.Since(time.Unix(0, f.lastGrowth.Load())) < t.deps.opts.RotateWait {
		return false
	}
	_, inFlight := f.tr.position()
	return inFlight == 0
}

func (t *Tailer) closeRotated(ctx context.Context, f *openFile, err error) {
	if err != nil {
		t.log.Error("cannot read rotated file; closing it", "file_id", f.id, "err", err)
	}
	// An unfinished last line will never be completed now: send it, and
	// the record it ends (a record is never split by a rotation).
	if (len(f.rd.pending) > 0 || f.ml.held()) && err == nil {
		t.flushPending(ctx, f)
		if werr := f.tr.wait(ctx); werr != nil {
			// Stopping: the descriptor goes, the saved position stays and
			// the next start resumes the file from it.
			f.f.Close()
			return
		}
	}
	f.f.Close()
	if f.ml != nil {
		f.ml.stop()
	}
	t.retireHead(f)
	// Late acks (after a read error) must not bring the entry back.
	f.tr.setRole(roleDetached)
	t.deps.store.DropRotated(t.entry.Path, f.id)
	t.log.Info("rotated file read to its end and closed", "file_id", f.id, "offset", f.rd.off)
}

// fsClockLag bounds how far the clock files are stamped with lags
// time.Now: one tick of the kernel's coarse clock at HZ=100.
const fsClockLag = 10 * time.Millisecond

func (t *Tailer) markSeen(id FileID) {
	if t.seen == nil || len(t.seen) > 4096 {
		t.seen = map[FileID]bool{}
	}
	t.seen[id] = true
}

// compressed names are rotated copies in another format, never read.
var compressed = []string{".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".z", ".Z"}

// rotatedName reports whether name is a rotation of base, not compressed:
// base.N or base-DATE (logrotate), stem-DATE.ext (lumberjack). The suffix
// must start with a digit, so that a sibling such as app-audit.log is not
// taken for a rotation of app.log.
func rotatedName(name, base string) bool {
	if slices.ContainsFunc(compressed, func(ext string) bool { return strings.HasSuffix(name, ext) }) {
		return false
	}
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	for _, prefix := range []string{base + ".", base + "-", stem + "-"} {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || rest == "" || rest[0] < '0' || rest[0] > '9' {
			continue
		}
		if prefix == stem+"-" && !strings.HasSuffix(rest, ext) {
			continue
		}
		return true
	}
	return false
}

// rotatedFile is a file of a path's directory named like a rotation of it.
type rotatedFile struct {
	name string // its name in the directory
	fi   os.FileInfo
}

// rotatedFiles are the regular files of ents, dir's listing, named like a
// rotation of base (rotatedName), in the listing's order.
func rotatedFiles(dir, base string, ents []os.DirEntry) []rotatedFile {
	var out []rotatedFile
	for _, de := range ents {
		name := de.Name()
		if !rotatedName(name, base) {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, rotatedFile{name, fi})
	}
	return out
}

// missedRotations are the files of rotated that were written since since
// and are not known (skip), oldest first: generations of a path that
// were rotated away before they were seen.
func missedRotations(rotated []rotatedFile, since time.Time, skip func(FileID) bool) []rotatedFile {
	var out []rotatedFile
	for _, r := range rotated {
		if r.fi.ModTime().Before(since) || skip(fileID(r.fi)) {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].fi.ModTime().Before(out[j].fi.ModTime()) })
	return out
}

// fileByID finds file id in ents, dir's listing, among the names named
// accepts (nil: any): the first such entry's name and FileInfo, if any.
func fileByID(dir string, ents []os.DirEntry, id FileID, named func(string) bool) (string, os.FileInfo, bool) {
	for _, de := range ents {
		if named != nil && !named(de.Name()) {
			continue
		}
		name := filepath.Join(dir, de.Name())
		if fi, err := os.Stat(name); err == nil && fileID(fi) == id {
			return name, fi, true
		}
	}
	return "", nil, false
}

// adoptMissed finds files rotated away before they were ever opened (with
// adopt false it only notes the rotated files there are as known): in
// the path's directory, named like a rotation of it (path.1, path-date,
// name-date.ext), never opened by this tailer, and written since the
// previous generation was opened. They are read from 0, oldest first,
// before the new file. Rotations faster than the agent looks (files
// living a few milliseconds) would otherwise lose whole files.
func (t *Tailer) adoptMissed(newID FileID, adopt bool) {
	dir, base := filepath.Split(t.entry.Path)
	list := readDir
	if !adopt {
		// A first open only notes what is there: tailers started
		// together share a listing of their directory (a thousand files
		// in one directory would otherwise be listed a thousand times).
		list = t.deps.listDir
	}
	ents, err := list(filepath.Clean(dir))
	if err != nil {
		return
	}
	rotated := rotatedFiles(dir, base, ents)
	if !adopt {
		for _, r := range rotated {
			t.markSeen(fileID(r.fi))
		}
		return
	}
	cands := missedRotations(rotated, t.lastOpen, func(id FileID) bool { return id == newID || t.seen[id] || t.holds(id) })
	for _, c := range cands {
		f, fi, err := t.deps.opts.Allow.open(filepath.Join(dir, c.name), openRegular)
		if err != nil {
			continue
		}
		if fileID(fi) != fileID(c.fi) {
			f.Close()
			continue
		}
		id := fileID(fi)
		t.markSeen(id)
		if t.knownHead(readHead(f, headBytes)) {
			t.log.Info("rotated file not read: it begins like a file already read (a copy, as copytruncate leaves)",
				"name", c.name, "file_id", id, "size", fi.Size())
			f.Close()
			continue
		}
		t.stats.rotations.Add(1)
		t.log.Warn("found a rotated file never opened under the path; reading it from the start",
			"name", c.name, "file_id", id, "size", fi.Size())
		t.holdRotated(&openFile{f: f, id: id, tr: newTracker(t.deps.store, t.entry.Path, id, 0, roleRotated, 0)})
	}
}

// holdRotated adds f, a generation no longer under the path, to the files
// read: to its end, and then closed.
func (t *Tailer) holdRotated(f *openFile) {
	f.lastGrowth.Store(time.Now().UnixNano())
	f.superseded.Store(true)
	t.mu.Lock()
	t.files = append(t.files, f)
	t.mu.Unlock()
	t.pace.hasRotated.Store(true)
}

func (t *Tailer) holds(id FileID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.files {
		if f.id == id {
			return true
		}
	}
	return false
}

// restoreRotated reopens rotated files that were still being read when the
// agent stopped, found by identity in the path's directory.
func (t *Tailer) restoreRotated() {
	saved, ok := t.deps.store.Get(t.entry.Path)
	if !ok || len(saved.Rotated) == 0 {
		return
	}
	dir := filepath.Dir(t.entry.Path)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Not knowing is not "gone": the positions stay for the next start.
		t.log.Error("cannot list the directory of rotated files still to read; their positions are kept for the next start",
			"dir", dir, "err", err)
		return
	}
	for _, r := range saved.Rotated {
		var found *os.File
		var openErr error
		// Every name of one inode is the same file: the first names it.
		if name, fi, ok := fileByID(dir, ents, r.FileID, nil); ok && fi.Mode().IsRegular() {
			if openErr = t.deps.opts.Allow.Check(name); openErr == nil {
				found, openErr = openRotated(name)
			}
			if openErr == nil {
				if openErr = t.deps.opts.Allow.checkOpen(name, found); openErr != nil {
					found.Close()
				}
			}
		}
		if openErr != nil {
			t.log.Error("cannot open a rotated file still to read; its position is kept for the next start",
				"file_id", r.FileID, "offset", r.Offset, "err", openErr)
			continue
		}
		if found != nil && r.FileID == saved.Current.FileID {
			found.Close()
			t.log.Warn("rotated file not found again; it may not have been read to its end", "file_id", r.FileID, "offset", r.Offset)
			t.deps.store.DropRotated(t.entry.Path, r.FileID)
			continue
		}
		if found != nil && !matches(found, r.Check) {
			found.Close() // its inode was reused by another file
			found = nil
		}
		if found == nil {
			t.goneWhileStopped(r)
			t.deps.store.DropRotated(t.entry.Path, r.FileID)
			continue
		}
		t.log.Info("resuming rotated file", "name", found.Name(), "file_id", r.FileID, "offset", r.Offset)
		t.resumeRotated(found, r)
	}
}

// openRotated opens a rotated file found again at start (a variable for
// the test of a failing open).
var openRotated = func(path string) (*os.File, error) {
	f, _, err := openRegular(path)
	return f, err
}

// readDir lists a directory (a variable for the test that counts listings).
var readDir = os.ReadDir
