//go:build linux

package taillog

import (
	"bytes"
	"errors"
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
	f *os.File // non-blocking, in Go's poller: a blocked Read ends on Close

	mu     sync.Mutex
	fd     int
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
	return &inotify{f: os.NewFile(uintptr(fd), "inotify"), fd: fd,
		dirs: map[string]int32{}, wds: map[int32]string{}}, nil
}

func (in *inotify) add(dir string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return os.ErrClosed
	}
	wd, err := unix.InotifyAddWatch(in.fd, dir, dirMask)
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
	buf := make([]byte, 64<<10)
	var evs []fsEvent
	wait := notifyPace
	pace := time.NewTimer(wait)
	defer pace.Stop()
	for {
		n, err := in.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
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

func (in *inotify) close() {
	in.mu.Lock()
	in.closed = true
	in.mu.Unlock()
	in.f.Close()
}
