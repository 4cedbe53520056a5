// Package etcd reads the host's collect config from etcd, follows its
// changes, caches the last good value on disk, and publishes the agent's
// status under a lease.
package etcd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
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

// ConfigKey is the etcd key holding host's collect config.
func ConfigKey(host string) string { return "/logagent/" + host + "/collect_config" }

// StatusKey is the etcd key where the agent of host publishes its status.
func StatusKey(host string) string { return "/logagent/" + host + "/status" }

var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// ParseEntries decodes a collect_config value. A value that is not a JSON
// array of objects is an error and nothing of it is used. An entry that is
// wrong on its own (empty path or topic, a relative path, an invalid topic,
// a path listed twice) is left out and reported in problems; the other
// entries stand. A non-empty list with no usable entry is an error too:
// only [] stops every file.
func ParseEntries(data []byte) (entries []Entry, problems []error, err error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// Not Go's words ("cannot unmarshal object into Go value of
			// type []json.RawMessage"): what was expected and what came.
			return nil, nil, fmt.Errorf("not a JSON array of entries: expected [{\"path\": ..., \"topic\": ...}], got a JSON %s", te.Value)
		}
		return nil, nil, fmt.Errorf("not a JSON array of entries: %w", err)
	}
	// json.Unmarshal takes null for an empty slice; taken as such it would
	// stop every file on a value that is not the documented array.
	if raw == nil {
		return nil, nil, fmt.Errorf("not a JSON array of entries: %s", bytes.TrimSpace(data))
	}
	// Entries are numbered from 1 in errors, as an operator counts them.
	seen := map[string]int{}
	for i0, r := range raw {
		i := i0 + 1
		if t := bytes.TrimSpace(r); len(t) == 0 || t[0] != '{' {
			return nil, nil, fmt.Errorf("entry %d: not an object: %s", i, r)
		}
		var e Entry
		dec := json.NewDecoder(strings.NewReader(string(r)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, nil, fmt.Errorf("entry %d: field %q must be a %s", i, te.Field, te.Type)
			}
			problems = append(problems, fmt.Errorf("entry %d: %w", i, err))
			continue
		}
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
	if len(raw) > 0 && len(entries) == 0 {
		// Not one usable entry in a non-empty list: a typo in a field
		// name, most likely, not a wish to stop collecting everything.
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.Error()
		}
		return nil, nil, fmt.Errorf("no usable entry (%d given): %s", len(raw), strings.Join(msgs, "; "))
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
	case !topicRE.MatchString(topic) || topic == "." || topic == "..":
		return fmt.Errorf("topic %q is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)", topic)
	}
	return nil
}
