package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/internal/testenv"
)

// `logagent transfer` publishes its leased status key and, on SIGTERM,
// stops (here while OpenSearch is unreachable and the template install is
// being retried), exits 0 and removes the key.
func TestTransferSIGTERM(t *testing.T) {
	dir := t.TempDir()
	e, k := startServers(t, dir)
	down, _ := testenv.FreePort()
	cfg := filepath.Join(dir, "transfer.ini")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[transfer]\ninstance = tr-1\ndata_dir = %s\nhttp_addr =\n[kafka]\nbrokers = %s\n[opensearch]\nurls = http://127.0.0.1:%d\n[etcd]\nendpoints = %s\n",
		filepath.Join(dir, "data"), strings.Join(k.Addrs, ","), down, e.Endpoint)), 0o644)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cli.Put(context.Background(), "/logtransfer/config", `[{"topic": "web_log", "index": "logs-web"}]`)

	// A file, not a buffer: the test reads it while the process writes.
	logPath := filepath.Join(dir, "transfer.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logText := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "transfer", "-config", cfg)
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	key := "/logtransfer/tr-1/status"
	for {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			t.Fatalf("status key %s never appeared: %v\n%s", key, err, logText())
		}
		if len(resp.Kvs) == 1 && strings.Contains(logText(), "cannot install the index template") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logText())
	}
	if !strings.Contains(logText(), "transfer stopped") {
		t.Errorf("no clean stop in the log:\n%s", logText())
	}
	if resp, _ := cli.Get(context.Background(), key); len(resp.Kvs) != 0 {
		t.Errorf("status key still there after the stop: %s", resp.Kvs[0].Value)
	}
}
