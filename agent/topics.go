package agent

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/taillog"
)

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
func (a *Agent) Topics() []fleet.TopicStatus {
	refused := a.prod.Topics()
	if len(refused) == 0 {
		return nil
	}
	files := a.mgr.States() // paths and topics only: no stat per file
	budgets := a.mgr.TopicBudgets()
	out := make([]fleet.TopicStatus, 0, len(refused))
	for _, r := range refused {
		ts := fleet.TopicStatus{Topic: r.Topic, State: fleet.TopicRefused, Reason: r.Reason(), Error: r.Err.Error(), Since: r.Since,
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
func topicsHealth(ts []fleet.TopicStatus) error {
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
