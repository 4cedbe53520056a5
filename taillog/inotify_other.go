//go:build !linux

package taillog

import (
	"errors"
	"runtime"
)

// inotify is Linux only: elsewhere every file is polled.
type inotify struct{}

type fsEvent struct {
	dir         string
	name        []byte
	pathChanged bool
	overflow    bool
}

func (ev *fsEvent) path() string { return ev.dir }

func newInotify() (*inotify, error) {
	return nil, errors.New("no inotify on " + runtime.GOOS)
}

func (*inotify) add(string) error                           { return errors.ErrUnsupported }
func (*inotify) remove(string)                              {}
func (*inotify) run(<-chan struct{}, func([]fsEvent)) error { return nil }
func (*inotify) close()                                     {}
func (*inotify) watched(string) bool                        { return false }
