package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBrokerRestart stops the only broker for 30 s while the application
// keeps writing, then starts it again: every line must arrive (at least
// once; duplicates are reported).
func TestBrokerRestart(t *testing.T) {
	needE2E(t)
	for _, client := range clients {
		t.Run(client, func(t *testing.T) {
			start := time.Now()
			testBrokerRestart(t, client)
			t.Logf("%s: %s", t.Name(), since(start))
		})
	}
}

func testBrokerRestart(t *testing.T, client string) {
	const (
		perTick  = 10 // lines per write, every tick: 500 lines/s
		tick     = 20 * time.Millisecond
		rate     = perTick * int(time.Second/tick)
		downtime = 30 * time.Second
		topic    = "seq_log"
	)
	dir := t.TempDir()
	k := startKafka(t, 1)
	e := startEtcd(t)
	k.createTopic(topic, 1, 1)

	path := filepath.Join(dir, "seq.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, dir, client, k.brokers(), e.endpoint)
	a.applied(e.put(configKey, entriesJSON(t, map[string]string{"path": path, "topic": topic, "read_from": "beginning"})))
	a.waitLog(10*time.Second, `msg="file opened"`, logAttr("path", path))

	w := startSeqWriter(t, path, 0, perTick, tick)
	w.waitWritten(t, 3*rate, time.Minute) // 3 s of lines with the broker up
	k.stopNode(1)
	downAt := time.Now()
	t.Logf("broker stopped after %d lines; writing on for %s", w.written.Load(), downtime)
	// The outage itself is the scenario: nothing to wait for but time.
	time.Sleep(downtime)
	k.restartNode(1)
	t.Logf("broker up again after %s, %d lines written", since(downAt), w.written.Load())
	w.waitWritten(t, int(w.written.Load())+5*rate, time.Minute) // 5 s more with the broker up
	total := w.stop()
	upAt := time.Now()

	c := newSeqConsumer(t, k.brokers(), topic, path)
	if c.pollUntil(2*time.Minute, func() bool { return c.unique() == total }) {
		t.Logf("consumer had all %d lines %s after the writer stopped", total, since(upAt))
	} else {
		t.Errorf("after 2 minutes only %d of %d lines arrived", c.unique(), total)
	}
	a.stop()

	missing, nMissing, _ := c.verify(t, k, topic, client, total)
	a.logSummary()
	if nMissing > 0 {
		t.Errorf("%d of %d lines never arrived (first: %v)", nMissing, total, missing)
	}
}
