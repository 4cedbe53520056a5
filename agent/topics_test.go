package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
	"github.com/logagent/logagent/taillog"
)

// forEachClientStrict is forEachClient on a Kafka that creates no topic
// on demand (auto.create.topics.enable=false), with topics only.
func forEachClientStrict(t *testing.T, f func(t *testing.T, h *harness), topics ...string) {
	for _, c := range clients {
		t.Run(c, func(t *testing.T) {
			f(t, newHarnessOn(t, c, func() (*testenv.Kafka, error) { return testenv.StartKafkaStrict(0, topics...) }))
		})
	}
}

// lines returns n lines "<prefix> <i> xxx…" of about 100 bytes.
func lines(prefix string, from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "%s %06d %s\n", prefix, i, strings.Repeat("x", 88))
	}
	return b.String()
}

// ofTopic is the values of the records of topic, in order.
func ofTopic(rs []testenv.Record, topic string) []string {
	var out []string
	for _, r := range rs {
		if r.Topic == topic {
			out = append(out, string(r.Value))
		}
	}
	return out
}

// wantLines fails unless got is exactly lines(prefix, 0, n), in order.
func wantLines(t *testing.T, got []string, prefix string, n int) {
	t.Helper()
	want := strings.Split(strings.TrimSuffix(lines(prefix, 0, n), "\n"), "\n")
	if !slices.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%d records of %s, want %d in order; first difference at %d", len(got), prefix, n, i)
	}
}

