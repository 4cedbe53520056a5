package taillog

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// reconcileSaved compares the saved position of the file the path named
// with what is on disk, before reading resumes (#24): files change while
// the agent is stopped (logrotate does not wait for it).
//   - The file is still at the path: if the bytes just before the saved
//     offset are not those read (copytruncate, or a truncate and rewrite,
//     even to the same size or beyond), it is read again from 0.
//   - It is not: it is looked for where rotation puts it (the path's
//     directory, a rotated name, by device + inode, confirmed by those
//     bytes) and read from the saved offset, then the generations rotated
//     after it, from 0; then the path's new file, from 0.
//   - It is nowhere: it was deleted; the bytes known and not read are
//     reported lost, once.
//
// Rotated files still being read at the stop are restoreRotated's.
func (t *Tailer) reconcileSaved() {
	saved, ok := t.deps.store.Get(t.entry.Path)
	if !ok || saved.Current.FileID == (FileID{}) {
		return
	}
	cur := saved.Current
	fi, err := os.Stat(t.entry.Path)
	switch {
	case err == nil && fileID(fi) == cur.FileID:
		t.checkRewritten(cur)
		return
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return // not known: the saved position stays, open tells
	}
	var now FileID // what the path names now (zero: nothing)
	if err == nil {
		now = fileID(fi)
	}
	dir, base := filepath.Split(t.entry.Path)
	dir = filepath.Clean(dir)
	ents, err := readDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.log.Error("cannot list the directory of a file rotated while stopped; its position is kept for the next start",
			"dir", dir, "err", err)
		return
	}
	rotation := func(name string) bool { return rotatedName(name, base) }
	if name, _, ok := fileByID(dir, ents, cur.FileID, rotation); ok {
		f, fi, err := t.deps.opts.Allow.open(name, openRegular)
		if err != nil {
			// Kept as a rotated file of the path: the next start looks again.
			t.log.Error("cannot open a file rotated while stopped; its position is kept for the next start",
				"name", name, "file_id", cur.FileID, "offset", cur.Offset, "err", err)
			t.deps.store.SetRotated(t.entry.Path, cur)
			t.deps.store.SetCurrent(t.entry.Path, FilePos{})
			return
		}
		if fileID(fi) == cur.FileID && matches(f, cur.Check) {
			t.log.Info("file rotated while stopped; reading it on from the saved offset", "name", name,
				"file_id", cur.FileID, "offset", cur.Offset, "size", fi.Size())
			t.stats.rotations.Add(1)
			t.deps.store.SetCurrent(t.entry.Path, FilePos{})
			t.resumeRotated(f, cur)
			// Generations that held the name after it, rotated away while
			// stopped too, are read from 0 after it.
			t.lastOpen = fi.ModTime()
			t.adoptMissed(now, true)
			t.lastOpen = time.Time{}
			return
		}
		f.Close() // the inode was reused by another file
	}
	t.deps.store.SetCurrent(t.entry.Path, FilePos{})
	t.goneWhileStopped(cur)
}

// checkRewritten reads the file at the path again from 0 if the bytes
// before its saved offset are not those that were read.
func (t *Tailer) checkRewritten(cur FilePos) {
	if cur.Check.Len == 0 {
		return
	}
	f, _, err := t.deps.opts.Allow.open(t.entry.Path, openRegular)
	if err != nil {
		return // open tells
	}
	defer f.Close()
	if matches(f, cur.Check) {
		return
	}
	t.log.Warn("file rewritten while stopped (the bytes before the saved offset are not those read); reading it again from the start",
		"file_id", cur.FileID, "saved_offset", cur.Offset)
	t.stats.truncations.Add(1)
	t.deps.store.SetCurrent(t.entry.Path, FilePos{FileID: cur.FileID})
}

// goneWhileStopped reports a saved file found nowhere: what was known of
// it and not read is lost for good.
func (t *Tailer) goneWhileStopped(pos FilePos) {
	lost := max(0, pos.Size-pos.Offset)
	t.stats.lostBytes.Add(lost)
	if lost > 0 {
		t.log.Error("file deleted while stopped before it was read to its end; its unread bytes are lost",
			"file_id", pos.FileID, "offset", pos.Offset, "lost_bytes", lost)
		return
	}
	t.log.Warn("file deleted while stopped; nothing known of it was unread",
		"file_id", pos.FileID, "offset", pos.Offset)
}

// resumeRotated holds f, a rotated-away file of the path, to be read from
// the saved pos.
func (t *Tailer) resumeRotated(found *os.File, pos FilePos) {
	f := &openFile{f: found, id: pos.FileID, rd: reader{off: pos.Offset}, head: readHead(found, pos.Offset),
		tr: newTracker(t.deps.store, t.entry.Path, pos.FileID, pos.Offset, roleRotated, pos.Gen)}
	f.tr.resume(pos)
	t.holdRotated(f)
}

// matches reports whether f holds the bytes c fingerprints (no
// fingerprint: nothing to compare, it does).
func matches(f *os.File, c Check) bool {
	if c.Len <= 0 || c.Len > lookBack || c.At < int64(c.Len) {
		return true
	}
	var b [lookBack]byte
	n, _ := f.ReadAt(b[:c.Len], c.At-int64(c.Len))
	return n == c.Len && sum64(b[:n]) == c.Sum
}

// readCheck fingerprints the bytes of f just before end (none if they
// cannot be read).
func readCheck(f *os.File, end int64) Check {
	var b [lookBack]byte
	n := int(min(end, lookBack))
	if k, _ := f.ReadAt(b[:n], end-int64(n)); k != n {
		return Check{}
	}
	return checkOf(b[:n], end)
}
