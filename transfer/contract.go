// Package transfer consumes the topics listed in etcd at /logtransfer/config
// in a Kafka consumer group and indexes every record into OpenSearch with
// the bulk API, the record's line id as the document id. Kafka offsets are
// committed only after OpenSearch accepted every record they cover, so a
// line is in the index exactly once whatever crashed where.
package transfer

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/logagent/logagent/fleet"
)

// Route sends one topic into one family of daily indices, <index>-YYYY.MM.DD.
type Route struct {
	Topic string `json:"topic"`
	Index string `json:"index"`
}

// indexRE is an OpenSearch index name (lowercase, none of \/*?"<>| ,#:,
// not starting with - _ +), less the room the daily suffix takes.
var indexRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,243}$`)

// ParseRoutes decodes and validates a /logtransfer/config value. It is the
// one validation of that key: the transfer and the console call it. A value
// that is not a JSON array of objects is an error and nothing of it is
// used. A route that is wrong on its own (a bad topic or index name, an
// unknown field, a topic listed twice) is left out and reported in
// problems; the others stand. A non-empty list with no usable route is an
// error too: only [] stops every topic.
func ParseRoutes(data []byte) (routes []Route, problems []error, err error) {
	routes, problems, n, err := fleet.ParseList(data, routeList)
	if err != nil {
		return nil, nil, err
	}
	if n > 0 && len(routes) == 0 {
		return nil, problems, fmt.Errorf("no usable route among %d: %w", n, errors.Join(problems...))
	}
	return routes, problems, nil
}

// routeList is /logtransfer/config's rules: a route is known by its topic.
var routeList = fleet.List[Route]{Noun: "route", Nouns: "routes", Example: `[{"topic": ..., "index": ...}]`,
	Check: func(i int, rt *Route) (string, error) {
		if err := rt.check(); err != nil {
			return "", fmt.Errorf("route %d (topic %q): %w", i, rt.Topic, err)
		}
		return rt.Topic, nil
	},
	Dup: func(i int, topic string, j int) error {
		return fmt.Errorf("route %d: topic %s is already routed by route %d; ignored", i, topic, j)
	},
}

func (r Route) check() error {
	switch {
	case r.Topic == "":
		return errors.New(`"topic" is required`)
	case !fleet.ValidTopic(r.Topic):
		return fmt.Errorf("invalid topic %q (letters, digits, '.', '_', '-', at most 249)", r.Topic)
	case r.Index == "":
		return errors.New(`"index" is required`)
	case !indexRE.MatchString(r.Index):
		if strings.ToLower(r.Index) != r.Index {
			return fmt.Errorf("invalid index %q: index names are lowercase", r.Index)
		}
		return fmt.Errorf("invalid index %q (lowercase letters, digits, '.', '_', '-', starting with a letter or digit, at most 244: a daily suffix -YYYY.MM.DD is added)", r.Index)
	}
	return nil
}
