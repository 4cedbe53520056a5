package faults

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/logagent/logagent/internal/testenv"
)

// Case 6d (issue #25): one entry's topic does not exist, on a broker that
// creates none on demand (auto.create.topics.enable=false), and its file
// holds more than twice buffer_bytes. The other file ships every line
// meanwhile, and the agent's memory stays bounded; once the topic is
// created, every line of the waiting file arrives. Nothing is lost or
// sent twice in either.
func TestRefusedTopic(t *testing.T) {
	forClients(t, bothClients, func(t *testing.T, client string) {
		e := newEnv(t, "6d-refused-topic", client, envOpts{noKafka: true})
		var err error
		if e.kafka, err = testenv.StartKafkaStrict(e.kafkaPort, "app_log"); err != nil {
			t.Fatal(err)
		}
		goodPath, badPath := filepath.Join(e.dir, "good.log"), filepath.Join(e.dir, "bad.log")
		good, bad := newWriter(t, goodPath), newWriter(t, badPath)
		const nGood, nBad = 20000, 200000
		<-bad.run(0, nBad, 0, nil)
		e.putConfig(entry{Path: goodPath, Topic: "app_log", ReadFrom: "beginning"},
			entry{Path: badPath, Topic: "no_such_topic", ReadFrom: "beginning"})
		a := e.startAgent()
		a.waitLog("topic no_such_topic does not exist on the brokers", 30*time.Second)

		<-good.run(5000, nGood, 0, nil)
		cg := e.newChecker(goodPath, "app_log")
		if !cg.waitAll(nGood, 60*time.Second) {
			t.Errorf("the good file's lines did not all arrive while the other topic was refused: %d of %d",
				cg.distinct(nGood), nGood)
		}
		if _, err := e.kafka.CreateTopic("no_such_topic"); err != nil {
			t.Fatal(err)
		}
		cb := e.newChecker(badPath, "no_such_topic")
		cb.stall = 30 * time.Second // the probe's backoff reaches 10 s while the topic is missing
		if !cb.waitAll(nBad, 120*time.Second) {
			t.Errorf("the refused topic's lines did not all arrive once it was created: %d of %d", cb.distinct(nBad), nBad)
		}
		lostG, dupG := cg.result(nGood, good)
		lostB, dupB := cb.result(nBad, bad)
		e.report(lostG+lostB, dupG+dupB, nGood+nBad, "")
		a.stop()
		if cg.bad+cb.bad > 0 {
			t.Errorf("%d bad records", cg.bad+cb.bad)
		}
		if e.peakMB() > maxRSSMB {
			t.Errorf("peak agent RSS %.1f MB > %d MB", e.peakMB(), maxRSSMB)
		}
		if lostG+lostB+dupG+dupB != 0 {
			t.Fatalf("good file lost=%d dup=%d, refused topic's file lost=%d dup=%d; want all 0", lostG, dupG, lostB, dupB)
		}
	})
}
