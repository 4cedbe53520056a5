// Package etcd reads the host's collect config from etcd, follows its
// changes, caches the last good value on disk, and publishes the agent's
// status under a lease.
package etcd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/logagent/logagent/fleet"
)

// Entry is one element of the collect_config JSON array.
type Entry struct {
	Path     string `json:"path"`
	Topic    string `json:"topic"`
	ReadFrom string `json:"read_from,omitempty"`
	// Exclude removes matches of a glob path: each pattern is matched
	// against the file's base name, or its whole path when it starts
	// with '/'.
	Exclude []string `json:"exclude,omitempty"`
	// Multiline joins lines into records (stack traces); nil: one record
	// per line.
	Multiline *Multiline `json:"multiline,omitempty"`
}

// ParseEntries decodes a collect_config value. A value that is not a JSON
// array of objects is an error and nothing of it is used. An entry that is
// wrong on its own (empty path or topic, a relative path, an invalid topic,
// a path listed twice) is left out and reported in problems; the other
// entries stand. A non-empty list with no usable entry is an error too:
// only [] stops every file.
func ParseEntries(data []byte) (entries []Entry, problems []error, err error) {
	elems, err := fleet.DecodeList[Entry](data, "entry", "entries", `[{"path": ..., "topic": ...}]`)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]int{}
	for _, el := range elems {
		if el.Err != nil {
			problems = append(problems, el.Err)
			continue
		}
		i, e := el.N, el.V
		perr := e.check()
		if perr == nil && e.Multiline != nil {
			perr = e.Multiline.compile()
		}
		if perr != nil {
			problems = append(problems, fmt.Errorf("entry %d (%q): %w", i, e.Path, perr))
			continue
		}
		e.Path = filepath.Clean(e.Path)
		if j, dup := seen[e.Path]; dup {
			problems = append(problems, fmt.Errorf("entry %d: path %s is already listed as entry %d; ignored", i, e.Path, j))
			continue
		}
		seen[e.Path] = i
		entries = append(entries, e)
	}
	if len(elems) > 0 && len(entries) == 0 {
		// Not one usable entry in a non-empty list: a typo in a field
		// name, most likely, not a wish to stop collecting everything.
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.Error()
		}
		return nil, nil, fmt.Errorf("no usable entry (%d given): %s", len(elems), strings.Join(msgs, "; "))
	}
	return entries, problems, nil
}

func (e Entry) check() error {
	switch {
	case strings.TrimSpace(e.Path) == "":
		return errors.New("path is empty")
	case !filepath.IsAbs(e.Path):
		return errors.New("path must be absolute")
	case checkTopic(e.Topic) != nil:
		return checkTopic(e.Topic)
	case e.ReadFrom != "" && e.ReadFrom != "beginning" && e.ReadFrom != "end":
		return fmt.Errorf("read_from %q must be \"beginning\" or \"end\"", e.ReadFrom)
	}
	if err := checkGlob(e.Path); err != nil {
		return fmt.Errorf("path: %w", err)
	}
	for _, x := range e.Exclude {
		if err := checkGlob(x); x == "" || err != nil {
			return fmt.Errorf("exclude %q is not a valid pattern", x)
		}
	}
	return nil
}

// checkTopic reports whether topic can name a Kafka topic.
func checkTopic(topic string) error {
	switch {
	case topic == "":
		return errors.New("topic is empty")
	case !fleet.ValidTopic(topic):
		return fmt.Errorf("topic %q is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)", topic)
	}
	return nil
}
