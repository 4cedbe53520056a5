package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/logagent/logagent/internal/testenv"
)

// Set by TestMain when LOGAGENT_E2E=1.
var (
	enabled bool
	root    string // repository root (holds go.mod and scripts/)
	bin     string // the agent built from root
)

func TestMain(m *testing.M) {
	enabled = os.Getenv("LOGAGENT_E2E") == "1"
	if !enabled {
		os.Exit(m.Run()) // every test skips
	}
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// setup installs the servers (scripts/deps.sh, idempotent), builds the
// agent once, runs the tests and removes the build.
func setup(m *testing.M) (int, error) {
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	// go test runs in the package directory, e2e/ under the root.
	root = filepath.Dir(wd)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return 0, fmt.Errorf("repository root not found above %s: %w", wd, err)
	}

	start := time.Now()
	deps := exec.Command("bash", filepath.Join(root, "scripts", "deps.sh"))
	deps.Dir = root
	deps.Stdout, deps.Stderr = os.Stderr, os.Stderr
	if err := deps.Run(); err != nil {
		return 0, fmt.Errorf("scripts/deps.sh: %w", err)
	}

	tmp, err := os.MkdirTemp("", "logagent-e2e-bin")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	if bin, err = testenv.BuildAgent(root, tmp, ""); err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "e2e: deps and build ready in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run(), nil
}

// needE2E skips t unless the suite is enabled.
func needE2E(t *testing.T) {
	t.Helper()
	if !enabled {
		t.Skip("end-to-end test against real Kafka and etcd: set LOGAGENT_E2E=1 (make e2e)")
	}
}

// clients are the two producer backends every relevant test runs against.
var clients = []string{"sarama", "franz-go"}
