package agent

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/logagent/logagent/taillog"
)

// TopicStatus is a topic Kafka refuses, in the status: the files of its
// entries are not read further while its lines wait (issue #25).
type TopicStatus struct {
	Topic  string    `json:"topic"`
	State  string    `json:"state"`  // "refused"
	Reason string    `json:"reason"` // plain words: "topic x does not exist on the brokers"
	Error  string    `json:"error"`  // Kafka's
	Since  time.Time `json:"refused_since"`
	// WaitingRecords wait in the producer; BufferedBytes is the topic's
	// use of buffer_bytes (at most a quarter of it, or one long line).
	WaitingRecords int      `json:"waiting_records"`
	BufferedBytes  int64    `json:"buffered_bytes"`
	Files          []string `json:"files_waiting"`
}

// TopicRefused is TopicStatus.State of a topic Kafka refuses.
const TopicRefused = "refused"

// onTopic follows the producer's view of a topic: a refused topic is
// held to its share of the read budget, so that its files pause and the
// others go on.
func (a *Agent) onTopic(topic string, err error) {
	a.mgr.SetTopicOK(topic, err == nil)
	if err != nil {
		a.metrics.topicRefusals.WithLabelValues(topic).Inc()
	}
}

// Topics is every topic Kafka refuses, sorted by topic, with the files
// waiting on it.
func (a *Agent) Topics() []TopicStatus {
	refused := a.prod.Topics()
	if len(refused) == 0 {
		return nil
	}
	files := a.mgr.Status()
	budgets := a.mgr.TopicBudgets()
	out := make([]TopicStatus, 0, len(refused))
	for _, r := range refused {
		ts := TopicStatus{Topic: r.Topic, State: TopicRefused, Reason: r.Reason(), Error: r.Err.Error(), Since: r.Since,
			WaitingRecords: r.Waiting, Files: []string{}}
		for _, f := range files {
			if f.Topic == r.Topic {
				ts.Files = append(ts.Files, f.Path)
			}
		}
		if i := slices.IndexFunc(budgets, func(b taillog.TopicBudget) bool { return b.Topic == r.Topic }); i >= 0 {
			ts.BufferedBytes = budgets[i].Bytes
		}
		out = append(out, ts)
	}
	return out
}

// topicsHealth says in plain words which topics Kafka refuses and which
// files wait on them (nil: none).
func topicsHealth(ts []TopicStatus) error {
	var errs []error
	for _, t := range ts {
		errs = append(errs, fmt.Errorf("%s (since %s); files waiting: %s", t.Reason, t.Since.UTC().Format(time.RFC3339),
			strings.Join(t.Files, ", ")))
	}
	return errors.Join(errs...)
}

// collected is the topics of entries.
func collected(es []taillog.Entry) []string {
	var out []string
	for _, e := range es {
		if !slices.Contains(out, e.Topic) {
			out = append(out, e.Topic)
		}
	}
	return out
}
