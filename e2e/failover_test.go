package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestLeaderFailover kills (-9) the partition leader of a 3-broker cluster
// in the middle of 100,000 lines written at a steady pace. With
// required_acks = all and the idempotent producer, every line must arrive
// exactly once: none lost, none duplicated.
//
// It also logs what the failure cost in time (docs/performance.md, Broker
// failover): when the new leader was elected, when the first line appended
// after the kill was acked, the append → ack latency of the lines appended
// in the 30 s around the kill, and how long after the writer's last line
// everything was acked. Only correctness is asserted.
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
	httpAddr := "127.0.0.1:" + strconv.Itoa(freePorts(t, 1))
	a := startAgentWith(t, dir, client, k.brokers(), e.endpoint, "[agent]\nhttp_addr = "+httpAddr+"\n")
	a.applied(e.put(configKey, entriesJSON(t, map[string]string{"path": path, "topic": topic, "read_from": "beginning"})))
	a.waitLog(10*time.Second, `msg="file opened"`, logAttr("path", path))

	w := startSeqWriter(t, path, total, perTick, tick)
	probe := startAckProbe(t, w, "http://"+httpAddr+"/metrics")
	writeStart := time.Now()
	w.waitWritten(t, total/2, time.Minute)
	leader := k.leader(topic)
	k.kill(leader)
	killedAt := time.Now() // the kill -9 is done when the script returns
	elected, err := leaderWatch(k.brokers(), topic, int32(leader), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the leader, node %d, after %d lines (%s into the writer)", leader, w.written.Load(), killedAt.Sub(writeStart).Round(time.Millisecond))
	w.waitWritten(t, total, 2*time.Minute)
	w.stop()
	writeEnd := time.Now()
	t.Logf("writer done: %d lines in %s", total, since(writeStart))
	if !probe.waitAcked(total, 2*time.Minute) {
		t.Errorf("the agent acked %d of %d lines", probe.last().acked, total)
	}
	probe.stop()
	logFailoverTimes(t, client, probe, killedAt, <-elected, writeEnd, total)

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

// logFailoverTimes logs what the kill cost in time, from the probe's
// samples (each time late by up to probeEvery).
func logFailoverTimes(t *testing.T, client string, p *ackProbe, killedAt, elected, writeEnd time.Time, total int) {
	t.Helper()
	rel := func(at time.Time) string {
		if at.IsZero() {
			return "never"
		}
		return fmt.Sprintf("+%s", at.Sub(killedAt).Round(time.Millisecond))
	}
	// Lines appended after the first sample taken once the kill was done
	// can only be acked by the new leader.
	after := p.after(killedAt)
	firstNew := p.firstAt(killedAt, func(s ackSample) bool { return s.acked > after.written })
	drained := p.firstAt(writeEnd, func(s ackSample) bool { return s.acked >= total })
	flowAgain := "n/a"
	if !elected.IsZero() && !firstNew.IsZero() {
		flowAgain = firstNew.Sub(elected).Round(time.Millisecond).String()
	}
	t.Logf("FAILOVER %s: just after the kill %d lines written, %d acked; new leader elected %s; "+
		"first ack of a line appended after the kill %s, %s after the election; all acked %s, %s after the writer's last line",
		client, after.written, after.acked, rel(elected), rel(firstNew), flowAgain, rel(drained), drainedAfter(drained, writeEnd))
	t.Logf("FAILOVER %s: append → ack, lines appended from 15 s before to 15 s after the kill: %s", client,
		latencySummary(p.latencies(killedAt.Add(-15*time.Second), killedAt.Add(15*time.Second))))
	t.Logf("FAILOVER %s: append → ack, lines appended from 10 s to 1 s before the kill (the steady state): %s", client,
		latencySummary(p.latencies(killedAt.Add(-10*time.Second), killedAt.Add(-time.Second))))
	t.Logf("FAILOVER %s: longest append → ack of the lines appended in each second (from the kill):%s", client,
		p.timeline(killedAt.Add(-15*time.Second), killedAt.Add(15*time.Second), killedAt))
}

func drainedAfter(drained, writeEnd time.Time) string {
	if drained.IsZero() {
		return "never"
	}
	return drained.Sub(writeEnd).Round(time.Millisecond).String()
}
