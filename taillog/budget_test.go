package taillog

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// refusingKafka plays a Kafka that refuses one topic: it acks every batch
// of the others at once and holds the refused topic's until accept.
type refusingKafka struct {
	mu      sync.Mutex
	refused string
	held    []*Batch
	lines   map[string][]string // per topic, in ack order
	stop    chan struct{}
	done    chan struct{}
}

func newRefusingKafka(out chan *Batch, refused string) *refusingKafka {
	k := &refusingKafka{refused: refused, lines: map[string][]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		for {
			select {
			case b := <-out:
				k.mu.Lock()
				if b.topic == k.refused {
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

// accept takes the refused topic from now on, held batches first.
func (k *refusingKafka) accept() {
	k.mu.Lock()
	held := k.held
	k.held, k.refused = nil, ""
	k.mu.Unlock()
	for _, b := range held {
		k.ack(b)
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
	dir := t.TempDir()
	store, err := LoadPositions(filepath.Join(dir, "positions.json"), discard())
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *Batch, 4)
	k := newRefusingKafka(out, "bad")
	opts := testOpts()
	opts.BufferBytes, opts.ConfirmTopics = 256<<10, true
	m := NewManager(opts, store, out, testLogger(t))
	defer func() { m.Stop(); close(k.stop); <-k.done }()
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
	k.accept()
	got := k.wait(t, "bad", nBad)
	if want := strings.Split(strings.TrimSuffix(topicLines("bad", 0, nBad), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d lines of the refused topic, want %d in order", len(got), nBad)
	}
}
