package taillog

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// specialFiles makes, in dir, one of each thing that is not a regular
// file, and returns each path with what its error must say.
func specialFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	sub := filepath.Join(dir, "adir")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "zero-link")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"/dev/zero": "/dev/zero is a character device, not a regular file",
		fifo:        fifo + " is a FIFO (named pipe), not a regular file",
		sock:        sock + " is a Unix socket, not a regular file",
		sub:         sub + " is a directory, not a regular file",
		link:        link + " (a symlink to /dev/zero) is a character device, not a regular file",
	}
}

// noReader reports whether nobody has the FIFO open for reading: an open
// for writing that does not wait fails with ENXIO then.
func noReader(t *testing.T, fifo string) bool {
	t.Helper()
	fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		syscall.Close(fd)
		return false
	}
	if !errors.Is(err, syscall.ENXIO) {
		t.Fatalf("open %s for writing: %v", fifo, err)
	}
	return true
}

// A device, FIFO, socket, directory or symlink to a device is refused with
// an error saying what it is; nothing is read from it, and the regular
// file beside them ships its lines (#26).
func TestOnlyRegularFilesAreRead(t *testing.T) {
	f := newFixture(t, testOpts())
	want := specialFiles(t, f.dir)
	good := filepath.Join(f.dir, "good.log")
	entries := []Entry{{Path: good, Topic: "t"}}
	for p := range want {
		entries = append(entries, Entry{Path: p, Topic: "t", ReadFrom: "beginning"})
	}
	f.m.Reconcile(entries)
	for p, msg := range want {
		if s := f.waitState(t, p, StateError); s.LastError != msg {
			t.Errorf("%s: error %q, want %q", p, s.LastError, msg)
		}
	}
	write(t, good, numbered(0, 3))
	checkSequence(t, f.col.wait(t, 3), 3)
	for _, s := range f.m.Status() {
		if s.Path != good && (s.BytesRead != 0 || s.LinesRead != 0) {
			t.Errorf("%s: %d bytes, %d lines read, want none", s.Path, s.BytesRead, s.LinesRead)
		}
	}
	if !noReader(t, filepath.Join(f.dir, "fifo")) {
		t.Error("the FIFO is open for reading")
	}
}

// A regular file replaced by a FIFO at rotation: the old file is read to
// its end, the FIFO is refused and never opened (#26).
func TestRotationToAFIFOIsRefused(t *testing.T) {
	f := newFixture(t, testOpts())
	p := filepath.Join(f.dir, "app.log")
	write(t, p, "")
	f.m.Reconcile([]Entry{{Path: p, Topic: "t"}})
	f.waitState(t, p, StateRunning)
	write(t, p, numbered(0, 2))
	f.col.wait(t, 2)
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, p+".1", numbered(2, 4)) // written after the rename: still read
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	s := f.waitState(t, p, StateError)
	if want := p + " is a FIFO (named pipe), not a regular file"; s.LastError != want {
		t.Errorf("error %q, want %q", s.LastError, want)
	}
	checkSequence(t, f.col.wait(t, 4), 4)
	if !noReader(t, p) {
		t.Error("the FIFO is open for reading")
	}
	// A regular file in its place is new: read from its beginning.
	os.Remove(p)
	write(t, p, numbered(4, 6))
	checkSequence(t, f.col.wait(t, 6), 6)
}

// openRegular refuses each kind with an error that says what it is.
func TestOpenRegular(t *testing.T) {
	for p, msg := range specialFiles(t, t.TempDir()) {
		f, _, err := openRegular(p)
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", p, err, msg)
		}
	}
}
