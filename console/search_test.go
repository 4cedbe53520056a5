package console

// The Search page's API against a real OpenSearch node (started by
// scripts/opensearch.sh; skipped without it unless LOGAGENT_E2E=1), with
// documents indexed through the transfer's index template and _bulk.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logagent/logagent/internal/testenv"
	"github.com/logagent/logagent/transfer"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopSharedOpenSearch()
	os.Exit(code)
}

// testDoc is one line as the transfer indexes it.
type testDoc struct {
	Time    time.Time
	Host    string
	Path    string
	File    string
	Offset  int64
	Message string
}

// indexDocs installs the transfer's template of index and indexes docs
// into its daily indices with _bulk, refreshed.
func indexDocs(t *testing.T, node *testenv.OpenSearch, index string, docs []testDoc) {
	t.Helper()
	if _, err := node.Do("PUT", "/_index_template/logtransfer-"+index, string(transfer.IndexTemplate(index, 1, 0))); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, d := range docs {
		enc.Encode(map[string]any{"index": map[string]string{
			"_index": index + "-" + d.Time.UTC().Format("2006.01.02"),
			"_id":    fmt.Sprintf("%s:%s:%d", d.Host, d.File, d.Offset)}})
		enc.Encode(map[string]any{"@timestamp": d.Time.UTC().Format(time.RFC3339Nano), "message": d.Message,
			"host": d.Host, "path": d.Path, "file": d.File, "offset": d.Offset})
	}
	req, _ := http.NewRequest("POST", node.URL+"/_bulk?refresh=true", &b)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || bytes.Contains(data, []byte(`"errors":true`)) {
		t.Fatalf("bulk: %d %s", resp.StatusCode, data)
	}
}

// searchHarness is a console searching a real OpenSearch node.
func searchHarness(t *testing.T) (*harness, *testenv.OpenSearch) {
	root, _ := filepath.Abs("..")
	node := testenv.SharedOpenSearch(t, root)
	h := newHarness(t)
	h.search.URLs = []string{node.URL}
	h.search.Timeout = 30 * time.Second
	h.start()
	return h, node
}

// TestSearchNotConfigured: without [opensearch], the API answers 503 in
// the one error shape, and the page says search is not configured.
func TestSearchNotConfigured(t *testing.T) {
	h := newHarness(t)
	h.start()
	c := h.login("viv")
	for _, path := range []string{"/api/search?q=x", "/api/search/context?host=a&file=1&offset=0"} {
		var e apiError
		if st := c.do("GET", path, nil, &e); st != 503 || e.Status != 503 || !strings.Contains(e.Message, "[opensearch]") {
			t.Errorf("%s: %d %+v", path, st, e)
		}
	}
	resp, err := c.http.Get(h.srv.URL() + "/search")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Search is not configured") || strings.Contains(string(body), `id="search-form"`) {
		t.Errorf("page: %d %s", resp.StatusCode, body)
	}
}