// waitRefused waits until the agent reports topic refused and returns it.
func (h *harness) waitRefused(topic string) fleet.TopicStatus {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, ts := range h.agent.Topics() {
			if ts.Topic == topic {
				return ts
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("topic %s not reported refused: %+v", topic, h.agent.Topics())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The case (#25): a topic that does not exist, on a broker that
// creates none on demand, with its file far over buffer_bytes, does not
// stop the other file: its lines keep arriving while the refused topic's
// lines hold at most their share of the buffer and its file's reading
// pauses. Status, /healthz, /metrics and check say why in plain words.
// Once the topic is created, every line of its file arrives, in order.
// Before, the refused topic's lines filled the buffer and the good file
// was not read any more.
func TestRefusedTopicDoesNotStopTheHost(t *testing.T) {
	forEachClientStrict(t, func(t *testing.T, h *harness) {
		const budget = 256 << 10
		h.extra = "[agent]\nbuffer_bytes = 256KiB\nmax_line_bytes = 8KiB\n"
		good, bad := filepath.Join(h.dir, "good.log"), filepath.Join(h.dir, "bad.log")
		h.start()
		h.put(etcd.Entry{Path: good, Topic: "app_log"}, etcd.Entry{Path: bad, Topic: "no_such_topic"})
		h.waitState("waiting-for-file", bad, good)
		const nBad = 20000 // 2 MB: eight times buffer_bytes
		appendFile(t, bad, lines("bad", 0, nBad))
		ts := h.waitRefused("no_such_topic")
		if ts.Reason != "topic no_such_topic does not exist on the brokers" || !slices.Equal(ts.Files, []string{bad}) {
			t.Fatalf("refused topic %+v", ts)
		}

		// The good file keeps shipping, round after round.
		const rounds, per = 4, 500
		for r := 0; r < rounds; r++ {
			appendFile(t, good, lines("good", r*per, per))
			h.records((r + 1) * per)
		}
		wantLines(t, ofTopic(h.seen, "app_log"), "good", rounds*per)

		// The refused topic holds at most its share (a quarter, and one
		// read beyond it), and its file is not read to its end: the lines
		// stay in the file.
		for _, b := range h.agent.mgr.TopicBudgets() {
			if b.Topic == "no_such_topic" && (b.Bytes > budget/4+64<<10 || !b.Refused) {
				t.Fatalf("refused topic's share: %+v", b)
			}
		}
		for _, st := range h.agent.Status() {
			if st.Path == bad && st.BytesRead >= int64(len(lines("bad", 0, nBad))) {
				t.Fatalf("the refused topic's file was read to its end: %+v", st)
			}
		}
		if err := h.agent.Health(); err == nil || !strings.Contains(err.Error(), "topic no_such_topic does not exist on the brokers") ||
			!strings.Contains(err.Error(), bad) {
			t.Fatalf("health %v, want the refused topic and its file", err)
		}
		mfs, err := h.agent.metrics.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				switch {
				case mf.GetName() == "logagent_topic_refused" && labels["topic"] == "no_such_topic" && m.GetGauge().GetValue() == 1 &&
					labels["reason"] == "topic no_such_topic does not exist on the brokers",
					mf.GetName() == "logagent_file_waiting_for_topic" && labels["path"] == bad && m.GetGauge().GetValue() == 1:
					found[mf.GetName()] = true
				}
			}
		}
		if len(found) != 2 {
			t.Fatalf("metrics found: %v; want logagent_topic_refused{topic=no_such_topic} 1 with its reason, logagent_file_waiting_for_topic{path=bad.log} 1", found)
		}
		// check reads the running agent's status key (published within
		// statusInterval of the refusal).
		deadline := time.Now().Add(20 * time.Second)
		for {
			var out strings.Builder
			n := Check(context.Background(), h.config(), &out)
			if n > 0 && strings.Contains(out.String(), "FAIL topic   topic no_such_topic does not exist on the brokers") &&
				strings.Contains(out.String(), "files waiting: "+bad) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("check does not report the refused topic:\n%s", out.String())
			}
			time.Sleep(200 * time.Millisecond)
		}

		// Created: its file resumes where it paused, every line once, in order.
		if _, err := h.kafka.CreateTopic("no_such_topic"); err != nil {
			t.Fatal(err)
		}
		h.records(rounds*per + nBad)
		wantLines(t, ofTopic(h.seen, "no_such_topic"), "bad", nBad)
		if ts := h.agent.Topics(); len(ts) != 0 {
			t.Fatalf("still refused: %+v", ts)
		}
	}, "app_log")
}

// An entry whose topic is corrected in etcd while its lines wait for the
// refused one: they are read again for the corrected topic, each once
// and in order, and the refused topic's lines leave the buffer.
func TestRefusedTopicCorrectedInEtcd(t *testing.T) {
	forEachClientStrict(t, func(t *testing.T, h *harness) {
		h.extra = "[agent]\nbuffer_bytes = 256KiB\nmax_line_bytes = 8KiB\nshutdown_timeout = 1s\n"
		good, bad := filepath.Join(h.dir, "good.log"), filepath.Join(h.dir, "bad.log")
		h.start()
		h.put(etcd.Entry{Path: good, Topic: "app_log"}, etcd.Entry{Path: bad, Topic: "web_lgo"})
		h.waitState("waiting-for-file", bad, good)
		const nBad = 5000
		appendFile(t, bad, lines("bad", 0, nBad))
		h.waitRefused("web_lgo")
		appendFile(t, good, lines("good", 0, 100))
		h.records(100)

		h.put(etcd.Entry{Path: good, Topic: "app_log"}, etcd.Entry{Path: bad, Topic: "web_log"})
		appendFile(t, good, lines("good", 100, 100))
		h.records(200 + nBad)
		h.quiet(500 * time.Millisecond)
		wantLines(t, ofTopic(h.seen, "web_log"), "bad", nBad)
		wantLines(t, ofTopic(h.seen, "app_log"), "good", 200)
		if ts := h.agent.Topics(); len(ts) != 0 {
			t.Fatalf("still refused: %+v", ts)
		}
		// Those still in the client leave it once it gives up the topic.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			bs := h.agent.mgr.TopicBudgets()
			i := slices.IndexFunc(bs, func(b taillog.TopicBudget) bool { return b.Topic == "web_lgo" })
			if i < 0 || bs[i].Bytes == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the lines of the corrected topic still hold %d bytes of the buffer", bs[i].Bytes)
			}
		}
	}, "app_log", "web_log")
}
