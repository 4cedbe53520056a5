package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
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
		// An execution trace: Go's trace format starts "go 1.NN trace".
		if code, tr := get(t, base+"/debug/pprof/trace?seconds=0.1"); code != 200 || !strings.HasPrefix(tr, "go 1.") {
			t.Errorf("/debug/pprof/trace: %d, %d bytes starting %q", code, len(tr), tr[:min(len(tr), 16)])
		}

		// Kafka goes away: 503 with the reason; it comes back: 200.
		kport := h.kafka.Addrs[0][strings.LastIndex(h.kafka.Addrs[0], ":")+1:]
		h.kafka.Close()
		body = waitHTTP(t, base+"/healthz", "503", func(c int, _ string) bool { return c == 503 })
		if !strings.Contains(body, "kafka") {
			t.Errorf("503 body %q does not name kafka", body)
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
		body = waitHTTP(t, base+"/healthz", "503", func(c int, _ string) bool { return c == 503 })
		if !strings.Contains(body, "etcd") {
			t.Errorf("503 body %q does not name etcd", body)
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
	h.kafka.Close()
	h.etcd.Close()
	n, out := run()
	if n != 2 || !strings.Contains(out, "FAIL etcd") || !strings.Contains(out, "FAIL kafka") {
		t.Fatalf("servers down: %d problems\n%s", n, out)
	}
}
