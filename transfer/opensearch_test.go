package transfer

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/internal/testenv"
)

// TestBulkOutcomes: on a real node, each document of a bulk gets its own
// outcome, in order, with OpenSearch's reason for one it refuses; the
// answer is asked for filtered (no ids, versions or shards per document),
// and a filtered answer still says all of that.
func TestBulkOutcomes(t *testing.T) {
	t.Parallel()
	node := openSearch(t)
	index := fmt.Sprintf("bulk-outcomes-%d", time.Now().UnixNano()%1e6)
	s := newSearch(conf.OpenSearch{URLs: []string{node.URL}, Timeout: 30 * time.Second})
	ctx := context.Background()
	if err := s.putTemplate(ctx, index, 1, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.DeleteIndices(index + "-*") })
	daily := index + "-2026.12.06"
	doc := func(id, source string) string {
		return fmt.Sprintf("{\"index\":{\"_index\":%q,\"_id\":%q}}\n%s\n", daily, id, source)
	}
	body := doc("a", `{"message":"first","offset":1}`) +
		doc("b", `{"message":"second","offset":"not a number"}`) + // offset is a long: a mapping error
		doc("c", `{"message":"third","offset":3}`)

	raw, err := s.Do(ctx, http.MethodPost, bulkPath, "application/x-ndjson", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"_id"`, `"_seq_no"`, `"_shards"`, `"took"`} {
		if strings.Contains(string(raw), field) {
			t.Fatalf("bulk answer not filtered (has %s): %s", field, raw)
		}
	}

	res, err := s.bulk(ctx, []byte(strings.ReplaceAll(body, `"_id":"`, `"_id":"again-`)), 3)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].outcome != itemOK || res[2].outcome != itemOK {
		t.Errorf("good documents: %+v", res)
	}
	if res[1].outcome != itemPermanent || !strings.HasPrefix(res[1].reason, "400 ") || !testenv.MappingError(res[1].reason) {
		t.Errorf("refused document: %+v, want permanent with OpenSearch's reason", res[1])
	}
	if _, err := s.bulk(ctx, []byte(body), 4); err == nil || !strings.Contains(err.Error(), "3 items for 4 documents") {
		t.Errorf("an answer with fewer items than documents: %v", err)
	}
}

// TestParseBulk: 429 and 5xx are retried, other refusals are permanent,
// an item without a status is never taken for indexed, and an answer that
// is not JSON is an error.
func TestParseBulk(t *testing.T) {
	t.Parallel()
	res, err := parseBulk([]byte(`{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},{"index":{"status":503}},{"index":{}},{"create":{"status":201}}]}`), 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []itemResult{
		{itemOK, ""},
		{itemRetry, "429 es_rejected_execution_exception: queue full"},
		{itemRetry, "HTTP 503"},
		{itemPermanent, "HTTP 0"},
		{itemPermanent, "HTTP 0"},
	}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", res, want)
	}
	if _, err := parseBulk([]byte(`<html>proxy error</html>`), 1); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Errorf("an answer that is not JSON: %v", err)
	}
}

// BenchmarkParseBulk reads the answer to a bulk of 20,000 documents, as
// OpenSearch sends it in full and as bulkPath filters it.
func BenchmarkParseBulk(b *testing.B) {
	const n = 20000
	for _, filtered := range []bool{false, true} {
		data := bulkAnswer(n, filtered)
		b.Run(fmt.Sprintf("filtered=%v", filtered), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := parseBulk(data, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// bulkAnswer is the answer to a bulk of n created documents.
func bulkAnswer(n int, filtered bool) []byte {
	var b strings.Builder
	if filtered {
		b.WriteString(`{"errors":false,"items":[`)
	} else {
		b.WriteString(`{"took":120,"errors":false,"items":[`)
	}
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if filtered {
			b.WriteString(`{"index":{"status":201}}`)
			continue
		}
		fmt.Fprintf(&b, `{"index":{"_index":"logs-web-2026.12.06","_id":"web-0042:fd01a2b3c4d5e6f7:%d","_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":%d,"_primary_term":1,"status":201}}`, i*120, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}
