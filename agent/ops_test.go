package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitHTTP polls url until check accepts the answer.
func waitHTTP(t *testing.T, url string, what string, check func(int, string) bool) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := get(t, url)
		if check(code, body) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never %s; last answer %d %q", url, what, code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMetricsAndHealthz(t *testing.T) {
	forEachClient(t, func(t *testing.T, h *harness) {
		port, _ := testenv.FreePort()
		h.extra = fmt.Sprintf("[agent]\nhttp_addr = 127.0.0.1:%d\n", port)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		log := filepath.Join(h.dir, "m.log")
		h.start()
		h.put(etcd.Entry{Path: log, Topic: "metrics"})
		h.waitState("waiting-for-file", log)
		const n = 1234
		appendFile(t, log, strings.Repeat("a metric line\n", n))
		h.records(n)
		want := fmt.Sprintf(`logagent_file_lines_acked_total{entry=%[1]q,path=%[1]q,topic="metrics"} %[2]d`, log, n)
		waitHTTP(t, base+"/metrics", "shows "+want, func(c int, b string) bool { return c == 200 && strings.Contains(b, want) })
		_, body := get(t, base+"/metrics")
		for _, m := range []string{
			fmt.Sprintf(`logagent_file_lines_read_total{entry=%[1]q,path=%[1]q,topic="metrics"} %[2]d`, log, n),
			fmt.Sprintf(`logagent_file_committed_offset_bytes{entry=%[1]q,path=%[1]q,topic="metrics"} %[2]d`, log, n*14),
			fmt.Sprintf(`logagent_file_lag_bytes{entry=%[1]q,path=%[1]q,topic="metrics"} 0`, log),
			fmt.Sprintf(`logagent_file_state{entry=%[1]q,path=%[1]q,state="running",topic="metrics"} 1`, log),
			`logagent_build_info{version="test"} 1`,
			"logagent_config_applied_total ",
			"logagent_buffer_bytes 0",
			"logagent_producer_in_flight 0",
			"logagent_kafka_up 1",
			"logagent_etcd_up 1",
			"logagent_producer_ack_latency_seconds_count",
		} {
			if !strings.Contains(body, m) {
				t.Errorf("/metrics lacks %q", m)
			}
		}
		waitHTTP(t, base+"/healthz", "200", func(c int, _ string) bool { return c == 200 })
		for _, ep := range []struct{ path, want string }{
			{"/readyz", "ok"}, {"/livez", "ok"}, {"/", "/readyz"}, {"/status", `"lines_acked": 1234`},
		} {
			if code, b := get(t, base+ep.path); code != 200 || !strings.Contains(b, ep.want) {
				t.Errorf("%s: %d %q, want 200 with %q", ep.path, code, b, ep.want)
			}
		}
		if code, _ := get(t, base+"/nope"); code != 404 {
			t.Errorf("/nope: %d, want 404", code)
		}
		// An execution trace: Go's trace format starts "go 1.NN trace".
		if code, tr := get(t, base+"/debug/pprof/trace?seconds=0.1"); code != 200 || !strings.HasPrefix(tr, "go 1.") {
			t.Errorf("/debug/pprof/trace: %d, %d bytes starting %q", code, len(tr), tr[:min(len(tr), 16)])
		}

		// Kafka goes away: 503 with the reason; it comes back: 200.
		kport := h.kafka.Addrs[0][strings.LastIndex(h.kafka.Addrs[0], ":")+1:]
		h.kafka.Close()
		body = waitHTTP(t, base+"/readyz", "503", func(c int, _ string) bool { return c == 503 })
		if !strings.Contains(body, "kafka") || !strings.Contains(body, h.kafka.Addrs[0]+": connection refused") {
			t.Errorf("503 body %q does not say in plain words that Kafka refuses connections", body)
		}
		// Not ready, but alive: no reason to restart it.
		if code, _ := get(t, base+"/livez"); code != 200 {
			t.Errorf("/livez with Kafka down: %d, want 200", code)
		}
		p, _ := strconv.Atoi(kport)
		k2, err := testenv.StartKafka(p)
		if err != nil {
			t.Fatal(err)
		}
		defer k2.Close()
		waitHTTP(t, base+"/healthz", "200 again", func(c int, _ string) bool { return c == 200 })

		// etcd goes away: 503 naming etcd.
		h.etcd.Close()
		body = waitHTTP(t, base+"/healthz", "503 saying why", func(c int, b string) bool {
			return c == 503 && strings.Contains(b, "connection refused")
		})
		if !strings.Contains(body, "etcd "+strings.TrimPrefix(h.etcd.Endpoint, "http://")+": connection refused") {
			t.Errorf("503 body %q does not say in plain words that etcd refuses connections", body)
		}
	})
}

