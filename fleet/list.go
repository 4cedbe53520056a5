package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// List says what a JSON list in etcd holds (collect_config,
// /logtransfer/config) and how its elements are checked: the rules both
// share live in ParseList, their own in Check.
type List[T any] struct {
	Noun, Nouns string // one element and the list in errors: "entry", "entries"
	Example     string // the expected shape: [{"path": ..., "topic": ...}]
	// Check validates element n (counted from 1, as an operator counts)
	// and may normalise it; it returns the key by which an element listed
	// twice is known, or why it is left out.
	Check func(n int, v *T) (key string, err error)
	// Dup is the problem of element n, whose key element first has.
	Dup func(n int, key string, first int) error
}

// ParseList decodes data, a JSON array of objects, each into a T with
// unknown fields refused, and checks each. A value that is not a JSON array
// of objects, or an element with a field of the wrong JSON type, is an
// error and nothing of it is used. An element that does not decode
// otherwise (an unknown field: a typo), that Check rejects, or whose key
// an earlier one has, is left out and reported in problems, in order; the
// others stand. n is how many elements the array holds: the caller says
// what a non-empty list with no usable element means.
func ParseList[T any](data []byte, l List[T]) (items []T, problems []error, n int, err error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// Not Go's words ("cannot unmarshal object into Go value of
			// type []json.RawMessage"): what was expected and what came.
			return nil, nil, 0, fmt.Errorf("not a JSON array of %s: expected %s, got a JSON %s", l.Nouns, l.Example, te.Value)
		}
		return nil, nil, 0, fmt.Errorf("not a JSON array of %s: %w", l.Nouns, err)
	}
	// json.Unmarshal takes null for an empty slice; taken as such it would
	// stop everything on a value that is not the documented array.
	if raw == nil {
		return nil, nil, 0, fmt.Errorf("not a JSON array of %s: %s", l.Nouns, bytes.TrimSpace(data))
	}
	seen := map[string]int{}
	for i0, r := range raw {
		i := i0 + 1
		if t := bytes.TrimSpace(r); len(t) == 0 || t[0] != '{' {
			return nil, nil, 0, fmt.Errorf("%s %d: not an object: %s", l.Noun, i, r)
		}
		var v T
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, nil, 0, fmt.Errorf("%s %d: field %q must be a %s", l.Noun, i, te.Field, te.Type)
			}
			problems = append(problems, fmt.Errorf("%s %d: %w", l.Noun, i, err))
			continue
		}
		key, err := l.Check(i, &v)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if j, dup := seen[key]; dup {
			problems = append(problems, l.Dup(i, key, j))
			continue
		}
		seen[key] = i
		items = append(items, v)
	}
	return items, problems, len(raw), nil
}

var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// ValidTopic reports whether topic can name a Kafka topic: 1 to 249
// letters, digits, '.', '_', '-', and not "." or "..".
func ValidTopic(topic string) bool {
	return topicRE.MatchString(topic) && topic != "." && topic != ".."
}