func TestSearch(t *testing.T) {
	h, node := searchHarness(t)
	const index = "search-test"
	now := time.Now().UTC()
	var docs []testDoc
	for i := range 30 { // a.log: offsets 0, 100, … 2900, 10 s apart, the last 10 s ago
		docs = append(docs, testDoc{now.Add(-time.Duration(30-i) * 10 * time.Second), "web1", "/var/log/a.log", "1:2",
			int64(i) * 100, fmt.Sprintf("GET /item/%d alpha", i)})
	}
	docs = append(docs,
		testDoc{now.Add(-time.Minute), "web2", "/var/log/b.log", "1:3", 0, `<script>alert("x")</script> beta & co`},
		testDoc{now.Add(-2 * time.Hour), "web1", "/var/log/a.log", "1:9", 0, "old gamma line"})
	indexDocs(t, node, index, docs)
	c := h.login("viv")
	search := func(q url.Values) searchResult {
		t.Helper()
		q.Set("index", index)
		var res searchResult
		if st := c.do("GET", "/api/search?"+q.Encode(), nil, &res); st != 200 {
			t.Fatalf("%s: status %d", q.Encode(), st)
		}
		var sum int64
		for _, b := range res.Histogram {
			sum += b.Count
		}
		if sum != res.Total {
			t.Errorf("%s: histogram counts %d hits, total %d", q.Encode(), sum, res.Total)
		}
		return res
	}

	t.Run("free text, highlight escaped", func(t *testing.T) {
		res := search(url.Values{"q": {"beta"}})
		if res.Total != 1 || len(res.Hits) != 1 {
			t.Fatalf("%+v", res)
		}
		hit := res.Hits[0]
		if hit.Host != "web2" || hit.Path != "/var/log/b.log" || hit.File != "1:3" || hit.Offset != 0 || hit.Line != docs[30].Message {
			t.Errorf("%+v", hit)
		}
		want := `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; <mark>beta</mark> &amp; co`
		if hit.LineHTML != want {
			t.Errorf("line_html %q, want %q", hit.LineHTML, want)
		}
	})
	t.Run("newest first, paged", func(t *testing.T) {
		p1 := search(url.Values{"q": {"alpha"}})
		if p1.Total != 30 || p1.Pages != 2 || len(p1.Hits) != 20 || p1.Hits[0].Offset != 2900 || p1.Hits[19].Offset != 1000 {
			t.Fatalf("page 1: total %d pages %d hits %d", p1.Total, p1.Pages, len(p1.Hits))
		}
		if !strings.Contains(p1.Hits[0].LineHTML, "<mark>alpha</mark>") {
			t.Errorf("%q", p1.Hits[0].LineHTML)
		}
		p2 := search(url.Values{"q": {"alpha"}, "page": {"2"}})
		if len(p2.Hits) != 10 || p2.Hits[0].Offset != 900 || p2.Hits[9].Offset != 0 {
			t.Fatalf("page 2: %+v", p2.Hits)
		}
	})
	t.Run("filters", func(t *testing.T) {
		if res := search(url.Values{"host": {"web2"}}); res.Total != 1 {
			t.Errorf("host=web2: %d", res.Total)
		}
		if res := search(url.Values{"path": {"/var/log/a.log"}}); res.Total != 30 {
			t.Errorf("path: %d", res.Total)
		}
		if res := search(url.Values{"host": {"web2"}, "q": {"alpha"}}); res.Total != 0 {
			t.Errorf("host=web2 q=alpha: %d", res.Total)
		}
		if res := search(url.Values{"host": {"web"}}); res.Total != 0 {
			t.Errorf("host=web (a term, not a prefix): %d", res.Total)
		}
	})
	t.Run("time range", func(t *testing.T) {
		if res := search(url.Values{"q": {"gamma"}}); res.Total != 0 {
			t.Errorf("last 15 min: %d", res.Total)
		}
		if res := search(url.Values{"q": {"gamma"}, "from": {"24h"}}); res.Total != 1 || res.Interval != "30m" {
			t.Errorf("last 24 h: %d, bars of %s", res.Total, res.Interval)
		}
		res := search(url.Values{"from": {now.Add(-3 * time.Hour).Format(time.RFC3339)}, "to": {now.Add(-time.Hour).Format(time.RFC3339)}})
		if res.Total != 1 || res.Hits[0].Line != "old gamma line" {
			t.Errorf("custom: %+v", res)
		}
		if res := search(url.Values{"from": {"1h"}}); res.Total != 31 || len(res.Histogram) < 12 {
			t.Errorf("last 1 h: %d, %d bars", res.Total, len(res.Histogram))
		}
	})
	t.Run("context", func(t *testing.T) {
		var ans struct {
			Lines []contextLine `json:"lines"`
		}
		if st := c.do("GET", "/api/search/context?host=web1&file=1:2&offset=1500", nil, &ans); st != 200 {
			t.Fatal(st)
		}
		if len(ans.Lines) != 21 || ans.Lines[0].Offset != 500 || ans.Lines[20].Offset != 2500 || !ans.Lines[10].This ||
			ans.Lines[10].Line != "GET /item/15 alpha" || ans.Lines[9].This {
			t.Errorf("%+v", ans.Lines)
		}
		// The start of the file, and another file of the same host is
		// not mixed in.
		if st := c.do("GET", "/api/search/context?host=web1&file=1:9&offset=0&n=3", nil, &ans); st != 200 || len(ans.Lines) != 1 {
			t.Errorf("%d %+v", st, ans.Lines)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, q := range []string{"from=yesterday", "to=now", "page=0", "page=501", "index=Logs*", "from=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)) + "&to=" + url.QueryEscape(now.Add(-3*time.Hour).Format(time.RFC3339))} {
			var e apiError
			if st := c.do("GET", "/api/search?"+q, nil, &e); st != 400 || e.Status != 400 || e.Message == "" {
				t.Errorf("%s: %d %+v", q, st, e)
			}
		}
		for _, q := range []string{"host=web1&offset=1", "host=web1&file=1:2&offset=-1", "host=web1&file=1:2&offset=1&n=0"} {
			var e apiError
			if st := c.do("GET", "/api/search/context?"+q, nil, &e); st != 400 || e.Status != 400 {
				t.Errorf("%s: %d %+v", q, st, e)
			}
		}
	})
}
