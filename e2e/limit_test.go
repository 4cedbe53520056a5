package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTopicLimitBelowBatchSize: a topic created with max.message.bytes =
// 100000, as shared clusters do, and the agent at its defaults (lz4, batches
// up to 1 MB). 50,000 lines of ~90 bytes that lz4 shrinks only about 2:1
// (hex) must all arrive, none skipped (#27).
func TestTopicLimitBelowBatchSize(t *testing.T) {
	needE2E(t)
	k := startKafka(t, 1)
	e := startEtcd(t)
	for _, client := range clients {
		t.Run(client, func(t *testing.T) {
			const n = 50000
			topic := "small_" + strings.ReplaceAll(client, "-", "_")
			k.createTopic(topic, 1, 1, "max.message.bytes=100000")
			dir := t.TempDir()
			path := filepath.Join(dir, "small.log")
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			a := startAgent(t, dir, client, k.brokers(), e.endpoint)
			a.applied(e.put(configKey, entriesJSON(t, map[string]string{"path": path, "topic": topic, "read_from": "beginning"})))
			a.waitLog(10*time.Second, `msg="file opened"`, logAttr("path", path))

			r := rand.New(rand.NewPCG(27, 27))
			var b strings.Builder
			want := map[string]bool{}
			for i := range n {
				line := fmt.Sprintf("%07d %016x%016x%016x%016x%016x", i, r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
				want[line] = true
				b.WriteString(line + "\n")
			}
			appendFile(t, path, b.String())

			cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers()...), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			for len(want) > 0 && ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) { delete(want, string(rec.Value)) })
			}
			a.stop()
			a.logSummary()
			if len(want) > 0 {
				t.Errorf("%d of %d lines never arrived", len(want), n)
			}
			if log, _ := os.ReadFile(a.logPath); strings.Contains(string(log), "can never be sent") {
				t.Errorf("the agent skipped lines as too large")
			}
		})
	}
}
