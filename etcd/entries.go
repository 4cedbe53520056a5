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
	entries, problems, n, err := fleet.ParseList(data, entryList)
	if err != nil {
		return nil, nil, err
	}
	if n > 0 && len(entries) == 0 {
		// Not one usable entry in a non-empty list: a typo in a field
		// name, most likely, not a wish to stop collecting everything.
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.Error()
		}
		return nil, nil, fmt.Errorf("no usable entry (%d given): %s", n, strings.Join(msgs, "; "))
	}
	return entries, problems, nil
}

// entryList is collect_config's rules: an entry is known by its cleaned
// path.
var entryList = fleet.List[Entry]{Noun: "entry", Nouns: "entries", Example: `[{"path": ..., "topic": ...}]`,
	Check: func(i int, e *Entry) (string, error) {
		err := e.check()
		if err == nil && e.Multiline != nil {
			err = e.Multiline.compile()
		}
		if err != nil {
			return "", fmt.Errorf("entry %d (%q): %w", i, e.Path, err)
		}
		e.Path = filepath.Clean(e.Path)
		return e.Path, nil
	},
	Dup: func(i int, path string, j int) error {
		return fmt.Errorf("entry %d: path %s is already listed as entry %d; ignored", i, path, j)
	},
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
