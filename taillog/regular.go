package taillog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNotRegular is wrapped by the error for a path that names something
// other than a regular file (after symlinks): a device such as /dev/zero
// never ends and a FIFO blocks, so neither is ever read.
var ErrNotRegular = errors.New("not a regular file")

// NotRegular returns nil if fi (path's stat, symlinks followed) is a
// regular file, else an error that says what it is:
// "/dev/zero is a character device, not a regular file".
func NotRegular(path string, fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	name := path
	if target, err := filepath.EvalSymlinks(path); err == nil && target != filepath.Clean(path) {
		name = fmt.Sprintf("%s (a symlink to %s)", path, target)
	}
	return fmt.Errorf("%s is %s, %w", name, fileKind(fi.Mode()), ErrNotRegular)
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a Unix socket"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// openRegular opens path for reading only if it is a regular file. The
// path is looked at before (a stat), and the file opened is looked at
// again (a fstat): the path may name something else by then. O_NONBLOCK
// keeps the open of a FIFO from waiting for a writer; it is cleared again
// on a regular file, where it changes nothing anyway.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := NotRegular(path, fi); err != nil {
		return nil, nil, err
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err = f.Stat()
	if err == nil {
		err = NotRegular(path, fi)
	}
	if err == nil {
		err = syscall.SetNonblock(fd, false)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
