package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/logagent/logagent/conf"
)

// search is a small OpenSearch client over net/http: the bulk API, the
// index template and the deletion of old daily indices are all the
// transfer needs. It needs no client library: the per-document results
// decide which Kafka offsets may be committed, and the same calls work
// on Elasticsearch 8.
type search struct {
	urls       []string
	user, pass string
	http       *http.Client
	next       atomic.Uint32 // round robin over urls
}

func newSearch(c conf.OpenSearch) *search {
	urls := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		urls[i] = strings.TrimRight(u, "/")
	}
	return &search{urls: urls, user: c.Username, pass: c.Password,
		http: &http.Client{Timeout: c.Timeout}}
}

// statusError is an HTTP answer other than 2xx.
type statusError struct {
	Status int
	Body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body)
}

// do sends one request to the next URL and returns the body of a 2xx
// answer, or a *statusError, or the transport's error.
func (s *search) do(ctx context.Context, method, path, ctype string, body []byte) ([]byte, error) {
	base := s.urls[int(s.next.Add(1))%len(s.urls)]
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if s.user != "" {
		req.SetBasicAuth(s.user, s.pass)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, base+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, base+path, err)
	}
	if resp.StatusCode/100 != 2 {
		return data, &statusError{Status: resp.StatusCode, Body: truncate(string(data), 300)}
	}
	return data, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

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

// bulk sends body (n documents) to _bulk and returns each document's
// outcome, in order. An error means none of them is known to be indexed.
func (s *search) bulk(ctx context.Context, body []byte, n int) ([]itemResult, error) {
	data, err := s.do(ctx, http.MethodPost, "/_bulk", "application/x-ndjson", body)
	var se *statusError
	if errors.As(err, &se) && se.Status == http.StatusRequestEntityTooLarge {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, err
	}
	var ans struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			Status int `json:"status"`
			Error  *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return nil, fmt.Errorf("bulk answer is not JSON: %w", err)
	}
	if len(ans.Items) != n {
		return nil, fmt.Errorf("bulk answer has %d items for %d documents", len(ans.Items), n)
	}
	res := make([]itemResult, n)
	for i, it := range ans.Items {
		for _, r := range it { // one action per item: "index"
			switch {
			case r.Status/100 == 2:
				res[i].outcome = itemOK
			case r.Status == http.StatusTooManyRequests || r.Status >= 500:
				res[i].outcome = itemRetry
			default:
				res[i].outcome = itemPermanent
			}
			if r.Error != nil {
				res[i].reason = fmt.Sprintf("%d %s: %s", r.Status, r.Error.Type, r.Error.Reason)
			} else if res[i].outcome != itemOK {
				res[i].reason = fmt.Sprintf("HTTP %d", r.Status)
			}
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
	if _, err := s.do(ctx, http.MethodPut, "/_index_template/"+templateName(index), "application/json", body); err != nil {
		return fmt.Errorf("install index template %s: %w", templateName(index), err)
	}
	return nil
}

var dailyRE = regexp.MustCompile(`-(\d{4}\.\d{2}\.\d{2})$`)

// deleteOlder deletes index's daily indices whose day is more than days
// before now's (UTC), and returns their names.
func (s *search) deleteOlder(ctx context.Context, index string, days int, now time.Time) ([]string, error) {
	data, err := s.do(ctx, http.MethodGet, "/_cat/indices/"+index+"-2*?format=json&h=index", "", nil)
	if err != nil {
		return nil, fmt.Errorf("list indices of %s: %w", index, err)
	}
	var rows []struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("list indices of %s: %w", index, err)
	}
	cutoff := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
	var deleted []string
	for _, r := range rows {
		m := dailyRE.FindStringSubmatch(r.Index)
		if m == nil || r.Index != index+m[0] {
			continue // another route's index (logs-web-… under logs) or not daily
		}
		day, err := time.Parse("2006.01.02", m[1])
		if err != nil || !day.Before(cutoff) {
			continue
		}
		if _, err := s.do(ctx, http.MethodDelete, "/"+r.Index, "", nil); err != nil {
			return deleted, fmt.Errorf("delete index %s: %w", r.Index, err)
		}
		deleted = append(deleted, r.Index)
	}
	return deleted, nil
}
