package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/logagent/logagent/internal/testenv"
)

// children are the processes started and not yet reaped, killed by
// killChildren on any exit path (error, signal, panic).
var children sync.Map // pid -> *proc

// proc is one child process whose resource usage is measured: a
// testenv.Proc, whose exit it records here for the workloads.
type proc struct {
	p       *testenv.Proc
	name    string
	cmd     *exec.Cmd
	start   time.Time
	end     time.Time
	done    chan struct{} // closed once err and end are set
	err     error
	logPath string
	hwmKiB  atomic.Int64 // peak of VmHWM seen while it ran
	anonKiB atomic.Int64 // peak of RssAnon seen (RSS less the mapped binary and libraries)
}

// startProc starts name with args, its stdout and stderr going to logPath
// (and stdin from stdin, if not nil). The child gets its own process group
// (Ctrl-C reaches the bench, which stops it in order) and SIGKILL when the
// bench dies.
func startProc(logPath string, stdin *os.File, name string, args ...string) (*proc, error) {
	return startProcEnv(logPath, stdin, nil, name, args...)
}

// startProcEnv is startProc with env added to the bench's environment.
func startProcEnv(logPath string, stdin *os.File, env []string, name string, args ...string) (*proc, error) {
	tp, err := testenv.StartProc(logPath, testenv.ProcOptions{Env: env, Stdin: stdin, Group: true}, name, args...)
	if err != nil {
		return nil, err
	}
	p := &proc{p: tp, name: name, cmd: tp.Cmd, start: tp.Started, done: make(chan struct{}), logPath: logPath}
	children.Store(p.pid(), p)
	go p.sampleHWM()
	go func() {
		p.err = tp.Err()
		p.end = tp.Ended
		children.Delete(p.pid())
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.p.PID() }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs the process group.
func (p *proc) stop(grace time.Duration) error {
	_, err := p.p.Stop(grace)
	<-p.done
	if errors.Is(err, testenv.ErrNotStopped) {
		return fmt.Errorf("%s did not stop within %s after SIGTERM; killed", p.name, grace)
	}
	return err
}

// usage returns the child's user+system CPU time (rusage) and peak RSS
// (KiB) once it has exited.
//
// The peak RSS is VmHWM, sampled every 10 ms while the child runs, and not
// rusage's maxrss: Go starts a child with vfork (CLONE_VM), and on execve
// Linux folds the high-water mark of the mm being left, the bench's own, into
// the child's maxrss, so that maxrss would report the bench's RSS (kfake and
// its data) for every small child. VmHWM belongs to the child's own mm.
func (p *proc) usage() (cpu time.Duration, peakRSSKiB int64) {
	if p.cmd.ProcessState == nil {
		return 0, 0
	}
	cpu = p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return cpu, p.hwmKiB.Load()
}

func (p *proc) sampleHWM() {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	path := fmt.Sprintf("/proc/%d/status", p.pid())
	for {
		if v, err := statusNumbers(path, "VmHWM:", "RssAnon:"); err == nil {
			if v[0] > p.hwmKiB.Load() {
				p.hwmKiB.Store(v[0])
			}
			if v[1] > p.anonKiB.Load() {
				p.anonKiB.Store(v[1])
			}
		}
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

// logTail returns the last n lines of the child's output.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func killChildren() {
	children.Range(func(k, v any) bool {
		p := v.(*proc)
		syscall.Kill(-p.pid(), syscall.SIGKILL) //nolint:errcheck
		return true
	})
	// Give the reapers a moment so that nothing is left as a zombie.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		empty := true
		children.Range(func(any, any) bool { empty = false; return false })
		if empty {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procCPU reads utime+stime of a running process from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after "(comm) ": state is field 3; utime, stime are 14, 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ: 100 on every Linux architecture Go supports here
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// procSwitches sums the context switches (voluntary and not) of every
// thread of a running process, from /proc/PID/task/*/status: each is a
// time a thread went to sleep or was put off its core, the cost a quiet
// agent pays most (a thread that exits takes its count with it; Go's
// threads seldom do).
func procSwitches(pid int) (int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		v, err := statusNumbers(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()),
			"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")
		if err != nil {
			continue // the thread has just exited
		}
		sum += v[0] + v[1]
	}
	return sum, nil
}

// statusNumbers reads a /proc/PID/status file once and returns the number
// of each "Name:  N" or "Name:  N kB" field named, in order.
func statusNumbers(path string, fields ...string) ([]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v := make([]int64, len(fields))
	found := 0
	for _, l := range strings.Split(string(b), "\n") {
		for i, field := range fields {
			if !strings.HasPrefix(l, field) {
				continue
			}
			if f := strings.Fields(l); len(f) >= 2 {
				if v[i], err = strconv.ParseInt(f[1], 10, 64); err != nil {
					return nil, fmt.Errorf("%s in %s: %w", field, path, err)
				}
				found++
			}
		}
	}
	if found < len(fields) {
		return nil, fmt.Errorf("not every one of %v in %s", fields, path)
	}
	return v, nil
}

// selfCPU is the bench process's own CPU so far (kfake runs here).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time all processes of the machine used so far
// (/proc/stat: user+nice+system+irq+softirq+steal), to tell how much other
// work ran during a measurement.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
