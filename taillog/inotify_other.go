//go:build !linux

package taillog

import (
	"errors"
	"os"
	"runtime"
)

// inotify is Linux only: elsewhere every file is polled.
type inotify struct{}

func newInotify() (*inotify, error) {
	return nil, errors.New("no inotify on " + runtime.GOOS)
}

func (*inotify) add(string) error                           { return errors.ErrUnsupported }
func (*inotify) addNames(string) error                      { return errors.ErrUnsupported }
func (*inotify) remove(string)                              {}
func (*inotify) run(<-chan struct{}, func([]fsEvent)) error { return nil }
func localFS(*os.File) bool                                 { return false }
func (*inotify) close()                                     {}
func (*inotify) watched(string) bool                        { return false }
