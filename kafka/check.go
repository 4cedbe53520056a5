package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/logagent/logagent/conf"
)

// TopicState is what Check found about one topic.
type TopicState struct {
	Topic      string
	Exists     bool
	Partitions int
	// MaxMessageBytes is the topic's limit on the brokers (0: not known,
	// LimitErr says why); LimitProblem says, in plain words, what a limit
	// below max_message_bytes means ("" when it is not below), and
	// LinesSkipped whether the agent's longest lines cannot be sent to it.
	MaxMessageBytes int
	LimitErr        error
	LimitProblem    string
	LinesSkipped    bool
}

// Check connects to the brokers, as the producer would, and looks up topics.
func Check(c conf.Kafka, topics []string) (brokers int, states []TopicState, err error) {
	cfg, err := saramaConfig(c)
	if err != nil {
		return 0, nil, err
	}
	cfg.Metadata.Retry.Max = 1
	cl, err := sarama.NewClient(c.Brokers, cfg)
	if err != nil {
		return 0, nil, ExplainConn(c, fmt.Errorf("connect %v: %w", c.Brokers, err))
	}
	defer cl.Close()
	all, err := cl.Topics()
	if err != nil {
		return 0, nil, fmt.Errorf("list topics: %w", err)
	}
	for _, t := range topics {
		st := TopicState{Topic: t, Exists: slices.Contains(all, t)}
		if st.Exists {
			ps, err := cl.Partitions(t)
			if err != nil {
				return 0, nil, fmt.Errorf("partitions of %s: %w", t, err)
			}
			st.Partitions = len(ps)
		}
		states = append(states, st)
	}
	checkLimits(c, states)
	return len(cl.Brokers()), states, nil
}

// checkLimits looks up the topics' message size limits, as the producer
// does.
func checkLimits(c conf.Kafka, states []TopicState) {
	if len(states) == 0 {
		return
	}
	limits := map[string]int{}
	cl, err := adminClient(c)
	if err == nil {
		defer cl.Close()
		topics := make([]string, len(states))
		for i, st := range states {
			topics[i] = st.Topic
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		limits, err = describeLimits(ctx, cl, topics)
		cancel()
	}
	for i := range states {
		st := &states[i]
		n, ok := limits[st.Topic]
		if !ok {
			st.LimitErr = err
			if st.LimitErr == nil {
				st.LimitErr = errors.New("not described")
			}
			continue
		}
		st.MaxMessageBytes = n
		st.LimitProblem = limitProblem(c, st.Topic, n)
		st.LinesSkipped = linesSkipped(c, n)
	}
}
