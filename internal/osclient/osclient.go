// Package osclient is a small OpenSearch client over net/http, shared by
// the transfer (bulk, templates, retention) and the console (search): a
// request to the next of the configured URLs, with basic auth, and the
// body of a 2xx answer. The same calls work on Elasticsearch 8.
package osclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/logagent/logagent/conf"
)

// Client sends requests to an [opensearch] section's nodes, round robin.
type Client struct {
	urls       []string
	user, pass string
	http       *http.Client
	next       atomic.Uint32
}

// New returns a client of c's URLs, each request bounded by c.Timeout.
func New(c conf.OpenSearch) *Client {
	urls := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		urls[i] = strings.TrimRight(u, "/")
	}
	return &Client{urls: urls, user: c.Username, pass: string(c.Password),
		http: &http.Client{Timeout: c.Timeout}}
}

// StatusError is an HTTP answer other than 2xx.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body)
}

// Do sends one request to the next URL and returns the body of a 2xx
// answer, or a *StatusError (with the body), or the transport's error.
func (c *Client) Do(ctx context.Context, method, path, ctype string, body []byte) ([]byte, error) {
	base := c.urls[int(c.next.Add(1))%len(c.urls)]
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, base+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, base+path, err)
	}
	if resp.StatusCode/100 != 2 {
		return data, &StatusError{Status: resp.StatusCode, Body: Truncate(string(data), 300)}
	}
	return data, nil
}

// Indices lists the names of the indices that match pattern (_cat/indices;
// none is no error).
func (c *Client) Indices(ctx context.Context, pattern string) ([]string, error) {
	data, err := c.Do(ctx, http.MethodGet, "/_cat/indices/"+pattern+"?format=json&h=index", "", nil)
	if err != nil {
		return nil, err
	}
	var rows []struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("_cat/indices answer: %w", err)
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Index
	}
	return names, nil
}

// Truncate cuts s to n bytes, marking the cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
