package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The bound on the agent's resident memory while Kafka is away: reading
// pauses when buffer_bytes (8 MiB) is full, nothing piles up.
const maxRSSMB = 64

// Case 6a: Kafka away for 15 s (the broker closed, then started again on
// the same port with its log) while the writer writes steadily, 300k lines
// in all: nothing lost, nothing sent twice, and the agent's memory stays
// bounded.
func TestKafkaOutage15s(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		kafkaOutage(t, "6a-kafka-outage-15s", client, 15*time.Second, 300000)
	})
}

// Case 6b: the same with a 5-minute outage (LOGAGENT_LONG=1 only).
func TestKafkaOutage5min(t *testing.T) {
	if os.Getenv("LOGAGENT_LONG") != "1" {
		t.Skip("the 5-minute Kafka outage runs only with LOGAGENT_LONG=1 (about 5 minutes per client)")
	}
	forClients(t, bothClients, func(t *testing.T, client string) {
		kafkaOutage(t, "6b-kafka-outage-5min", client, 5*time.Minute, 300000)
	})
}

func kafkaOutage(t *testing.T, name, client string, outage time.Duration, total int) {
	const margin = 2500 * time.Millisecond // writing before the outage and after it
	rate := float64(total) / (outage + 2*margin).Seconds()
	e := newEnv(t, name, client, envOpts{})
	path := filepath.Join(e.dir, "app.log")
	w := newWriter(t, path)
	e.putConfig(entry{Path: path, Topic: "outage", ReadFrom: "beginning"})
	a := e.startAgent()
	a.waitLog("file opened", 15*time.Second)

	done := w.run(rate, total, 0, nil)
	time.Sleep(margin)
	e.stopKafka()
	downAt := w.written()
	time.Sleep(outage)
	if a.exited() {
		t.Fatalf("the agent exited during the Kafka outage: %v", a.Err())
	}
	e.startKafka()
	upAt := w.written()
	t.Logf("Kafka down at line %d, back at line %d (%.0f lines/s)", downAt, upAt, rate)
	back := time.Now()
	<-done

	c := e.newChecker(path, "outage")
	c.stall = 30 * time.Second // the producer's backoff reaches 10 s during the outage
	if !c.waitAll(total, 120*time.Second) {
		t.Errorf("not every line arrived within 120s: %d of %d", c.distinct(total), total)
	}
	caughtUp := time.Since(back)
	lost, dup := c.result(total, w)
	e.report(lost, dup, total, fmt.Sprintf("outage_s=%.0f caught_up_s=%.1f", outage.Seconds(), caughtUp.Seconds()))
	a.stop()
	if c.bad > 0 {
		t.Errorf("%d bad records", c.bad)
	}
	if e.peakMB() > maxRSSMB {
		t.Errorf("peak agent RSS %.1f MB > %d MB during a Kafka outage", e.peakMB(), maxRSSMB)
	}
	if lost != 0 || dup != 0 {
		t.Fatalf("lost=%d dup=%d across a %s Kafka outage, want 0 and 0", lost, dup, outage)
	}
}

// Case 6c: Kafka is down when the agent starts. The agent starts anyway
// (it does not exit), lines are written meanwhile, Kafka comes up 10 s
// later: they are all delivered.
func TestKafkaDownAtStart(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		const (
			rate  = 2000
			total = 10 * rate
		)
		e := newEnv(t, "6c-kafka-down-at-start", client, envOpts{noKafka: true})
		path := filepath.Join(e.dir, "app.log")
		w := newWriter(t, path)
		e.putConfig(entry{Path: path, Topic: "downatstart", ReadFrom: "beginning"})
		a := e.startAgent()
		start := time.Now()
		done := w.run(rate, total, 0, nil)
		time.Sleep(2 * time.Second)
		if a.exited() {
			t.Fatalf("the agent exited with Kafka down at start: %v", a.Err())
		}
		time.Sleep(10*time.Second - time.Since(start))
		if a.exited() {
			t.Fatalf("the agent exited with Kafka down: %v", a.Err())
		}
		e.startKafka()
		<-done

		c := e.newChecker(path, "downatstart")
		c.stall = 30 * time.Second
		if !c.waitAll(total, 60*time.Second) {
			t.Errorf("not every line arrived within 60s: %d of %d", c.distinct(total), total)
		}
		lost, dup := c.result(total, w)
		e.report(lost, dup, total, "")
		if a.exited() {
			t.Fatalf("the agent exited: %v", a.Err())
		}
		a.stop()
		if c.bad > 0 {
			t.Errorf("%d bad records", c.bad)
		}
		if lost != 0 {
			t.Fatalf("lost=%d dup=%d with Kafka down at start, want lost=0", lost, dup)
		}
	})
}
