package transfer

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDocID(t *testing.T) {
	hdr := func(kv ...string) []kgo.RecordHeader {
		var h []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			h = append(h, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return h
	}
	tests := []struct {
		name string
		r    *kgo.Record
		want string
	}{
		{"agent record", &kgo.Record{Topic: "t", Partition: 1, Offset: 7, Key: []byte("web-1:ab12:42"),
			Headers: hdr("host", "web-1", "path", "/var/log/a.log", "offset", "42", "file", "ab12")}, "web-1:ab12:42"},
		// [kafka] key = path: the key is the path, shared by every line of the file.
		{"key is the path", &kgo.Record{Topic: "t", Offset: 8, Key: []byte("/var/log/a.log"),
			Headers: hdr("host", "web-1", "path", "/var/log/a.log", "offset", "50", "file", "ab12")}, "web-1:ab12:50"},
		{"no headers", &kgo.Record{Topic: "t", Partition: 2, Offset: 9, Key: []byte("user-5")}, "t+2+9"},
		{"no file header", &kgo.Record{Topic: "t", Partition: 0, Offset: 3, Headers: hdr("host", "h", "offset", "1")}, "t+0+3"},
		{"offset not a number", &kgo.Record{Topic: "t", Offset: 4, Headers: hdr("host", "h", "file", "f", "offset", "x")}, "t+0+4"},
	}
	for _, tc := range tests {
		if got := docID(tc.r); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestIndexName(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 12, 6, 23, 59, 59, 0, time.UTC), "logs-web-2026.12.06"},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "logs-web-2027.01.01"},
		// The day is UTC's, whatever the zone of the timestamp.
		{time.Date(2026, 12, 7, 3, 0, 0, 0, shanghai), "logs-web-2026.12.06"},
	}
	for _, tc := range tests {
		if got := indexName("logs-web", tc.t); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.t, got, tc.want)
		}
	}
}

func TestAppendBulk(t *testing.T) {
	ts := time.Date(2026, 12, 6, 7, 8, 9, 123e6, time.UTC)
	r := &kgo.Record{Topic: "web_log", Partition: 1, Offset: 77, Timestamp: ts,
		Value: []byte("GET /a?b=<c>&d \"q\" \xff end"),
		Headers: []kgo.RecordHeader{{Key: "host", Value: []byte("web-1")}, {Key: "path", Value: []byte("/var/log/a.log")},
			{Key: "offset", Value: []byte("1024")}, {Key: "file", Value: []byte("ab12")}}}
	var buf bytes.Buffer
	if err := appendBulk(&buf, r, "logs-web"); err != nil {
		t.Fatal(err)
	}
	if err := appendBulk(&buf, &kgo.Record{Topic: "t", Offset: 5, Timestamp: ts, Value: []byte("x")}, "logs"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if len(lines) != 5 || lines[4] != "" {
		t.Fatalf("want 4 lines each ending in \\n (NDJSON), got %q", buf.String())
	}
	if lines[0] != `{"index":{"_index":"logs-web-2026.12.06","_id":"web-1:ab12:1024"}}` {
		t.Errorf("action: %s", lines[0])
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"@timestamp": "2026-12-06T07:08:09.123Z", "message": "GET /a?b=<c>&d \"q\" \ufffd end",
		"host": "web-1", "path": "/var/log/a.log", "file": "ab12", "offset": float64(1024),
		"topic": "web_log", "kafka_partition": float64(1), "kafka_offset": float64(77)}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %#v, want %#v", k, doc[k], v)
		}
	}
	if len(doc) != len(want) {
		t.Errorf("document has %d fields: %v", len(doc), doc)
	}
	// A record without the agent's headers has no host, path, file, offset.
	if lines[2] != `{"index":{"_index":"logs-2026.12.06","_id":"t+0+5"}}` ||
		lines[3] != `{"@timestamp":"2026-12-06T07:08:09.123Z","message":"x","topic":"t","kafka_partition":0,"kafka_offset":5}` {
		t.Errorf("record without headers:\n%s\n%s", lines[2], lines[3])
	}
}
