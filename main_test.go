package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logagent/logagent/internal/testenv"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "logagent-bin")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "logagent")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(bin, "-version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "logagent v9.9.9-test" {
		t.Fatalf("-version = %q, %v", out, err)
	}
}

// A bad config: exit 2, one line naming the file, section and key, and
// nothing started.
func TestConfigErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, ini, want string }{
		{"unknown key", "[kafka]\nbrokers = x:1\nbrokerz = y\n[etcd]\nendpoints = e:1\n", "[kafka] brokerz: unknown key"},
		{"missing key", "[kafka]\n[etcd]\nendpoints = e:1\n", "[kafka] brokers: required"},
		{"bad value", "[kafka]\nbrokers = x:1\nrequired_acks = most\n[etcd]\nendpoints = e:1\n", `[kafka] required_acks: invalid value "most"`},
		{"missing file", "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".ini")
			if tc.ini != "" {
				os.WriteFile(p, []byte(tc.ini), 0o644)
			}
			var stderr bytes.Buffer
			cmd := exec.Command(bin, "-config", p)
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Fatalf("exit %d (%v), want 2; stderr %q", code, err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], p+": ") || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("stderr = %q, want one line with %q and %q", stderr.String(), p, tc.want)
			}
		})
	}
}

// SIGTERM: the agent stops within its bound and exits 0, with Kafka and
// etcd up or down.
func TestSIGTERMExitsZero(t *testing.T) {
	dir := t.TempDir()
	e, err := testenv.StartEtcd(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	k, err := testenv.StartKafka(0)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	down, _ := testenv.FreePort()
	for _, tc := range []struct {
		name         string
		brokers      []string
		etcdEndpoint string
	}{
		{"servers up", k.Addrs, e.Endpoint},
		{"servers down", []string{"127.0.0.1:" + strconv.Itoa(down)}, "127.0.0.1:" + strconv.Itoa(down)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			cfg, err := testenv.WriteConfig(d, "h", tc.brokers, tc.etcdEndpoint, "")
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-config", cfg)
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			start := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			err = cmd.Wait()
			if err != nil || time.Since(start) > 10*time.Second {
				t.Fatalf("exit after %s: %v\n%s", time.Since(start), err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "logagent stopped") {
				t.Fatalf("no clean stop in the log:\n%s", stderr.String())
			}
		})
	}
}
