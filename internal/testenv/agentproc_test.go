package testenv

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/ini.v1"
)

// sh runs script under sh as a Proc whose log is in a temp dir, and waits
// until it has said "ready" (its traps are set).
func sh(t *testing.T, o ProcOptions, script string) *Proc {
	t.Helper()
	p, err := StartProc(filepath.Join(t.TempDir(), "out.log"), o, "sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.Exited() {
			p.Kill()
		}
	})
	if err := p.WaitLog(10*time.Second, func(log string) bool { return strings.Contains(log, "ready") }); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProcStop(t *testing.T) {
	// Exits 0 on SIGTERM.
	p := sh(t, ProcOptions{}, `trap 'kill $!; exit 0' TERM; echo ready; sleep 60 & wait`)
	if _, err := p.Stop(10 * time.Second); err != nil || p.ExitCode() != 0 {
		t.Fatalf("stop: %v, exit code %d", err, p.ExitCode())
	}
	// Exits 3 on SIGTERM: Wait's error.
	p = sh(t, ProcOptions{}, `trap 'kill $!; exit 3' TERM; echo ready; sleep 60 & wait`)
	var ee *exec.ExitError
	if _, err := p.Stop(10 * time.Second); !errors.As(err, &ee) || p.ExitCode() != 3 {
		t.Fatalf("stop: %v, exit code %d; want exit status 3", err, p.ExitCode())
	}
	// Ignores SIGTERM: killed after the grace, and said so.
	for _, group := range []bool{false, true} {
		p = sh(t, ProcOptions{Group: group}, `trap '' TERM; echo ready; exec sleep 60`)
		if _, err := p.Stop(100 * time.Millisecond); !errors.Is(err, ErrNotStopped) || !p.Exited() {
			t.Fatalf("group %v: stop of a process that ignores SIGTERM: %v (exited %v)", group, err, p.Exited())
		}
	}
	// Stopped after it exited: its exit, at once.
	p = sh(t, ProcOptions{}, `echo ready`)
	<-p.Done()
	if _, err := p.Stop(time.Hour); err != nil {
		t.Fatalf("stop after exit 0: %v", err)
	}
}

func TestProcKillAndWaitLog(t *testing.T) {
	dir := t.TempDir()
	p := sh(t, ProcOptions{Dir: dir, Env: []string{"HARNESS_X=42"}}, `echo ready dir=$(pwd) x=$HARNESS_X; exec sleep 60`)
	if l := LineWith(p.Log(), "ready", "x=42"); !strings.Contains(l, "dir="+dir) {
		t.Errorf("line %q: want the dir %s and the environment", l, dir)
	}
	p.Kill()
	if !p.Exited() || p.ExitCode() != -1 {
		t.Fatalf("after kill: exited %v, code %d", p.Exited(), p.ExitCode())
	}
	// A log line that never comes: the exit ends the wait.
	p = sh(t, ProcOptions{}, `echo ready; exit 0`)
	if err := p.WaitLog(time.Hour, func(log string) bool { return strings.Contains(log, "never") }); !errors.Is(err, ErrExited) {
		t.Fatalf("wait on an exited process: %v", err)
	}
}

func TestAgentINIOverlays(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.ini")
	c := AgentINI{Host: "h", DataDir: "/d", Brokers: []string{"k1:9092", "k2:9092"}, Client: "franz-go", Etcd: "e:2379"}
	if err := c.Write(path, "[agent]\nshutdown_timeout = 10s\nhttp_addr = 127.0.0.1:1\n", "[agent]\nshutdown_timeout = 1s\n"); err != nil {
		t.Fatal(err)
	}
	f, err := ini.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"agent.host": "h", "agent.data_dir": "/d", "agent.http_addr": "127.0.0.1:1",
		"agent.allow_paths": "/**", "agent.shutdown_timeout": "1s", "kafka.brokers": "k1:9092,k2:9092",
		"kafka.client": "franz-go", "etcd.endpoints": "e:2379"} {
		sec, name, _ := strings.Cut(key, ".")
		if got := f.Section(sec).Key(name).String(); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
}
