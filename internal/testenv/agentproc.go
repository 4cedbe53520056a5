package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// AgentINI is the part of an agent's ini every harness sets: who it is,
// where it keeps its data, its servers. Write lays each harness's own keys
// over it.
type AgentINI struct {
	Host    string
	DataDir string
	Brokers []string
	Client  string // [kafka] client; "" leaves the agent's default
	Etcd    string // [etcd] endpoints, comma-separated
}

// Write writes the ini to path: c, then each overlay (ini text) laid over
// it in turn, a key of an overlay taking the place of the same key before.
func (c AgentINI) Write(path string, overlays ...string) error {
	client := ""
	if c.Client != "" {
		client = "client = " + c.Client + "\n"
	}
	text := fmt.Sprintf(`[agent]
host = %s
data_dir = %s
http_addr =
; the harnesses' files live in temp dirs, not /var/log
allow_paths = /**

[kafka]
brokers = %s
%s
[etcd]
endpoints = %s
`, c.Host, c.DataDir, strings.Join(c.Brokers, ","), client, c.Etcd)
	for _, o := range overlays {
		var err error
		if text, err = Overlay(text, o); err != nil {
			return fmt.Errorf("ini overlay %q: %w", o, err)
		}
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Proc is a child process (the agent binary, mostly) with its stdout and
// stderr in a log file.
type Proc struct {
	Name    string // the command's base name, in errors
	Cmd     *exec.Cmd
	LogPath string
	Started time.Time
	Ended   time.Time // set before Done closes

	group bool
	done  chan struct{}
	err   error
}

// ProcOptions says how a child runs.
type ProcOptions struct {
	Dir   string
	Env   []string // added to this process's environment
	Stdin *os.File
	// Wrap is a command the child runs under (setpriv ... as another user):
	// it must exec the child, so that signals reach it.
	Wrap []string
	// Group starts the child in its own process group (a Ctrl-C of the
	// terminal reaches the parent, which stops it in order) that is killed
	// with the parent (Pdeathsig); Stop and Kill then kill the group.
	Group bool
}

// StartProc starts name with args, its output going to logPath (created
// anew).
func StartProc(logPath string, o ProcOptions, name string, args ...string) (*Proc, error) {
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// The child has its own descriptor once started.
	defer out.Close()
	argv := append(append(append([]string(nil), o.Wrap...), name), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = out, out
	if o.Env != nil {
		cmd.Env = append(os.Environ(), o.Env...)
	}
	if o.Stdin != nil {
		cmd.Stdin = o.Stdin
	}
	if o.Group {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	p := &Proc{Name: filepath.Base(name), Cmd: cmd, LogPath: logPath, group: o.Group, done: make(chan struct{})}
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		p.Ended = time.Now()
		close(p.done)
	}()
	return p, nil
}

// StartAgent runs the agent binary bin with the ini at config.
func StartAgent(bin, config, logPath string, o ProcOptions) (*Proc, error) {
	return StartProc(logPath, o, bin, "-config", config)
}

// AgentStarted is what the agent logs once it runs: its readiness.
const AgentStarted = `msg="logagent started"`

// PID is the child's process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Done is closed once the child has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is Wait's result once Done is closed: nil for exit code 0.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// ExitCode is the child's exit code, -1 while it runs or if a signal ended
// it.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

// ErrNotStopped is wrapped by Stop's error when the child outlived the
// grace after SIGTERM and was killed.
var ErrNotStopped = errors.New("did not exit after SIGTERM; killed")

// Stop sends SIGTERM and waits up to grace for the exit, then kills the
// child (SIGKILL). It returns how long the stop took, and nil only if the
// child exited 0 within grace: else an error wrapping ErrNotStopped, or
// Wait's (*exec.ExitError). A child that had exited already returns Wait's
// result at once.
func (p *Proc) Stop(grace time.Duration) (time.Duration, error) {
	start := time.Now()
	if p.Exited() {
		return 0, p.err
	}
	p.Cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // exited meanwhile: Wait says how
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(grace):
	}
	p.Kill()
	return time.Since(start), fmt.Errorf("%s (pid %d) still running %s after SIGTERM: %w", p.Name, p.PID(), grace, ErrNotStopped)
}

// Kill is kill -9 (of the group with ProcOptions.Group) and waits for the
// exit.
func (p *Proc) Kill() {
	if p.group {
		syscall.Kill(-p.PID(), syscall.SIGKILL) //nolint:errcheck
	} else {
		p.Cmd.Process.Kill() //nolint:errcheck
	}
	<-p.done
}

// Log is the child's output so far.
func (p *Proc) Log() string {
	data, _ := os.ReadFile(p.LogPath)
	return string(data)
}

// ErrExited is wrapped by WaitLog's error when the child exits first.
var ErrExited = errors.New("exited")

// WaitLog waits until cond holds of the child's output. It fails when the
// child exits first (ErrExited) or within passes. The output is a file
// the child writes: it is read again every 50 ms.
func (p *Proc) WaitLog(within time.Duration, cond func(log string) bool) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond(p.Log()) {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s %w (%v)", p.Name, ErrExited, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not in its log after %s", p.Name, within)
		}
		select {
		case <-p.done:
		case <-tick.C:
		}
	}
}

// LineWith is the first line of log that holds every part ("" if none).
func LineWith(log string, parts ...string) string {
lines:
	for _, l := range strings.Split(log, "\n") {
		for _, part := range parts {
			if !strings.Contains(l, part) {
				continue lines
			}
		}
		return l
	}
	return ""
}
