package taillog

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// refusingKafka plays a Kafka that refuses topics: it acks every batch of
// the others at once and holds the refused topics' until accept.
type refusingKafka struct {
	mu      sync.Mutex
	refused map[string]bool
	held    []*Batch
	lines   map[string][]string // per topic, in ack order
	stop    chan struct{}
	done    chan struct{}
}

func newRefusingKafka(out chan *Batch, refused ...string) *refusingKafka {
	k := &refusingKafka{refused: map[string]bool{}, lines: map[string][]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		for _, r := range refused {
			k.refused[r] = true
		}
		for {
			select {
			case b := <-out:
				k.mu.Lock()
				if k.refused[b.topic] {
					k.held = append(k.held, b)
					k.mu.Unlock()
					continue
				}
				k.mu.Unlock()
				k.ack(b)
			case <-k.stop:
				return
			}
		}
	}()
	return k
}

func (k *refusingKafka) ack(b *Batch) {
	k.mu.Lock()
	for i := range b.Lines {
		k.lines[b.topic] = append(k.lines[b.topic], string(b.Lines[i].Data))
	}
	k.mu.Unlock()
	for i := range b.Lines {
		b.Lines[i].Ack()
	}
}

// refuse refuses topic from now on.
func (k *refusingKafka) refuse(topic string) {
	k.mu.Lock()
	k.refused[topic] = true
	k.mu.Unlock()
}

// accept takes topic from now on, its held batches first.
func (k *refusingKafka) accept(topic string) {
	k.mu.Lock()
	var held []*Batch
	k.held = slices.DeleteFunc(k.held, func(b *Batch) bool {
		if b.topic == topic {
			held = append(held, b)
			return true
		}
		return false
	})
	delete(k.refused, topic)
	k.mu.Unlock()
	for _, b := range held {
		k.ack(b)
	}
}

// waitHeld waits until a batch of topic is held.
func (k *refusingKafka) waitHeld(t *testing.T, topic string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		k.mu.Lock()
		held := slices.ContainsFunc(k.held, func(b *Batch) bool { return b.topic == topic })
		k.mu.Unlock()
		if held {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no batch of %s reached Kafka", topic)
		}
	}
}

// wait waits until topic has n lines and returns them.
func (k *refusingKafka) wait(t *testing.T, topic string, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		k.mu.Lock()
		l := append([]string(nil), k.lines[topic]...)
		k.mu.Unlock()
		if len(l) >= n {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d lines, want %d", topic, len(l), n)
		}
	}
}

// refusedFixture is a manager in a temporary directory whose Kafka
// refuses topics; the test's cleanup stops both.
func refusedFixture(t *testing.T, opts Options, refused ...string) (string, *Positions, *Manager, *refusingKafka) {
	t.Helper()
	dir := t.TempDir()
	store, err := LoadPositions(filepath.Join(dir, "positions.json"), discard())
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *Batch, 4)
	k := newRefusingKafka(out, refused...)
	m := NewManager(opts, store, out, testLogger(t))
	t.Cleanup(func() { m.Stop(); close(k.stop); <-k.done })
	return dir, store, m, k
}

func topicLines(prefix string, from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "%s %06d %s\n", prefix, i, strings.Repeat("x", 88))
	}
	return b.String()
}

// A topic Kafka refuses holds at most a quarter of the read budget: its
// file's reading pauses, far from its end, while another topic's file
// goes on being read; once Kafka takes the topic, its file resumes where
// it paused and every line follows in order (issue #25). Before, the
// refused topic's lines took the whole budget and the other file
// stopped.
func TestRefusedTopicHoldsItsShareOnly(t *testing.T) {
	opts := testOpts()
	opts.BufferBytes, opts.ConfirmTopics = 256<<10, true
	dir, _, m, k := refusedFixture(t, opts, "bad")
	m.SetTopicOK("good", true)
	good, bad := filepath.Join(dir, "good.log"), filepath.Join(dir, "bad.log")
	const nBad = 40000 // 4 MB: sixteen times the budget
	write(t, bad, topicLines("bad", 0, nBad))
	m.Reconcile([]Entry{{Path: good, Topic: "good"}, {Path: bad, Topic: "bad", ReadFrom: "beginning"}})
	for r := 0; r < 4; r++ {
		write(t, good, topicLines("good", r*1000, 1000))
		k.wait(t, "good", (r+1)*1000)
	}
	for _, b := range m.TopicBudgets() {
		if b.Topic == "bad" && (b.Bytes > opts.BufferBytes/4+readSize || !b.Refused) {
			t.Fatalf("refused topic's share: %+v", b)
		}
	}
	for _, s := range m.Status() {
		if s.Path == bad && s.BytesRead >= int64(len(topicLines("bad", 0, nBad))) {
			t.Fatalf("the refused topic's file was read to its end: %+v", s)
		}
	}
	m.SetTopicOK("bad", true)
	k.accept("bad")
	got := k.wait(t, "bad", nBad)
	if want := strings.Split(strings.TrimSuffix(topicLines("bad", 0, nBad), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d lines of the refused topic, want %d in order", len(got), nBad)
	}
}

// An entry whose topic changes while Kafka refuses the old one: the old
// tailer's lines, acked after its successor took over the file (the old
// topic created meanwhile), must not move the saved offset, which the
// successor owns: here its own lines are not acked yet, and a crash would
// lose them. Before, the stopped tailer's tracker saved its late acks.
func TestLateAcksOfAStoppedTailerDoNotMoveTheOffset(t *testing.T) {
	opts := testOpts()
	opts.ShutdownTimeout = 50 * time.Millisecond
	dir, store, m, k := refusedFixture(t, opts, "typo", "fixed")
	path := filepath.Join(dir, "app.log")
	write(t, path, topicLines("line", 0, 1000))
	m.Reconcile([]Entry{{Path: path, Topic: "typo", ReadFrom: "beginning"}})
	k.waitHeld(t, "typo")
	m.Reconcile([]Entry{{Path: path, Topic: "fixed", ReadFrom: "beginning"}})
	k.waitHeld(t, "fixed")
	k.accept("typo")
	if pos, _ := store.Get(path); pos.Current.Offset != 0 {
		t.Fatalf("saved offset %d after the stopped tailer's late acks, want 0: its successor delivered nothing yet", pos.Current.Offset)
	}
	k.accept("fixed")
	k.wait(t, "fixed", 1000)
}
