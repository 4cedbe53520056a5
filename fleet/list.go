package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// Element is one element of a JSON list in etcd, N counted from 1 as an
// operator counts. Err says why it did not decode (V is then not used).
type Element[T any] struct {
	N   int
	V   T
	Err error
}

// DecodeList decodes data, a JSON array of objects, each into a T with
// unknown fields refused: the shape of every list in etcd (collect_config,
// /logtransfer/config). noun names one element in errors ("entry"), nouns
// the list ("entries"), example its expected shape.
//
// A value that is not a JSON array of objects, or an element with a field
// of the wrong JSON type, is an error and nothing of it is used. An element
// that does not decode otherwise (an unknown field: a typo) has its Err:
// the caller reports it among the problems, in order, with those it finds
// checking the others' values.
func DecodeList[T any](data []byte, noun, nouns, example string) ([]Element[T], error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// Not Go's words ("cannot unmarshal object into Go value of
			// type []json.RawMessage"): what was expected and what came.
			return nil, fmt.Errorf("not a JSON array of %s: expected %s, got a JSON %s", nouns, example, te.Value)
		}
		return nil, fmt.Errorf("not a JSON array of %s: %w", nouns, err)
	}
	// json.Unmarshal takes null for an empty slice; taken as such it would
	// stop everything on a value that is not the documented array.
	if raw == nil {
		return nil, fmt.Errorf("not a JSON array of %s: %s", nouns, bytes.TrimSpace(data))
	}
	elems := make([]Element[T], 0, len(raw))
	for i0, r := range raw {
		i := i0 + 1
		if t := bytes.TrimSpace(r); len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("%s %d: not an object: %s", noun, i, r)
		}
		var v T
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, fmt.Errorf("%s %d: field %q must be a %s", noun, i, te.Field, te.Type)
			}
			elems = append(elems, Element[T]{N: i, Err: fmt.Errorf("%s %d: %w", noun, i, err)})
			continue
		}
		elems = append(elems, Element[T]{N: i, V: v})
	}
	return elems, nil
}

var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// ValidTopic reports whether topic can name a Kafka topic: 1 to 249
// letters, digits, '.', '_', '-', and not "." or "..".
func ValidTopic(topic string) bool {
	return topicRE.MatchString(topic) && topic != "." && topic != ".."
}