func TestCheck(t *testing.T) {
	h := newHarness(t, conf.ClientSarama)
	good := filepath.Join(h.dir, "good.log")
	appendFile(t, good, "x\n")
	run := func() (int, string) {
		var b strings.Builder
		n := Check(context.Background(), h.config(), &b)
		return n, b.String()
	}
	h.put(etcd.Entry{Path: good, Topic: "t"}, etcd.Entry{Path: filepath.Join(h.dir, "later.log"), Topic: "t"})
	if n, out := run(); n != 0 || !strings.Contains(out, "readable") || !strings.Contains(out, "does not exist yet") {
		t.Fatalf("all good: %d problems\n%s", n, out)
	}
	// A glob: its matches counted, rotated names left out.
	appendFile(t, filepath.Join(h.dir, "good.log.1"), "x\n")
	appendFile(t, filepath.Join(h.dir, "other.log"), "x\n")
	h.put(etcd.Entry{Path: filepath.Join(h.dir, "*.log*"), Topic: "t"})
	if n, out := run(); n != 0 || !strings.Contains(out, "*.log* -> t: 2 files match") {
		t.Fatalf("glob: %d problems\n%s", n, out)
	}
	fifo := filepath.Join(h.dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, value, want string
	}{
		{"directory", fmt.Sprintf(`[{"path": %q, "topic": "t"}]`, h.dir), "FAIL file    " + h.dir + " is a directory, not a regular file"},
		{"device", `[{"path": "/dev/zero", "topic": "t"}]`, "FAIL file    /dev/zero is a character device, not a regular file"},
		// Never opened: the check would wait for a writer.
		{"fifo", fmt.Sprintf(`[{"path": %q, "topic": "t"}]`, fifo), "FAIL file    " + fifo + " is a FIFO (named pipe), not a regular file"},
		{"malformed", `[{"path": 1}]`, "FAIL etcd"},
		{"bad entry", fmt.Sprintf(`[{"path": %q, "topic": "t"}, {"path": "/x.log", "topic": ""}]`, good), "FAIL entry   entry 2 (\"/x.log\")"},
		{"no usable entry", fmt.Sprintf(`[{"path": %q, "topic": ""}]`, good), "no usable entry (1 given)"},
	} {
		h.putRaw(tc.value)
		if n, out := run(); n == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %d problems, want a line %q:\n%s", tc.name, n, tc.want, out)
		}
	}
	// No key yet: the agent runs and waits for it, a note.
	if _, err := h.cli.Delete(context.Background(), fleet.ConfigKey(host)); err != nil {
		t.Fatal(err)
	}
	if n, out := run(); n != 0 || !strings.Contains(out, "note etcd    ") || !strings.Contains(out, "does not exist: nothing to collect until it is put") {
		t.Errorf("no key: %d problems, want a note:\n%s", n, out)
	}
	h.kafka.Close()
	h.etcd.Close()
	n, out := run()
	etcdAddr := strings.TrimPrefix(h.etcd.Endpoint, "http://")
	if n != 2 || !strings.Contains(out, "FAIL etcd    "+etcdAddr+": connection refused") || !strings.Contains(out, "FAIL kafka") ||
		!strings.Contains(out, h.kafka.Addrs[0]+": connection refused") {
		t.Fatalf("servers down: %d problems, want both named with 'connection refused'\n%s", n, out)
	}
}

// check fails on what start would hit: a taken http_addr, and files the
// service's user cannot read although root (running the check) can.
func TestCheckWhatStartWouldHit(t *testing.T) {
	h := newHarness(t, conf.ClientFranzGo)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h.extra = "[agent]\nhttp_addr = " + l.Addr().String() + "\n"
	log := filepath.Join(h.dir, "private", "app.log")
	os.MkdirAll(filepath.Dir(log), 0o700)
	appendFile(t, log, "x\n")
	os.Chmod(log, 0o600)
	h.put(etcd.Entry{Path: log, Topic: "t"})
	var b strings.Builder
	Check(context.Background(), h.config(), &b)
	out := b.String()
	if !strings.Contains(out, "FAIL http    [agent] http_addr "+l.Addr().String()) || !strings.Contains(out, "address already in use") {
		t.Errorf("a taken http_addr is not a FAIL:\n%s", out)
	}
	if os.Geteuid() != 0 {
		t.Skip("the service user's readability is checked when the check runs as root")
	}
	serviceUser = "nobody"
	defer func() { serviceUser = "logagent" }()
	b.Reset()
	Check(context.Background(), h.config(), &b)
	if out := b.String(); !strings.Contains(out, "FAIL file    "+log+" -> t: readable as root, but user nobody (the service's) cannot enter "+filepath.Dir(log)) {
		t.Errorf("a file root reads and the service's user cannot is not a FAIL:\n%s", out)
	}
	os.Chmod(filepath.Dir(log), 0o755)
	for d := filepath.Dir(filepath.Dir(log)); d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // t.TempDir's own directories are 0700
	}
	b.Reset()
	Check(context.Background(), h.config(), &b)
	if out := b.String(); !strings.Contains(out, "user nobody (the service's) cannot read it") {
		t.Errorf("a file of mode 0600 the service's user cannot read is not a FAIL:\n%s", out)
	}
}
