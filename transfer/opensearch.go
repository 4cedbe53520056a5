package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/internal/osclient"
)

// search is the transfer's use of OpenSearch: the bulk API, the index
// template and the deletion of old daily indices. It needs no client
// library: the per-document results decide which Kafka offsets may be
// committed, and the same calls work on Elasticsearch 8.
type search struct{ *osclient.Client }

func newSearch(c conf.OpenSearch) *search { return &search{osclient.New(c)} }

// statusError is an HTTP answer other than 2xx.
type statusError = osclient.StatusError

func truncate(s string, n int) string { return osclient.Truncate(s, n) }

// Outcomes of one document in a bulk answer.
const (
	itemOK        = iota
	itemRetry     // 429 or 5xx: send it again
	itemPermanent // any other 4xx (mapping error): to the dead-letter topic
)

// itemResult is one document's outcome in a bulk answer.
type itemResult struct {
	outcome int
	reason  string // "type: reason" of OpenSearch's error
}

// errTooLarge is a bulk body OpenSearch refuses whole (413).
var errTooLarge = errors.New("bulk request too large (HTTP 413)")

// bulkPath asks for only what parseBulk reads: each item's status and
// error. The full answer repeats the index, id, version, shards and
// sequence number of every document, about 200 bytes each, which is
// 8× the bytes to read and decode.
const bulkPath = "/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason"

// bulk sends body (n documents) to _bulk and returns each document's
// outcome, in order. An error means none of them is known to be indexed.
func (s *search) bulk(ctx context.Context, body []byte, n int) ([]itemResult, error) {
	data, err := s.Do(ctx, http.MethodPost, bulkPath, "application/x-ndjson", body)
	var se *statusError
	if errors.As(err, &se) && se.Status == http.StatusRequestEntityTooLarge {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, err
	}
	return parseBulk(data, n)
}

// bulkItem is one item of a bulk answer: {"index": {...}}, the only
// action appendBulk writes.
type bulkItem struct {
	Index struct {
		Status int `json:"status"`
		Error  *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	} `json:"index"`
}

// parseBulk reads a bulk answer for n documents.
func parseBulk(data []byte, n int) ([]itemResult, error) {
	var ans struct {
		Errors bool       `json:"errors"`
		Items  []bulkItem `json:"items"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return nil, fmt.Errorf("bulk answer is not JSON: %w", err)
	}
	if len(ans.Items) != n {
		return nil, fmt.Errorf("bulk answer has %d items for %d documents", len(ans.Items), n)
	}
	res := make([]itemResult, n)
	for i := range ans.Items {
		r := &ans.Items[i].Index
		switch {
		case r.Status/100 == 2:
			res[i].outcome = itemOK
		case r.Status == http.StatusTooManyRequests || r.Status >= 500:
			res[i].outcome = itemRetry
		default:
			// Also an item without a status (not an index action's):
			// never taken for indexed.
			res[i].outcome = itemPermanent
		}
		if r.Error != nil {
			res[i].reason = fmt.Sprintf("%d %s: %s", r.Status, r.Error.Type, r.Error.Reason)
		} else if res[i].outcome != itemOK {
			res[i].reason = fmt.Sprintf("HTTP %d", r.Status)
		}
	}
	return res, nil
}

// templateName is the index template of index's daily indices.
func templateName(index string) string { return "logtransfer-" + index }

// putTemplate installs the index template of index's daily indices. Its
// pattern is <index>-2* (a daily suffix starts with the year) and its
// priority the name's length: a route index that is a prefix of another
// (logs, logs-web) matches the other's indices too, and the longer,
// more specific, template must win; equal priorities that overlap are
// refused by OpenSearch.
func (s *search) putTemplate(ctx context.Context, index string, shards, replicas int) error {
	body := IndexTemplate(index, shards, replicas)
	if _, err := s.Do(ctx, http.MethodPut, "/_index_template/"+templateName(index), "application/json", body); err != nil {
		return fmt.Errorf("install index template %s: %w", templateName(index), err)
	}
	return nil
}

// IndexTemplate is the body of the index template of index's daily
// indices (PUT /_index_template/logtransfer-<index>).
func IndexTemplate(index string, shards, replicas int) []byte {
	tmpl := map[string]any{
		"index_patterns": []string{index + "-2*"},
		"priority":       100 + len(index),
		"template": map[string]any{
			"settings": map[string]any{"number_of_shards": shards, "number_of_replicas": replicas},
			"mappings": map[string]any{"properties": map[string]any{
				"@timestamp":      map[string]string{"type": "date"},
				"message":         map[string]string{"type": "text"},
				"host":            map[string]string{"type": "keyword"},
				"path":            map[string]string{"type": "keyword"},
				"file":            map[string]string{"type": "keyword"},
				"offset":          map[string]string{"type": "long"},
				"topic":           map[string]string{"type": "keyword"},
				"kafka_partition": map[string]string{"type": "integer"},
				"kafka_offset":    map[string]string{"type": "long"},
			}},
		},
	}
	body, _ := json.Marshal(tmpl)
	return body
}

var dailyRE = regexp.MustCompile(`-(\d{4}\.\d{2}\.\d{2})$`)

// deleteOlder deletes index's daily indices whose day is more than days
// before now's (UTC), and returns their names.
func (s *search) deleteOlder(ctx context.Context, index string, days int, now time.Time) ([]string, error) {
	names, err := s.Indices(ctx, index+"-2*")
	if err != nil {
		return nil, fmt.Errorf("list indices of %s: %w", index, err)
	}
	cutoff := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
	var deleted []string
	for _, name := range names {
		m := dailyRE.FindStringSubmatch(name)
		if m == nil || name != index+m[0] {
			continue // another route's index (logs-web-… under logs) or not daily
		}
		day, err := time.Parse("2006.01.02", m[1])
		if err != nil || !day.Before(cutoff) {
			continue
		}
		if _, err := s.Do(ctx, http.MethodDelete, "/"+name, "", nil); err != nil {
			return deleted, fmt.Errorf("delete index %s: %w", name, err)
		}
		deleted = append(deleted, name)
	}
	return deleted, nil
}
