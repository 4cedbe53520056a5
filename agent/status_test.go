package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
	"github.com/logagent/logagent/kafka"
	"github.com/logagent/logagent/taillog"
)

// statusBound is what the status in etcd may take, whatever the number of
// files: a fleet's statuses must fit etcd's request limit and its history.
const statusBound = 4096

// The status in etcd stays under the bound with 10,000 files, long errors
// and many refused topics, and keeps what an operator looks at first: the
// files in error, then the most behind, and the counts of all.
func TestStatusIsBounded(t *testing.T) {
	st := &fleet.Status{Host: "web-1", Version: "v1", Health: strings.Repeat("kafka: no broker reachable; ", 100),
		Config:     fleet.ConfigState{Revision: 7, LastError: strings.Repeat("x", 5000), Problems: make([]string, 300)},
		FileStates: map[string]int{}}
	for i := range 10000 {
		f := taillog.Status{Path: fmt.Sprintf("/var/log/service-%05d/application-name.log", i), Topic: "app_log",
			State: taillog.StateRunning, Committed: 1 << 40, Size: 1<<40 + int64(i), LagBytes: int64(i)}
		if i%1000 == 999 {
			f.State, f.LastError = taillog.StateError, "open "+f.Path+": "+strings.Repeat("permission denied ", 50)
		}
		st.Files = append(st.Files, f)
	}
	for i := range 50 {
		st.Topics = append(st.Topics, fleet.TopicStatus{Topic: fmt.Sprintf("topic-%d", i), Reason: "topic does not exist",
			Error: strings.Repeat("UNKNOWN_TOPIC_OR_PARTITION ", 40), Files: make([]string, 100)})
		st.TopicLimits = append(st.TopicLimits, kafka.TopicLimit{Topic: fmt.Sprintf("topic-%d", i), Problem: strings.Repeat("p", 300)})
	}
	st.SetFiles(st.Files)
	st.Bound()
	data, _ := json.Marshal(st)
	if len(data) > statusBound {
		t.Fatalf("status of 10,000 files is %d bytes, over %d:\n%s", len(data), statusBound, data)
	}
	if len(st.Files) < 3 || st.FilesOmitted != 10000-len(st.Files) || st.FilesTotal != 10000 {
		t.Fatalf("files listed %d, omitted %d, total %d", len(st.Files), st.FilesOmitted, st.FilesTotal)
	}
	for i, f := range st.Files {
		if f.State != taillog.StateError {
			t.Fatalf("file %d listed is %s; the files in error come first", i, f.State)
		}
	}
}

// The agent publishes the bounded status to etcd and the whole at /status.
func TestStatusKeyBoundedAndFullOverHTTP(t *testing.T) {
	h := newHarness(t, conf.ClientFranzGo)
	port, _ := testenv.FreePort()
	h.extra = fmt.Sprintf("[agent]\nhttp_addr = 127.0.0.1:%d\nlabels = role=web, dc=sh\n", port)
	h.start()
	const n = 300
	var es []etcd.Entry
	for i := range n {
		es = append(es, etcd.Entry{Path: filepath.Join(h.dir, fmt.Sprintf("logs/file-with-a-long-name-%04d.log", i)), Topic: "t"})
	}
	h.put(es...)
	var st fleet.Status
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/status", port), "lists every file", func(c int, b string) bool {
		return c == 200 && json.Unmarshal([]byte(b), &st) == nil && len(st.Files) == n && st.FileStates[taillog.StateWaiting] == n
	})
	var key fleet.Status
	waitFor(t, "the status key with every file counted", func() bool {
		resp, err := h.cli.Get(context.Background(), fleet.StatusKey(host))
		if err != nil || len(resp.Kvs) != 1 {
			return false
		}
		if len(resp.Kvs[0].Value) > statusBound {
			t.Fatalf("status key of %d files is %d bytes, over %d", n, len(resp.Kvs[0].Value), statusBound)
		}
		return json.Unmarshal(resp.Kvs[0].Value, &key) == nil && key.FilesTotal == n
	})
	if key.FileStates[taillog.StateWaiting] != n || len(key.Files) < 5 || key.FilesOmitted != n-len(key.Files) || key.Labels["role"] != "web" || key.Labels["dc"] != "sh" {
		t.Fatalf("status key: states %v, %d files listed, labels %v", key.FileStates, len(key.Files), key.Labels)
	}
}

// waitFor polls cond until it holds, for at most 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// check warns of an etcd that compacts nothing, and of one near its quota:
// past it etcd refuses every write, the fleet's collect configs too.
func TestCheckWarnsOfEtcdUpkeep(t *testing.T) {
	h := newHarness(t, conf.ClientFranzGo)
	compactionSeenAfter = 20
	defer func() { compactionSeenAfter = 10000 }()
	h.put(etcd.Entry{Path: filepath.Join(h.dir, "a.log"), Topic: "t"})
	for i := range 30 {
		if _, err := h.cli.Put(context.Background(), "/scratch", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	run := func() string {
		var b strings.Builder
		Check(context.Background(), h.config(), &b)
		return b.String()
	}
	if out := run(); !strings.Contains(out, "WARN etcd    etcd keeps its whole history") {
		t.Fatalf("no warning for an etcd that compacts nothing:\n%s", out)
	}
	resp, err := h.cli.Get(context.Background(), "/scratch")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.cli.Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if out := run(); strings.Contains(out, "WARN") {
		t.Fatalf("a warning for an etcd that compacts:\n%s", out)
	}
	if f := upkeepFindings(1800<<20, 0, 5, true); len(f) != 1 || !strings.Contains(f[0], "1800 MB of its 2048 MB quota (etcd's default") {
		t.Fatalf("near the default quota: %q", f)
	}
	if f := upkeepFindings(1800<<20, 8<<30, 5, true); len(f) != 0 {
		t.Fatalf("far from an 8 GB quota: %q", f)
	}
}
