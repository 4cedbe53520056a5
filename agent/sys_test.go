package agent

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
	"github.com/logagent/logagent/sysagent"
)

func (h *harness) putSys(v string) {
	h.t.Helper()
	if _, err := h.cli.Put(context.Background(), fleet.SysConfigKey(host), v); err != nil {
		h.t.Fatal(err)
	}
}

// sysRecords waits for n more records of topic and decodes them; records
// of other topics are kept in h.seen as they are.
func (h *harness) sysRecords(topic string, n int) []sysagent.Record {
	h.t.Helper()
	h.cons.AddTopics(topic)
	var out []sysagent.Record
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("got %d sys records on %s, want %d", len(out), topic, n)
		}
		rs, _ := h.cons.Poll(context.Background(), 500*time.Millisecond)
		for _, r := range rs {
			if r.Topic != topic {
				h.seen = append(h.seen, r)
				continue
			}
			if string(r.Key) != host || r.Headers["host"] != host {
				h.t.Fatalf("sys record key %q, host header %q; want %q", r.Key, r.Headers["host"], host)
			}
			var rec sysagent.Record
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				h.t.Fatalf("sys record %q: %v", r.Value, err)
			}
			out = append(out, rec)
		}
	}
	return out
}

func (h *harness) waitSys(what string, ok func(*sysagent.Status) bool) *sysagent.Status {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := h.agent.sys.Status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("sys agent never %s: %+v", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSysConfigKey: the sys_config key switches the Sys Agent on (a record
// at once, without rates, then one per interval with them), changes it
// (topic and collectors), a malformed value keeps the last good one
// (reported in the status), and deleting the key switches it off.
func TestSysConfigKey(t *testing.T) {
	h := newHarness(t, conf.ClientFranzGo)
	h.start()
	h.waitSys("running with the key absent", func(st *sysagent.Status) bool { return st == nil })

	h.putSys(`{"topic": "sys_metrics", "interval": "1s"}`)
	rs := h.sysRecords("sys_metrics", 2)
	first, second := rs[0], rs[1]
	if first.Schema != 1 || first.Host != host || first.Seq != 1 || first.Rates || first.CPU == nil || first.CPU.Used != nil ||
		first.Memory == nil || first.Load == nil || first.Disk == nil || first.Filesystem == nil || first.Network == nil {
		t.Fatalf("first record: %+v", first)
	}
	if _, err := time.Parse(time.RFC3339, first.Time); err != nil || !strings.HasSuffix(first.Time, "Z") || len(first.Time) != len("2026-12-06T06:00:00.000Z") {
		t.Fatalf("time %q is not RFC 3339 with ms (%v)", first.Time, err)
	}
	if !second.Rates || second.Seq != 2 || second.CPU.Used == nil || second.RateSeconds == nil {
		t.Fatalf("second record: %+v", second)
	}
	st := h.waitSys("had a headline with rates", func(st *sysagent.Status) bool { return st != nil && st.Latest != nil && st.Latest.Rates })
	if st.Topic != "sys_metrics" || st.Latest.CPU == nil || st.Latest.Load1 == nil || st.Latest.MemoryUsed == nil {
		t.Fatalf("sys status %+v, headline %+v", st, st.Latest)
	}
	status, _ := h.agent.fullSnapshot(h.agent.fullSummary(), true)
	if status.Sys == nil || status.Sys.Latest == nil || status.SysConfig.Revision == 0 {
		t.Fatalf("status key lacks the Sys Agent: %+v %+v", status.Sys, status.SysConfig)
	}
	waitStatusKey(t, h, `"cpu_percent"`)
	mfs, err := h.agent.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gauges := map[string]bool{}
	for _, mf := range mfs {
		gauges[mf.GetName()] = true
	}
	for _, g := range []string{"logagent_sys_cpu_used_percent", "logagent_sys_load1", "logagent_sys_memory_used_percent",
		"logagent_sys_disk_busy_percent", "logagent_sys_buffered_samples", "logagent_sys_samples_sent_total"} {
		if !gauges[g] {
			t.Errorf("/metrics lacks %s", g)
		}
	}

	h.putSys(`{"topic": "sys2", "interval": "1s", "collectors": ["memory"]}`)
	rec := h.sysRecords("sys2", 1)[0]
	if rec.Memory == nil || rec.CPU != nil || rec.Disk != nil {
		t.Fatalf("record after the change: %+v", rec)
	}

	h.putSys(`{"topic": "sys3", "interval": "often"}`)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.agent.sysSrc.State().LastError, "keeping the last good config") {
		if time.Now().After(deadline) {
			t.Fatalf("malformed value not rejected: %+v", h.agent.sysSrc.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, _ := h.agent.fullSnapshot(h.agent.fullSummary(), true); !strings.Contains(status.SysConfig.LastError, `"often" is not a duration`) {
		t.Fatalf("status sys_config %+v lacks the error", status.SysConfig)
	}
	h.sysRecords("sys2", 2) // still sampling on the last good config

	if _, err := h.cli.Delete(context.Background(), fleet.SysConfigKey(host)); err != nil {
		t.Fatal(err)
	}
	h.waitSys("off after the delete", func(st *sysagent.Status) bool { return st == nil })
	if status, _ := h.agent.fullSnapshot(h.agent.fullSummary(), true); status.Sys != nil {
		t.Fatalf("status shows the Sys Agent after the delete: %+v", status.Sys)
	}
}

// waitStatusKey waits until the agent's status key in etcd holds want.
func waitStatusKey(t *testing.T, h *harness, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := h.cli.Get(context.Background(), fleet.StatusKey(host))
		if err == nil && len(resp.Kvs) == 1 && strings.Contains(string(resp.Kvs[0].Value), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status key never held %s", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kafkaKeepsLog puts a Kafka that keeps its log in place of the in-memory
// one (same port); kafkaDown then stops it, and back starts it again with
// its log and topics: the broker came back, rather than a new one.
func (h *harness) kafkaKeepsLog() (down func() (back func())) {
	h.t.Helper()
	_, port, _ := net.SplitHostPort(h.kafka.Addrs[0])
	p, _ := strconv.Atoi(port)
	dir := filepath.Join(h.dir, "kafka")
	start := func() {
		h.t.Helper()
		var err error
		if h.kafka, err = testenv.StartKafkaDir(p, dir); err != nil {
			h.t.Fatal(err)
		}
		h.t.Cleanup(h.kafka.Close)
	}
	h.kafka.Close()
	start()
	return func() func() { h.kafka.Close(); return start }
}

// sysSeqs reads the topic from its start with a consumer of its own until
// the sample numbered last, and returns the samples' numbers in the order
// Kafka holds them, a sample sent twice (its ack lost) counted once.
func (h *harness) sysSeqs(topic string, last uint64) []uint64 {
	h.t.Helper()
	c, err := testenv.NewConsumer(h.kafka.Addrs, topic)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	var seqs []uint64
	deadline := time.Now().Add(30 * time.Second)
	for len(seqs) == 0 || seqs[len(seqs)-1] < last {
		if time.Now().After(deadline) {
			h.t.Fatalf("samples in Kafka %v, never up to %d", seqs, last)
		}
		rs, _ := c.Poll(context.Background(), 500*time.Millisecond)
		for _, r := range rs {
			var rec sysagent.Record
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				h.t.Fatalf("sys record %q: %v", r.Value, err)
			}
			if n := len(seqs); n > 0 && seqs[n-1] == rec.Seq {
				continue
			}
			seqs = append(seqs, rec.Seq)
		}
	}
	return seqs
}

// sysOutage runs the Sys Agent at 1 s, stops Kafka until waited says so,
// then stops sampling (interval 1h) and brings Kafka back; it returns the
// Sys Agent's status once every waiting sample is sent, and the samples
// in Kafka.
func sysOutage(t *testing.T, h *harness, buffer string, waited func(*sysagent.Status) bool) (*sysagent.Status, []uint64) {
	kafkaDown := h.kafkaKeepsLog()
	h.start()
	h.putSys(`{"topic": "sys_metrics", "interval": "1s", "buffer": "` + buffer + `"}`)
	h.sysRecords("sys_metrics", 1)
	back := kafkaDown()
	h.waitSys("waited", func(st *sysagent.Status) bool { return st != nil && waited(st) })
	h.putSys(`{"topic": "sys_metrics", "interval": "1h", "buffer": "2h"}`) // no more samples for now
	h.waitSys("took the new config", func(st *sysagent.Status) bool { return st.Interval == "1h0m0s" })
	back()
	st := h.waitSys("sent what waited", func(st *sysagent.Status) bool { return st.Buffered == 0 && st.Sent+st.Dropped >= int64(st.LastSeq) })
	seqs := h.sysSeqs("sys_metrics", st.LastSeq)
	t.Logf("samples in Kafka: %v; %+v", seqs, st)
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("samples out of order: %v", seqs)
		}
	}
	return st, seqs
}

// TestSysSamplesWaitForKafka: while Kafka is down, samples wait; when it
// is back every one of them arrives, in order.
func TestSysSamplesWaitForKafka(t *testing.T) {
	forEachClient(t, func(t *testing.T, h *harness) {
		st, seqs := sysOutage(t, h, "1h", func(st *sysagent.Status) bool { return st.Buffered >= 4 })
		if st.Dropped != 0 || len(seqs) != int(st.LastSeq) {
			t.Fatalf("%d samples taken, %d in Kafka, %d dropped; want every one", st.LastSeq, len(seqs), st.Dropped)
		}
	})
}

// TestSysBufferDropsTheOldest: Kafka down longer than the buffer holds:
// the oldest samples are dropped, logged and counted; the newest arrive in
// order.
func TestSysBufferDropsTheOldest(t *testing.T) {
	h := newHarness(t, conf.ClientFranzGo)
	st, seqs := sysOutage(t, h, "2s", func(st *sysagent.Status) bool { return st.Dropped >= 2 })
	if missing := int64(st.LastSeq) - int64(len(seqs)); missing != st.Dropped {
		t.Fatalf("%d samples missing from Kafka, %d counted as dropped", missing, st.Dropped)
	}
	if seqs[len(seqs)-1] != st.LastSeq || seqs[len(seqs)-2] != st.LastSeq-1 {
		t.Fatalf("the newest samples are not the ones kept: %v", seqs)
	}
	mfs, err := h.agent.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "logagent_sys_samples_dropped_total" && int64(mf.GetMetric()[0].GetCounter().GetValue()) == st.Dropped {
			return
		}
	}
	t.Fatalf("logagent_sys_samples_dropped_total does not count the %d drops", st.Dropped)
}
