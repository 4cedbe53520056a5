package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
)

// Two agents configured with one host would ship every line twice: the
// second refuses to run, naming the first, which goes on.
func TestSecondAgentWithTheSameHostRefuses(t *testing.T) {
	h := newHarness(t, conf.ClientFranzGo)
	h.start()
	// The first holds the status key.
	var st fleet.Status
	deadline := time.Now().Add(10 * time.Second)
	for st.Owner.Instance == "" {
		if time.Now().After(deadline) {
			t.Fatal("the first agent's status key did not appear")
		}
		if resp, err := h.cli.Get(context.Background(), fleet.StatusKey(host)); err == nil && len(resp.Kvs) == 1 {
			json.Unmarshal(resp.Kvs[0].Value, &st)
		}
		time.Sleep(20 * time.Millisecond)
	}

	cfg := h.config()
	cfg.Agent.DataDir = filepath.Join(h.dir, "second")
	b, err := New(cfg, testLogger(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	var taken *etcd.HostTakenError
	select {
	case err := <-done:
		if !errors.As(err, &taken) || taken.Other.Instance != st.Owner.Instance || taken.Other.PID != os.Getpid() {
			t.Fatalf("second agent's Run: %v, want a HostTakenError naming the first (%+v)", err, st.Owner)
		}
	case <-time.After(2 * (statusTTL + statusInterval)): // it waits that long for the first's lease
		t.Fatal("the second agent with the same host is still running")
	}
	if len(b.mgr.States()) > 0 {
		t.Fatalf("the refused agent followed files: %+v", b.mgr.States())
	}
	// The first still holds its key.
	resp, err := h.cli.Get(context.Background(), fleet.StatusKey(host))
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), st.Owner.Instance) {
		t.Fatalf("the first agent's status key after the refusal: %v %v", err, resp)
	}
}

// One data_dir, two agents: the second cannot start (their positions would
// overwrite each other).
func TestDataDirIsLocked(t *testing.T) {
	h := newHarness(t, conf.ClientFranzGo)
	a, err := New(h.config(), testLogger(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(h.config(), testLogger(t), "test")
	if err == nil || !strings.Contains(err.Error(), "is in use by another logagent process") {
		t.Fatalf("second New on the same data_dir: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Released once the first stopped.
	c, err := New(h.config(), testLogger(t), "test")
	if err != nil {
		t.Fatalf("New after the first stopped: %v", err)
	}
	c.unlock()
}

// An empty host is this machine's name by default (stable across DHCP
// leases), its outbound IP with host_from = ip.
func TestResolveHost(t *testing.T) {
	name, _ := os.Hostname()
	if got, err := resolveHost(conf.Agent{HostFrom: conf.HostFromName}); err != nil || got != name {
		t.Fatalf("host_from = hostname: %q, %v; want %q", got, err, name)
	}
	if got, err := resolveHost(conf.Agent{Host: "web-1", HostFrom: conf.HostFromIP}); err != nil || got != "web-1" {
		t.Fatalf("a set host: %q, %v", got, err)
	}
	got, err := resolveHost(conf.Agent{HostFrom: conf.HostFromIP})
	if err == nil && net.ParseIP(got) == nil {
		t.Fatalf("host_from = ip: %q is not an IP", got)
	}
}
