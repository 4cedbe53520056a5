package taillog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAllowListMatch(t *testing.T) {
	a, err := NewAllowList([]string{"/var/log/**", "/srv/*/logs/**", "/opt/app/current.log"})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/var/log/syslog":              true,
		"/var/log/nginx/access.log":    true,
		"/var/log":                     true,
		"/var/logs/x":                  false,
		"/srv/web/logs/a.log":          true,
		"/srv/web/logs/2026/12/a.log":  true,
		"/srv/web/x/logs/a.log":        false,
		"/srv/logs/a.log":              false,
		"/opt/app/current.log":         true,
		"/opt/app/current.log.1":       false,
		"/etc/shadow":                  false,
		"/var/log/../../etc/shadow":    false, // not resolved: refused
		"var/log/syslog":               false,
		"/var/log/./x":                 false,
		"/var/log/nginx/../../../etc/": false,
	} {
		if err := a.Allowed(p); (err == nil) != want {
			t.Errorf("Allowed(%q) = %v, want allowed %v", p, err, want)
		}
	}
	if err := a.Allowed("/etc/shadow"); !errors.Is(err, ErrNotAllowed) ||
		err.Error() != "/etc/shadow is outside [agent] allow_paths (/var/log/**, /srv/*/logs/**, /opt/app/current.log): refused" {
		t.Errorf("error %q", err)
	}
	var none *AllowList
	if none.Allowed("/etc/shadow") != nil {
		t.Error("a nil list refuses")
	}
}

// TestAllowListRefuses: a file outside allow_paths, a symlink inside
// pointing out, '..' out of the allowed directory and a rotation that
// puts a symlink out in the path's place are refused (state error, the
// reason as last error, Refused); the allowed file beside them ships.
func TestAllowListRefuses(t *testing.T) {
	opts := testOpts()
	f := newFixture(t, opts)
	logs := filepath.Join(f.dir, "logs")
	os.Mkdir(logs, 0o755)
	real, err := filepath.EvalSymlinks(logs)
	if err != nil {
		t.Fatal(err)
	}
	if f.m.opts.Allow, err = NewAllowList([]string{real + "/**"}); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(f.dir, "shadow")
	write(t, secret, "root:secret-hash\n")
	secretReal, _ := filepath.EvalSymlinks(secret)
	link := filepath.Join(logs, "link.log")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	dotdot := logs + "/../shadow"
	good := filepath.Join(logs, "good.log")
	rotated := filepath.Join(logs, "rotated.log")
	write(t, rotated, "")
	f.m.Reconcile([]Entry{{Path: good, Topic: "t"}, {Path: secret, Topic: "t", ReadFrom: "beginning"},
		{Path: link, Topic: "t", ReadFrom: "beginning"}, {Path: dotdot, Topic: "t", ReadFrom: "beginning"},
		{Path: rotated, Topic: "r", ReadFrom: "beginning"}})
	want := map[string]string{
		secret: fmt.Sprintf("%s is outside [agent] allow_paths (%s/**): refused", secretReal, real),
		link:   fmt.Sprintf("%s (the real path of %s) is outside [agent] allow_paths (%s/**): refused", secretReal, link, real),
		dotdot: fmt.Sprintf("%s (the real path of %s) is outside [agent] allow_paths (%s/**): refused", secretReal, dotdot, real),
	}
	for p, msg := range want {
		if s := f.waitState(t, p, StateError); s.LastError != msg {
			t.Errorf("%s: error %q, want %q", p, s.LastError, msg)
		}
	}
	f.waitState(t, rotated, StateRunning)
	write(t, good, numbered(0, 2))
	write(t, rotated, "before\n")
	f.col.wait(t, 3)
	// The rotated file's new name is a symlink out: refused at the reopen.
	os.Rename(rotated, rotated+".1")
	os.Symlink(secret, rotated)
	f.waitState(t, rotated, StateError)
	write(t, good, numbered(2, 4))
	lines := f.col.wait(t, 5)
	var goodLines []got
	for _, l := range lines {
		if strings.Contains(l.data, "secret") {
			t.Fatalf("a refused file was read: %q", l.data)
		}
		if l.data != "before" {
			goodLines = append(goodLines, l)
		}
	}
	checkSequence(t, goodLines, 4)
	refused := f.m.Refused()
	slices.Sort(refused)
	wantRefused := []string{secret, link, dotdot, rotated}
	slices.Sort(wantRefused)
	if !slices.Equal(refused, wantRefused) {
		t.Errorf("Refused() = %q, want %q", refused, wantRefused)
	}
}
