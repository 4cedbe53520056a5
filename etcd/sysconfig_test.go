package etcd

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/logagent/logagent/fleet"
)

func TestParseSysConfig(t *testing.T) {
	all := SysCollectors
	for _, tc := range []struct {
		value string
		want  *SysConfig // nil with err "": off
		err   string
	}{
		{``, nil, ""},
		{"  \n", nil, ""},
		{`{"topic": "sys_metrics", "interval": "10s"}`, &SysConfig{Topic: "sys_metrics", Interval: 10 * time.Second, Collectors: all, Buffer: time.Hour}, ""},
		{`{"topic": "m", "interval": "1m", "collectors": ["network", "cpu"], "buffer": "2h"}`,
			&SysConfig{Topic: "m", Interval: time.Minute, Collectors: []string{"network", "cpu"}, Buffer: 2 * time.Hour}, ""},
		{`{not json`, nil, "not a sys config"},
		{`[{"topic": "m", "interval": "10s"}]`, nil, "not a JSON object: expected"},
		{`null`, nil, `"topic" is missing`},
		{`{"interval": "10s"}`, nil, `"topic" is missing`},
		{`{"topic": "m"}`, nil, `"interval" is missing`},
		{`{"topic": "a b", "interval": "10s"}`, nil, "not a valid Kafka topic name"},
		{`{"topic": "m", "interval": 10}`, nil, `field "interval" must be a string`},
		{`{"topic": "m", "interval": "ten"}`, nil, `"interval": "ten" is not a duration`},
		{`{"topic": "m", "interval": "100ms"}`, nil, "out of range (1s to 1h0m0s)"},
		{`{"topic": "m", "interval": "10s", "buffer": "5s"}`, nil, `"buffer": 5s is out of range`},
		{`{"topic": "m", "interval": "10s", "collectors": []}`, nil, `"collectors" is empty`},
		{`{"topic": "m", "interval": "10s", "collectors": ["gpu"]}`, nil, `unknown collector "gpu"`},
		{`{"topic": "m", "interval": "10s", "collectors": ["cpu", "cpu"]}`, nil, `"cpu" is listed twice`},
		{`{"topic": "m", "interval": "10s", "intervall": "5s"}`, nil, `unknown field "intervall"`},
		{`{"topic": "m", "interval": "10s"} {}`, nil, "data after it"},
	} {
		got, err := ParseSysConfig([]byte(tc.value))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err = %v, want one containing %q", tc.value, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.value, err)
		case tc.err == "" && !reflect.DeepEqual(got, tc.want):
			t.Errorf("%s: got %+v, want %+v", tc.value, got, tc.want)
		}
	}
	if n := (&SysConfig{Interval: 10 * time.Second, Buffer: time.Hour}).BufferSamples(); n != 360 {
		t.Errorf("an hour of 10 s samples is %d samples, want 360", n)
	}
}

// runSys runs a sys source until the test ends; its values arrive on the
// channel returned.
func runSys(t *testing.T, f *fixture, timeout time.Duration) (*Follower[*SysConfig], <-chan *SysConfig, *logSink) {
	t.Helper()
	logs := &logSink{t: t, changed: make(chan struct{}, 1)}
	src := NewSysSource(Ready(f.cli), "h1", f.dataDir, timeout, Hooks{}, slog.New(slog.NewTextHandler(logs, nil)))
	got := make(chan *SysConfig, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx, func(c *SysConfig) { got <- c }) }()
	t.Cleanup(func() { cancel(); <-done })
	return src, got, logs
}

func nextSys(t *testing.T, ch <-chan *SysConfig) *SysConfig {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(waitFor):
		t.Fatalf("no sys config applied within %v", waitFor)
		return nil
	}
}

// TestSysSource: the sys_config key is followed as the collect config is
// (same machinery): absent is off, a put applies, a change applies, a
// malformed value keeps the last good one (reported in State), a delete is
// off again, and the last good value is cached for a start without etcd.
func TestSysSource(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := fleet.SysConfigKey("h1")
	src, got, logs := runSys(t, f, 2*time.Second)
	if c := nextSys(t, got); c != nil {
		t.Fatalf("absent key: applied %+v, want nil (off)", c)
	}
	logs.wait(t, "no sys config in etcd", "the Sys Agent is off")

	put(t, f.cli, key, `{"topic": "sys_metrics", "interval": "10s"}`)
	if c := nextSys(t, got); c == nil || c.Topic != "sys_metrics" || c.Interval != 10*time.Second || len(c.Collectors) != 6 {
		t.Fatalf("put: applied %+v", c)
	}
	goodRev := put(t, f.cli, key, `{"topic": "sys2", "interval": "2s", "collectors": ["cpu"]}`)
	if c := nextSys(t, got); c == nil || c.Topic != "sys2" || c.Interval != 2*time.Second || !reflect.DeepEqual(c.Collectors, []string{"cpu"}) {
		t.Fatalf("change: applied %+v", c)
	}
	put(t, f.cli, key, `{"topic": "sys3", "interval": "soon"}`)
	logs.wait(t, "sys config rejected", "keeping the last good config")
	if st := src.State(); st.Revision != goodRev || !strings.Contains(st.LastError, `"soon" is not a duration`) {
		t.Fatalf("State after a malformed value = %+v, want revision %d and the error", st, goodRev)
	}
	cache := filepath.Join(f.dataDir, "sys_config.json")
	if b, _ := os.ReadFile(cache); !strings.Contains(string(b), `"sys2"`) {
		t.Fatalf("cache = %q, want the last good value", b)
	}

	if _, err := f.cli.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if c := nextSys(t, got); c != nil {
		t.Fatalf("delete: applied %+v, want nil (off)", c)
	}
	if st := src.State(); st.LastError != "" {
		t.Fatalf("State after delete = %+v, want no error", st)
	}
	if b, err := os.ReadFile(cache); err != nil || len(b) != 0 {
		t.Fatalf("cache after delete = %q, %v; want empty (off)", b, err)
	}
}

// TestSysSourceStartsOnCache: with etcd unreachable the last good value
// cached in data_dir runs.
func TestSysSourceStartsOnCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.dataDir, "sys_config.json"), []byte(`{"topic": "cached", "interval": "5s"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f.etcd.Close()
	_, got, logs := runSys(t, f, 200*time.Millisecond)
	if c := nextSys(t, got); c == nil || c.Topic != "cached" {
		t.Fatalf("applied %+v, want the cached config", c)
	}
	logs.wait(t, "running on the cached sys config")
}
