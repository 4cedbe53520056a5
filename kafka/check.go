package kafka

import (
	"fmt"
	"slices"

	"github.com/IBM/sarama"

	"github.com/logagent/logagent/conf"
)

// TopicState is what Check found about one topic.
type TopicState struct {
	Topic      string
	Exists     bool
	Partitions int
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
		return 0, nil, fmt.Errorf("connect %v: %w", c.Brokers, err)
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
	return len(cl.Brokers()), states, nil
}
