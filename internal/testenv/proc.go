package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// BuildAgent builds the logagent binary from the repository root into
// dir and returns its path; ldflags may be empty.
func BuildAgent(root, dir, ldflags string) (string, error) {
	bin := filepath.Join(dir, "logagent")
	args := []string{"build", "-o", bin}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

var (
	portsMu sync.Mutex
	taken   = map[int]bool{} // handed out by this process, free or not
)

// LowPorts returns the first of n consecutive TCP ports on 127.0.0.1 that
// are free now, below Linux's ephemeral range (32768+): a server stopped
// and started again on one must not find it taken by an outgoing
// connection (or by a client's reconnect, which can connect a socket to
// itself). A port is handed out once per process.
func LowPorts(n int) (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
next:
	for try := 0; try < 500; try++ {
		base := 20000 + rand.IntN(12000-n)
		for p := base; p < base+n; p++ {
			if taken[p] {
				continue next
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				continue next
			}
			l.Close()
		}
		for p := base; p < base+n; p++ {
			taken[p] = true
		}
		return base, nil
	}
	return 0, fmt.Errorf("no %d consecutive free ports found", n)
}

// LastLines is the end of a log for a failure message: its last n lines,
// and how many came before.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
