package etcd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/logagent/logagent/fleet"
)

// SysCollectors are the Sys Agent's collectors, in record order: the
// default when the config names none.
var SysCollectors = []string{"cpu", "load", "memory", "disk", "filesystem", "network"}

// Bounds of the Sys Agent's interval and buffer.
const (
	MinSysInterval   = time.Second
	MaxSysInterval   = time.Hour
	DefaultSysBuffer = time.Hour
	MaxSysBuffer     = 24 * time.Hour
)

// SysConfig is the value of the sys_config key: the Sys Agent samples the
// host every Interval and sends each sample to Topic.
type SysConfig struct {
	Topic      string        `json:"topic"`
	Interval   time.Duration `json:"-"`
	Collectors []string      `json:"collectors"`
	// Buffer is how much time's worth of samples wait while Kafka is
	// down; beyond it the oldest are dropped.
	Buffer time.Duration `json:"-"`
}

// NewSysSource returns a follower of host's sys_config key, cached as
// sys_config.json in dataDir. It delivers nil while the key is absent.
func NewSysSource(c *Client, host, dataDir string, timeout time.Duration, hooks Hooks, log *slog.Logger) *Follower[*SysConfig] {
	return NewFollower(c, Spec[*SysConfig]{Key: fleet.SysConfigKey(host), Cache: "sys_config.json", What: "sys config",
		AbsentMeans: "the Sys Agent is off",
		Parse: func(v []byte) (*SysConfig, []error, error) {
			c, err := ParseSysConfig(v)
			return c, nil, err
		},
		Attrs: func(c *SysConfig) []any {
			if c == nil {
				return []any{"sys_agent", "off"}
			}
			return []any{"topic", c.Topic, "interval", c.Interval, "collectors", c.Collectors}
		}}, dataDir, timeout, hooks, log)
}

// BufferSamples is how many samples Buffer holds (at least one).
func (c *SysConfig) BufferSamples() int { return max(1, int(c.Buffer/c.Interval)) }

// ParseSysConfig validates a sys_config value: the one check the agent and
// the console share. An empty value (the key is absent) is nil: the Sys
// Agent is off. Anything wrong is an error and nothing of the value is
// used.
func ParseSysConfig(data []byte) (*SysConfig, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var raw struct {
		Topic      *string   `json:"topic"`
		Interval   *string   `json:"interval"`
		Collectors *[]string `json:"collectors"`
		Buffer     *string   `json:"buffer"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return nil, fmt.Errorf(`not a JSON object: expected {"topic": ..., "interval": ...}, got a JSON %s`, te.Value)
			}
			return nil, fmt.Errorf("field %q must be a %s", te.Field, te.Type)
		}
		return nil, fmt.Errorf(`not a sys config {"topic": ..., "interval": ...}: %w`, err)
	}
	if dec.More() {
		return nil, errors.New("not a single JSON object: data after it")
	}
	c := &SysConfig{Buffer: DefaultSysBuffer}
	switch {
	case raw.Topic == nil:
		return nil, errors.New(`"topic" is missing`)
	case raw.Interval == nil:
		return nil, errors.New(`"interval" is missing (e.g. "10s")`)
	}
	c.Topic = *raw.Topic
	if err := checkTopic(c.Topic); err != nil {
		return nil, err
	}
	var err error
	if c.Interval, err = parseDuration("interval", *raw.Interval, MinSysInterval, MaxSysInterval); err != nil {
		return nil, err
	}
	if raw.Buffer != nil {
		if c.Buffer, err = parseDuration("buffer", *raw.Buffer, c.Interval, MaxSysBuffer); err != nil {
			return nil, err
		}
	}
	if raw.Collectors == nil {
		c.Collectors = slices.Clone(SysCollectors)
		return c, nil
	}
	if len(*raw.Collectors) == 0 {
		return nil, fmt.Errorf(`"collectors" is empty: leave it out for all (%s), or delete the key to stop the Sys Agent`, strings.Join(SysCollectors, ", "))
	}
	for _, name := range *raw.Collectors {
		if !slices.Contains(SysCollectors, name) {
			return nil, fmt.Errorf("unknown collector %q (known: %s)", name, strings.Join(SysCollectors, ", "))
		}
		if slices.Contains(c.Collectors, name) {
			return nil, fmt.Errorf("collector %q is listed twice", name)
		}
		c.Collectors = append(c.Collectors, name)
	}
	return c, nil
}

func parseDuration(field, s string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %q is not a duration (e.g. \"10s\", \"1m\")", field, s)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%q: %s is out of range (%s to %s)", field, s, lo, hi)
	}
	return d, nil
}
