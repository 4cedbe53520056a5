//go:build linux

package taillog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inotify watches directories with Linux inotify and reads their events in
// batches: after each read it waits notifyPace (slowPace once the queue
// is found busy), so that a thousand files written ten times a second
// cost forty reads of the inotify queue a second, not ten thousand
// (fsnotify, used before, woke a goroutine and read the queue once per
// event; that was a sixth of the agent's CPU with 1,000 followed files).
type inotify struct {
	// The queue is waited for with poll(2), not in Go's network poller:
	// the poller watches its descriptors all the time (edge-triggered),
	// so every event queued while run paces itself woke a thread that had
	// nothing to do — a thousand times a second with files written at
	// moments of their own. poll waits only while run waits.
	stop int // eventfd: written by close, ends run's wait

	mu     sync.Mutex
	fd     int // non-blocking; closed by run when it ends
	closed bool
	dirs   map[string]int32 // watched directory → watch descriptor
	wds    map[int32]string // and back
}

// How long events gather after a read of the inotify queue: notifyPace,
// or slowPace once a read finds manyEvents or more (many files written),
// until one finds fewer than fewEvents. Each read wakes the process. 1,000
// files at 10 lines/s, each written at moments of its own: 7.6–8.0 % of a
// core with 5 ms, 5.8–7.2 % with 25 ms. A file's first line after a pause
// waits for the pace, and so does a busy file whose rate dipped (one
// whose rate holds does not wait for inotify: busyPace): with one busy
// file, 25 ms let fault case 4b lose the lines written just before a
// copytruncate's truncate.
const (
	notifyPace = 5 * time.Millisecond
	slowPace   = 25 * time.Millisecond
	manyEvents = 32
	fewEvents  = 8
)

// nextPace is the pace after a read of the queue that found events.
func nextPace(cur time.Duration, events int) time.Duration {
	switch {
	case events >= manyEvents:
		return slowPace
	case events < fewEvents:
		return notifyPace
	}
	return cur
}

// The events a watched directory reports. A write or truncation is
// IN_MODIFY; creation, renames and removal may be a rotation.
const (
	dirMask   = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	pathMask  = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_IGNORED
	eventSize = unix.SizeofInotifyEvent
)

func newInotify() (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &inotify{fd: fd, stop: stop, dirs: map[string]int32{}, wds: map[int32]string{}}, nil
}

// namesMask watches a directory for its names only (a glob's directory
// where no file is followed): the writes to its files, which may be many,
// are not reported.
const namesMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// add watches dir for everything a followed file needs (dirMask);
// addNames for names only (namesMask). Either replaces the other.
func (in *inotify) add(dir string) error { return in.addMask(dir, dirMask) }

func (in *inotify) addNames(dir string) error { return in.addMask(dir, namesMask) }

func (in *inotify) addMask(dir string, mask uint32) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return os.ErrClosed
	}
	wd, err := unix.InotifyAddWatch(in.fd, dir, mask)
	if err != nil {
		return fmt.Errorf("inotify_add_watch %s: %w", dir, err)
	}
	in.dirs[dir] = int32(wd)
	in.wds[int32(wd)] = dir
	return nil
}

func (in *inotify) watched(dir string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	_, ok := in.dirs[dir]
	return ok
}

func (in *inotify) remove(dir string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	wd, ok := in.dirs[dir]
	if !ok || in.closed {
		return
	}
	delete(in.dirs, dir)
	delete(in.wds, wd)
	unix.InotifyRmWatch(in.fd, uint32(wd)) //nolint:errcheck // the directory may be gone already
}

// run reads events until close and hands each read's events to fn.
func (in *inotify) run(done <-chan struct{}, fn func([]fsEvent)) error {
	defer in.release()
	buf := make([]byte, 64<<10)
	var evs []fsEvent
	wait := notifyPace
	pace := time.NewTimer(wait)
	defer pace.Stop()
	fds := []unix.PollFd{{Fd: int32(in.fd), Events: unix.POLLIN}, {Fd: int32(in.stop), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err == unix.EINTR {
			continue
		} else if err != nil {
			return fmt.Errorf("poll inotify: %w", err)
		}
		if fds[1].Revents != 0 {
			return nil
		}
		n, err := unix.Read(in.fd, buf)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read inotify: %w", err)
		}
		evs = in.decode(buf[:n], evs[:0])
		fn(evs)
		wait = nextPace(wait, len(evs))
		pace.Reset(wait)
		select {
		case <-done:
			return nil
		case <-pace.C:
		}
	}
}

// release closes the descriptors once run no longer waits on them.
func (in *inotify) release() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	unix.Close(in.fd)
	unix.Close(in.stop)
}

// decode appends the events of one read of the queue to evs.
func (in *inotify) decode(b []byte, evs []fsEvent) []fsEvent {
	in.mu.Lock()
	defer in.mu.Unlock()
	parseEvents(b, func(wd int32, mask uint32, name []byte) {
		if mask&unix.IN_Q_OVERFLOW != 0 {
			evs = append(evs, fsEvent{overflow: true})
			return
		}
		dir, ok := in.wds[wd]
		if !ok {
			return
		}
		switch {
		case mask&unix.IN_IGNORED != 0:
			// The directory is gone or unwatched: its descriptor
			// may be given to another.
			in.forget(wd, dir)
		case mask&unix.IN_MOVE_SELF != 0:
			// The watch follows the directory to its new name, but
			// the paths followed are under the old one: drop it,
			// the poller watches whatever has the name then.
			in.forget(wd, dir)
			unix.InotifyRmWatch(in.fd, uint32(wd)) //nolint:errcheck
		}
		evs = append(evs, fsEvent{dir: dir, name: name, pathChanged: mask&pathMask != 0})
	})
	return evs
}

func (in *inotify) forget(wd int32, dir string) {
	delete(in.wds, wd)
	if in.dirs[dir] == wd {
		delete(in.dirs, dir)
	}
}

// parseEvents calls fn for each inotify_event in b: its watch descriptor,
// mask and name (without the NUL padding; a slice of b).
func parseEvents(b []byte, fn func(wd int32, mask uint32, name []byte)) {
	for len(b) >= eventSize {
		e := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := eventSize + int(e.Len)
		if end > len(b) {
			return
		}
		name := b[eventSize:end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		fn(e.Wd, e.Mask, name)
		b = b[end:]
	}
}

// close ends run, which closes the descriptors: one that poll(2) waits on
// must not be closed (nor its number given to another file) under it. (A
// watcher always starts run; an inotify whose run never starts keeps them.)
func (in *inotify) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return
	}
	in.closed = true
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(in.stop, one[:]) //nolint:errcheck // one write cannot overflow the counter
}

// localFS tells whether f is on a local file system: only then does the
// inotify goroutine look at its size for a waiting reader (watcher.written).
// An fstat that hangs on a stalled network mount would hold every file's
// events, the poller and shutdown with it; on an unknown or network file
// system the file's own reader looks, as before.
func localFS(f *os.File) bool {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return false
	}
	switch uint32(st.Type) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC,
		unix.OVERLAYFS_SUPER_MAGIC, unix.F2FS_SUPER_MAGIC, unix.RAMFS_MAGIC, unix.BCACHEFS_SUPER_MAGIC,
		zfsSuperMagic:
		return true
	}
	return false
}

// zfsSuperMagic is OpenZFS's f_type (not in the kernel's headers).
const zfsSuperMagic = 0x2fc12fc1
