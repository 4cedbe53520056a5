package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/logagent/logagent/agent"
	"github.com/logagent/logagent/internal/testenv"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "logagent-bin")
	if err != nil {
		panic(err)
	}
	if bin, err = testenv.BuildAgent(".", dir, "-X main.version=v9.9.9-test"); err != nil {
		os.RemoveAll(dir)
		panic(err)
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
	for _, tc := range []struct{ name, ini, want, cmd string }{
		{"unknown key", "[kafka]\nbrokers = x:1\nbrokerz = y\n[etcd]\nendpoints = e:1\n", "[kafka] brokerz: unknown key", ""},
		{"transfer unknown key", "[kafka]\nbrokers = x:1\n[opensearch]\nurls = http://o:9200\nreplica = 1\n[etcd]\nendpoints = e:1\n",
			"[opensearch] replica: unknown key", "transfer"},
		{"transfer given the agent's file", "[kafka]\nbrokers = x:1\n[etcd]\nendpoints = e:1\n", "[opensearch]: missing section", "transfer"},
		{"missing key", "[kafka]\n[etcd]\nendpoints = e:1\n", "[kafka] brokers: required", ""},
		{"bad value", "[kafka]\nbrokers = x:1\nrequired_acks = most\n[etcd]\nendpoints = e:1\n", `[kafka] required_acks: invalid value "most"`, ""},
		{"missing file", "", "no such file", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".ini")
			if tc.ini != "" {
				os.WriteFile(p, []byte(tc.ini), 0o644)
			}
			var stderr bytes.Buffer
			args := []string{"-config", p}
			if tc.cmd != "" {
				args = append(args, tc.cmd)
			}
			cmd := exec.Command(bin, args...)
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
	e, k := startServers(t, dir)
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

// The status key appears, is refreshed, and vanishes when the agent stops
// (lease revoked) and when it dies (lease expires within its TTL).
func TestStatusKeyLifecycle(t *testing.T) {
	dir := t.TempDir()
	e, k := startServers(t, dir)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	log := filepath.Join(dir, "s.log")
	cli.Put(context.Background(), "/logagent/h/collect_config", `[{"path": "`+log+`", "topic": "s"}]`)
	cfg, _ := testenv.WriteConfig(dir, "h", k.Addrs, e.Endpoint, "")

	status := func() map[string]any {
		resp, err := cli.Get(context.Background(), "/logagent/h/status")
		if err != nil || len(resp.Kvs) == 0 {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil {
			t.Fatalf("status is not JSON: %q", resp.Kvs[0].Value)
		}
		if resp.Kvs[0].Lease == 0 {
			t.Fatal("status key is not bound to a lease")
		}
		return m
	}
	waitFor := func(what string, within time.Duration, ok func(map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			if m := status(); ok(m) {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("status never %s within %s; last %v", what, within, status())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, stop := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(stop.String(), func(t *testing.T) {
			os.Remove(log) // it is created below, each time
			cmd := exec.Command(bin, "-config", cfg)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			// The first publication may catch the tailer still "starting";
			// it must reach "waiting-for-file" (the file does not exist).
			m := waitFor("waiting for the file", 10*time.Second, func(m map[string]any) bool {
				files, _ := m["files"].([]any)
				return len(files) == 1 && files[0].(map[string]any)["state"] == "waiting-for-file"
			})
			if m["version"] != "v9.9.9-test" || m["host"] != "h" {
				t.Fatalf("status %v", m)
			}
			// A change of state is published within the status interval.
			if err := os.WriteFile(log, []byte("x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			waitFor("running", 10*time.Second, func(m map[string]any) bool {
				files, _ := m["files"].([]any)
				return len(files) == 1 && files[0].(map[string]any)["state"] == "running"
			})
			start := time.Now()
			cmd.Process.Signal(stop)
			cmd.Wait()
			within := time.Second
			if stop == syscall.SIGKILL {
				ttl, _, _ := agent.StatusTimes()
				within = ttl + 2*time.Second // the lease expires
			}
			waitFor("gone", within, func(m map[string]any) bool { return m == nil })
			t.Logf("status gone %s after %s", time.Since(start).Round(10*time.Millisecond), stop)
		})
	}
}

// The shipped systemd unit passes systemd-analyze verify without a warning.
func TestSystemdUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile("deploy/logagent.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's binary exists: point it at the test build.
	p := filepath.Join(t.TempDir(), "logagent.service")
	os.WriteFile(p, bytes.ReplaceAll(unit, []byte("/usr/local/bin/logagent"), []byte(bin)), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Restart=on-failure", "StateDirectory=logagent", "ProtectSystem=strict", "NoNewPrivileges=yes", "User=logagent\n",
		"SupplementaryGroups=adm", "ReadWritePaths=/var/lib/logagent\n", "CapabilityBoundingSet=\n", "LimitNOFILE=", "ProtectHome=", "PrivateTmp=yes"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("unit lacks %s", want)
		}
	}
	// The agent must start with etcd or Kafka down: nothing that checks
	// them may gate the start.
	if bytes.Contains(unit, []byte("\nDynamicUser=")) {
		t.Error("unit uses DynamicUser: its user cannot own password files")
	}
	if bytes.Contains(unit, []byte("\nExecStartPre=")) {
		t.Error("unit gates the start with ExecStartPre")
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	down, _ := testenv.FreePort()
	cfg, _ := testenv.WriteConfig(dir, "h", []string{"127.0.0.1:" + strconv.Itoa(down)}, "127.0.0.1:"+strconv.Itoa(down), "")
	out, err := exec.Command(bin, "check", "-config", cfg).CombinedOutput()
	if code := exitCode(err); code != 1 || !bytes.Contains(out, []byte("FAIL etcd")) || !bytes.Contains(out, []byte("FAIL kafka")) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if err := exec.Command(bin, "check", "-config", filepath.Join(dir, "missing.ini")).Run(); exitCode(err) != 2 {
		t.Fatalf("missing config: exit %d, want 2", exitCode(err))
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// startServers runs an embedded etcd and kfake for the test's duration.
func startServers(t *testing.T, dir string) (*testenv.Etcd, *testenv.Kafka) {
	t.Helper()
	e, err := testenv.StartEtcd(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	k, err := testenv.StartKafka(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return e, k
}

// make install copies what make build made and builds nothing; it installs
// the example as the config only when there is none; uninstall keeps the
// config.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	root := t.TempDir()
	mk := func(target string, vars ...string) (string, error) {
		args := append([]string{"-s", target, "DESTDIR=" + root, "PREFIX=/usr/local"}, vars...)
		out, err := exec.Command("make", args...).CombinedOutput()
		return string(out), err
	}
	if out, err := mk("install", "BIN="+filepath.Join(root, "nope")); err == nil || !strings.Contains(out, "run 'make build' first") {
		t.Fatalf("install without a built binary: %v\n%s", err, out)
	}
	if out, err := mk("install", "BIN="+bin); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	cfg := filepath.Join(root, "etc/logagent/config.ini")
	example, _ := os.ReadFile("conf/config.ini")
	if got, err := os.ReadFile(cfg); err != nil || !bytes.Equal(got, example) {
		t.Fatalf("config.ini not installed from the example: %v", err)
	}
	for _, p := range []string{"usr/local/bin/logagent", "etc/systemd/system/logagent.service", "etc/logagent/config.ini.example", "usr/local/share/doc/logagent/README.md"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	// A second install keeps the operator's config.
	os.WriteFile(cfg, []byte("[kafka]\nbrokers = k:9092\n"), 0o640)
	if out, err := mk("install", "BIN="+bin); err != nil || !strings.Contains(out, "kept the existing") {
		t.Fatalf("second install: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(cfg); string(got) != "[kafka]\nbrokers = k:9092\n" {
		t.Fatalf("second install overwrote the config: %q", got)
	}
	if out, err := mk("uninstall"); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	for _, p := range []string{"usr/local/bin/logagent", "etc/systemd/system/logagent.service", "usr/local/share/doc/logagent"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("uninstall left %s", p)
		}
	}
	if _, err := os.Stat(cfg); err != nil {
		t.Errorf("uninstall removed the config: %v", err)
	}
}
