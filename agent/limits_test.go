package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
)

// Brokers whose message.max.bytes (100,000) is far below the agent's
// batches, the agent at its defaults with compression none (#27): every
// line of a 50,000-line file arrives, in order, none skipped; the one line
// too long for the topic by itself (300 KB) is skipped and counted. The
// status and check name the topic's limit in plain words.
func TestTopicLimitBelowMaxMessageBytes(t *testing.T) {
	forEachClient(t, func(t *testing.T, h *harness) {
		if err := h.kafka.AlterConfig(kmsg.ConfigResourceTypeBroker, "", "message.max.bytes", "100000"); err != nil {
			t.Fatal(err)
		}
		h.extra = "compression = none\n"
		log := filepath.Join(h.dir, "lim.log")
		h.start()
		h.put(etcd.Entry{Path: log, Topic: "lim"})
		h.waitState("waiting-for-file", log)
		const n = 50000
		var b strings.Builder
		want := make([]string, 0, n)
		for i := range n {
			if i == n/2 {
				b.WriteString(strings.Repeat("y", 300<<10) + "\n")
			}
			line := fmt.Sprintf("%07d %s", i, strings.Repeat("x", 82))
			want = append(want, line)
			b.WriteString(line + "\n")
		}
		appendFile(t, log, b.String())
		got := values(h.records(n))
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("record %d is %.20q, want %.20q", i, got[i], want[i])
			}
		}
		skipped := func() float64 {
			var m dto.Metric
			h.agent.metrics.givenUp.Write(&m)
			return m.GetCounter().GetValue()
		}
		for deadline := time.Now().Add(10 * time.Second); skipped() == 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if skipped := skipped(); skipped != 1 {
			t.Fatalf("%v records skipped, want the 300 KB line only", skipped)
		}
		h.quiet(200 * time.Millisecond)

		st, _ := h.agent.snapshot(h.agent.statusSummary(), true)
		if len(st.TopicLimits) != 1 || st.TopicLimits[0].Topic != "lim" || st.TopicLimits[0].MaxMessageBytes != 100000 ||
			!strings.Contains(st.TopicLimits[0].Problem, "max_message_bytes 1000000") {
			t.Fatalf("status topic_limits %+v, want topic lim at 100000 bytes, below max_message_bytes", st.TopicLimits)
		}
		var out strings.Builder
		Check(context.Background(), h.config(), &out)
		if !strings.Contains(out.String(), "FAIL limit   topic lim takes batches of at most 100000 bytes") ||
			!strings.Contains(out.String(), fmt.Sprintf("set max_line_bytes to %d or less", 100000-conf.RecordOverhead)) {
			t.Fatalf("check does not report the topic's limit:\n%s", out.String())
		}
	})
}
