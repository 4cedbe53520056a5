package taillog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/logagent/logagent/internal/glob"
)

// ErrNotAllowed is wrapped by the error for a file whose real path is
// outside [agent] allow_paths. etcd says what to read; the agent's own
// ini says what may be read: an etcd writer must not make a root daemon
// ship /etc/shadow.
var ErrNotAllowed = errors.New("outside [agent] allow_paths")

// AllowList is [agent] allow_paths: globs a file's real path must match.
// '*', '?' and '[...]' match within one path segment (path.Match); a '**'
// segment matches any number of segments. A nil *AllowList allows every
// path.
type AllowList struct {
	raw      string
	patterns []string
}

// NewAllowList compiles patterns (absolute, clean; conf checks them).
func NewAllowList(patterns []string) (*AllowList, error) {
	a := &AllowList{raw: strings.Join(patterns, ", ")}
	for _, p := range patterns {
		if !path.IsAbs(p) || path.Clean(p) != p {
			return nil, fmt.Errorf("allow_paths: %q is not a clean absolute path", p)
		}
		if err := glob.Validate(p); err != nil {
			return nil, fmt.Errorf("allow_paths: %q: %w", p, err)
		}
		a.patterns = append(a.patterns, p)
	}
	return a, nil
}

// Allowed returns nil if resolvedPath, a path with its symlinks and '..'
// resolved already (filepath.EvalSymlinks), matches a pattern, else an
// error wrapping ErrNotAllowed. A glob's matches must pass it too.
func (a *AllowList) Allowed(resolvedPath string) error {
	if a == nil {
		return nil
	}
	if path.IsAbs(resolvedPath) && path.Clean(resolvedPath) == resolvedPath {
		for _, p := range a.patterns {
			if glob.Match(p, resolvedPath) {
				return nil
			}
		}
	}
	return fmt.Errorf("%s is %w (%s): refused", resolvedPath, ErrNotAllowed, a.raw)
}

// Check resolves p's symlinks and '..' and checks the real path. A path
// that does not exist is not refused here: nothing is opened.
func (a *AllowList) Check(p string) error {
	if a == nil {
		return nil
	}
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := a.Allowed(real); err != nil {
		if real != p {
			return fmt.Errorf("%s (the real path of %s) is %w (%s): refused", real, p, ErrNotAllowed, a.raw)
		}
		return err
	}
	return nil
}

// checkOpen checks the file f, opened for p, by the path the kernel holds
// for it: a symlink swapped between Check and the open is caught here.
func (a *AllowList) checkOpen(p string, f *os.File) error {
	if a == nil {
		return nil
	}
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return fmt.Errorf("cannot tell the real path of %s for allow_paths: %w", p, err)
	}
	if err := a.Allowed(real); err != nil {
		return fmt.Errorf("%s (the real path of %s) is %w (%s): refused", real, p, ErrNotAllowed, a.raw)
	}
	return nil
}

// open opens p with openFn once its real path is allowed, and checks the
// file opened again.
func (a *AllowList) open(p string, openFn func(string) (*os.File, fs.FileInfo, error)) (*os.File, fs.FileInfo, error) {
	if err := a.Check(p); err != nil {
		return nil, nil, err
	}
	f, fi, err := openFn(p)
	if err != nil {
		return nil, nil, err
	}
	if err := a.checkOpen(p, f); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// Refused returns the paths of the entries refused by allow_paths now.
func (m *Manager) Refused() []string {
	var out []string
	for _, t := range m.list() {
		t.stats.mu.Lock()
		if t.stats.refused {
			out = append(out, t.entry.Path)
		}
		t.stats.mu.Unlock()
	}
	return out
}
