package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLeaderFailover kills (-9) the partition leader of a 3-broker cluster
// in the middle of 100,000 lines written at a steady pace. With
// required_acks = all and the idempotent producer, every line must arrive
// exactly once: none lost, none duplicated.
func TestLeaderFailover(t *testing.T) {
	needE2E(t)
	for _, client := range clients {
		t.Run(client, func(t *testing.T) {
			start := time.Now()
			testLeaderFailover(t, client)
			t.Logf("%s: %s", t.Name(), since(start))
		})
	}
}

func testLeaderFailover(t *testing.T, client string) {
	const (
		total   = 100_000
		perTick = 50 // lines per write, every tick: 5,000 lines/s, 20 s in all
		tick    = 10 * time.Millisecond
		topic   = "seq_log"
	)
	dir := t.TempDir()
	k := startKafka(t, 3)
	e := startEtcd(t)
	k.createTopic(topic, 1, 3, "min.insync.replicas=2")

	path := filepath.Join(dir, "seq.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, dir, client, k.brokers(), e.endpoint)
	a.applied(e.put(configKey, entriesJSON(t, map[string]string{"path": path, "topic": topic, "read_from": "beginning"})))
	a.waitLog(10*time.Second, `msg="file opened"`, logAttr("path", path))

	w := startSeqWriter(t, path, total, perTick, tick)
	writeStart := time.Now()
	w.waitWritten(t, total/2, time.Minute)
	leader := k.leader(topic)
	killedAt := time.Now()
	k.kill(leader)
	t.Logf("killed the leader, node %d, after %d lines (%s into the writer)", leader, w.written.Load(), killedAt.Sub(writeStart).Round(time.Millisecond))
	w.waitWritten(t, total, 2*time.Minute)
	w.stop()
	t.Logf("writer done: %d lines in %s", total, since(writeStart))

	c := newSeqConsumer(t, k.brokers(), topic, path)
	if c.pollUntil(2*time.Minute, func() bool { return c.unique() == total }) {
		t.Logf("consumer (started when the writer was done) had all %d lines %s after the kill", total, since(killedAt))
	} else {
		t.Errorf("after 2 minutes only %d of %d lines arrived", c.unique(), total)
	}
	t.Logf("leader now: node %d", k.leader(topic))
	a.stop()

	missing, nMissing, dups := c.verify(t, k, topic, client, total)
	a.logSummary()
	if nMissing > 0 || dups > 0 {
		t.Errorf("want every line exactly once: %d missing (first: %v), %d duplicate records", nMissing, missing, dups)
	}
}
