package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/internal/osclient"
)

// The Search page searches the daily indices <index>-YYYY.MM.DD the
// transfer writes (see docs/transfer.md for their fields).

// SetSearch connects the Search page to the OpenSearch of c; without it
// (no [opensearch] section) the search API answers 503. Call it before
// Run.
func (s *Server) SetSearch(c conf.OpenSearch) {
	if len(c.URLs) > 0 {
		s.search = osclient.New(c)
	}
}

const (
	pageSize = 20
	// maxWindow is OpenSearch's default index.max_result_window: a page
	// past it is refused, so the pages end there.
	maxWindow = 10000
	// contextLines is how many lines "lines around this one" shows on
	// each side by default.
	contextLines = 10
)

var indexRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,200}$`)

// indexPattern is the daily indices of index, or of every route.
func indexPattern(index string) (string, *apiError) {
	if index == "" {
		return "*-2*", nil
	}
	if !indexRE.MatchString(index) {
		return "", errorf(http.StatusBadRequest, "index %q: want a route's index name (lower-case letters, digits, '.', '_', '-')", index)
	}
	return index + "-2*", nil
}

// searchHit is one line found.
type searchHit struct {
	Index  string    `json:"index"`
	Time   time.Time `json:"time"`
	Host   string    `json:"host"`
	Path   string    `json:"path"`
	File   string    `json:"file"`
	Offset int64     `json:"offset"`
	Line   string    `json:"line"`
	// LineHTML is the line HTML-escaped, with each match in <mark>.
	LineHTML string `json:"line_html,omitempty"`
}

type searchBucket struct {
	Time  time.Time `json:"time"`
	Count int64     `json:"count"`
}

type searchResult struct {
	Total     int64          `json:"total"`
	Page      int            `json:"page"`
	Pages     int            `json:"pages"`
	PageSize  int            `json:"page_size"`
	From      time.Time      `json:"from"`
	To        time.Time      `json:"to"`
	Interval  string         `json:"interval"`
	Histogram []searchBucket `json:"histogram"`
	Hits      []searchHit    `json:"hits"`
}

// searchRange reads from and to: from is a time (RFC 3339) or a duration
// back from now (15m, 1h, 24h; the default is 15m), to a time (default
// now).
func searchRange(q map[string][]string, now time.Time) (from, to time.Time, _ *apiError) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	to = now
	if v := get("to"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return from, to, errorf(http.StatusBadRequest, "to %q: want a time such as 2026-01-02T15:04:05Z", v)
		}
		to = t
	}
	v := get("from")
	if v == "" {
		v = "15m"
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		from = to.Add(-d)
	} else if t, err := time.Parse(time.RFC3339, v); err == nil {
		from = t
	} else {
		return from, to, errorf(http.StatusBadRequest, "from %q: want a duration back from now (15m, 1h, 24h) or a time such as 2026-01-02T15:04:05Z", v)
	}
	if !from.Before(to) {
		return from, to, errorf(http.StatusBadRequest, "from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from.UTC(), to.UTC(), nil
}

// histogramInterval is the bucket width that cuts span into at most about
// 60 bars.
func histogramInterval(span time.Duration) string {
	for _, iv := range []struct {
		s string
		d time.Duration
	}{{"1s", time.Second}, {"5s", 5 * time.Second}, {"10s", 10 * time.Second}, {"30s", 30 * time.Second},
		{"1m", time.Minute}, {"5m", 5 * time.Minute}, {"10m", 10 * time.Minute}, {"30m", 30 * time.Minute},
		{"1h", time.Hour}, {"3h", 3 * time.Hour}, {"12h", 12 * time.Hour}} {
		if span/iv.d <= 60 {
			return iv.s
		}
	}
	return "1d"
}

// osHit is one hit of an OpenSearch answer.
type osHit struct {
	Index  string `json:"_index"`
	Source struct {
		Timestamp time.Time `json:"@timestamp"`
		Message   string    `json:"message"`
		Host      string    `json:"host"`
		Path      string    `json:"path"`
		File      string    `json:"file"`
		Offset    int64     `json:"offset"`
	} `json:"_source"`
	Highlight map[string][]string `json:"highlight"`
}

func (h osHit) hit() searchHit {
	return searchHit{Index: h.Index, Time: h.Source.Timestamp.UTC(), Host: h.Source.Host, Path: h.Source.Path,
		File: h.Source.File, Offset: h.Source.Offset, Line: h.Source.Message}
}

// query sends a search to OpenSearch and decodes its answer into out.
func (s *Server) query(ctx context.Context, pattern string, body any, out any) *apiError {
	b, _ := json.Marshal(body)
	data, err := s.search.Do(ctx, http.MethodPost, "/"+pattern+"/_search?ignore_unavailable=true&allow_no_indices=true",
		"application/json", b)
	var se *osclient.StatusError
	if errors.As(err, &se) && se.Status == http.StatusBadRequest {
		return errorf(http.StatusBadRequest, "OpenSearch refused the search: %s", se.Body)
	}
	if err != nil {
		s.log.Warn("search", "err", err)
		return errorf(http.StatusBadGateway, "OpenSearch: %v", err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return errorf(http.StatusBadGateway, "OpenSearch answer: %v", err)
	}
	return nil
}

func (s *Server) searchReady() *apiError {
	if s.search == nil {
		return errorf(http.StatusServiceUnavailable, "search is not configured: add an [opensearch] section (urls = http://host:9200) to the console's configuration")
	}
	return nil
}

// apiSearch: GET /api/search?q=&host=&path=&index=&from=&to=&page= finds
// lines, newest first, 20 a page, with the matches highlighted and a
// histogram of the hits over the range.
func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request, _ *session) {
	if err := s.searchReady(); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	pattern, aerr := indexPattern(q.Get("index"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	from, to, aerr := searchRange(q, s.now())
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	page := 1
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || (n-1)*pageSize >= maxWindow {
			writeError(w, errorf(http.StatusBadRequest, "page %q: want a number from 1 to %d", v, maxWindow/pageSize))
			return
		}
		page = n
	}
	filter := []any{map[string]any{"range": map[string]any{"@timestamp": map[string]any{
		"gte": from.Format(time.RFC3339Nano), "lte": to.Format(time.RFC3339Nano)}}}}
	for _, f := range []string{"host", "path"} {
		if v := q.Get(f); v != "" {
			filter = append(filter, map[string]any{"term": map[string]any{f: v}})
		}
	}
	boolQ := map[string]any{"filter": filter}
	text := strings.TrimSpace(q.Get("q"))
	// Tags no line holds: a random token of this request. The line is
	// HTML-escaped first, and the tags then become <mark>.
	var pre, post string
	if text != "" {
		boolQ["must"] = map[string]any{"simple_query_string": map[string]any{
			"query": text, "fields": []string{"message"}, "default_operator": "and"}}
		var rnd [8]byte
		rand.Read(rnd[:])
		pre, post = "\u2045hl"+hex.EncodeToString(rnd[:]), hex.EncodeToString(rnd[:])+"hl\u2046"
	}
	interval := histogramInterval(to.Sub(from))
	body := map[string]any{
		"from": (page - 1) * pageSize, "size": pageSize, "track_total_hits": true,
		"query": map[string]any{"bool": boolQ},
		"sort": []any{map[string]any{"@timestamp": "desc"},
			map[string]any{"offset": map[string]any{"order": "desc", "unmapped_type": "long"}}},
		"aggs": map[string]any{"over_time": map[string]any{"date_histogram": map[string]any{
			"field": "@timestamp", "fixed_interval": interval, "min_doc_count": 0,
			"extended_bounds": map[string]any{"min": from.UnixMilli(), "max": to.UnixMilli()}}}},
	}
	if text != "" {
		body["highlight"] = map[string]any{"pre_tags": []string{pre}, "post_tags": []string{post},
			"fields": map[string]any{"message": map[string]any{"number_of_fragments": 0}}}
	}
	var ans struct {
		Hits struct {
			Total struct {
				Value int64 `json:"value"`
			} `json:"total"`
			Hits []osHit `json:"hits"`
		} `json:"hits"`
		Aggregations struct {
			OverTime struct {
				Buckets []struct {
					Key   int64 `json:"key"`
					Count int64 `json:"doc_count"`
				} `json:"buckets"`
			} `json:"over_time"`
		} `json:"aggregations"`
	}
	if aerr := s.query(r.Context(), pattern, body, &ans); aerr != nil {
		writeError(w, aerr)
		return
	}
	res := searchResult{Total: ans.Hits.Total.Value, Page: page, PageSize: pageSize, From: from, To: to,
		Interval: interval, Histogram: []searchBucket{}, Hits: []searchHit{}}
	res.Pages = int((min(res.Total, maxWindow) + pageSize - 1) / pageSize)
	for _, b := range ans.Aggregations.OverTime.Buckets {
		res.Histogram = append(res.Histogram, searchBucket{Time: time.UnixMilli(b.Key).UTC(), Count: b.Count})
	}
	for _, h := range ans.Hits.Hits {
		hit := h.hit()
		marked := hit.Line
		if hl := h.Highlight["message"]; len(hl) > 0 && pre != "" {
			marked = hl[0]
		}
		hit.LineHTML = markHTML(marked, pre, post)
		res.Hits = append(res.Hits, hit)
	}
	writeJSON(w, http.StatusOK, res)
}

// markHTML escapes a highlighted line and turns its tags into <mark>.
func markHTML(s, pre, post string) string {
	s = html.EscapeString(s)
	if pre == "" {
		return s
	}
	// The tags are letters, digits and two symbols html.EscapeString
	// leaves alone.
	return strings.ReplaceAll(strings.ReplaceAll(s, pre, "<mark>"), post, "</mark>")
}

// contextLine is one line of "lines around this one".
type contextLine struct {
	Offset int64     `json:"offset"`
	Time   time.Time `json:"time"`
	Path   string    `json:"path"`
	Line   string    `json:"line"`
	// This is the line asked about.
	This bool `json:"this,omitempty"`
}

// apiSearchContext: GET /api/search/context?host=&file=&offset=&index=&n=
// returns the n lines (10 by default) of the same file of the same host
// before the one at offset, that line, and the n after it, by offset.
func (s *Server) apiSearchContext(w http.ResponseWriter, r *http.Request, _ *session) {
	if err := s.searchReady(); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	host, file := q.Get("host"), q.Get("file")
	if host == "" || file == "" {
		writeError(w, errorf(http.StatusBadRequest, "host and file are required (a hit's host and file)"))
		return
	}
	offset, err := strconv.ParseInt(q.Get("offset"), 10, 64)
	if err != nil || offset < 0 {
		writeError(w, errorf(http.StatusBadRequest, "offset %q: want a line's byte offset (a whole number ≥ 0)", q.Get("offset")))
		return
	}
	n := contextLines
	if v := q.Get("n"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 500 {
			writeError(w, errorf(http.StatusBadRequest, "n %q: want a number from 1 to 500", v))
			return
		}
	}
	pattern, aerr := indexPattern(q.Get("index"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	side := func(rng, order string, size int) ([]osHit, *apiError) {
		body := map[string]any{
			"size": size,
			"query": map[string]any{"bool": map[string]any{"filter": []any{
				map[string]any{"term": map[string]any{"host": host}},
				map[string]any{"term": map[string]any{"file": file}},
				map[string]any{"range": map[string]any{"offset": map[string]any{rng: offset}}},
			}}},
			"sort": []any{map[string]any{"offset": order}},
		}
		var ans struct {
			Hits struct {
				Hits []osHit `json:"hits"`
			} `json:"hits"`
		}
		aerr := s.query(r.Context(), pattern, body, &ans)
		return ans.Hits.Hits, aerr
	}
	before, aerr := side("lt", "desc", n)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	after, aerr := side("gte", "asc", n+1)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	lines := []contextLine{}
	for i := len(before) - 1; i >= 0; i-- {
		lines = append(lines, toContextLine(before[i], offset))
	}
	for _, h := range after {
		lines = append(lines, toContextLine(h, offset))
	}
	writeJSON(w, http.StatusOK, map[string]any{"host": host, "file": file, "offset": offset, "lines": lines})
}

func toContextLine(h osHit, offset int64) contextLine {
	return contextLine{Offset: h.Source.Offset, Time: h.Source.Timestamp.UTC(), Path: h.Source.Path,
		Line: h.Source.Message, This: h.Source.Offset == offset}
}
