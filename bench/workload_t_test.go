package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAppendTDocIsTheTransfers: the bare bulk loop sends, byte for byte,
// what the transfer's appendBulk makes of the same record (the expected
// text is its output for a record with the agent's headers, topic
// bench-t-x, partition 0, Kafka offset 2): the two contenders of workload
// T index the same documents.
func TestAppendTDocIsTheTransfers(t *testing.T) {
	ts := time.Date(2026, 12, 6, 7, 8, 9, 123e6, time.UTC)
	var buf bytes.Buffer
	appendTDoc(&buf, "idx", "bench-t-x", 2, []byte(`10.0.0.2 - - "GET /a?b=<c>&d" 200`), 230, ts)
	want := `{"index":{"_index":"idx-2026.12.06","_id":"bench-t:bench-file-1:230"}}` + "\n" +
		`{"@timestamp":"2026-12-06T07:08:09.123Z","message":"10.0.0.2 - - \"GET /a?b=<c>&d\" 200","host":"bench-t",` +
		`"path":"/var/log/nginx/access.log","file":"bench-file-1","offset":230,"topic":"bench-t-x","kafka_partition":0,"kafka_offset":2}` + "\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// TestSplitBulk: bodies of at most the limit, cut between documents (an
// action line and its source line stay together), every document once.
func TestSplitBulk(t *testing.T) {
	var body bytes.Buffer
	for i := range 10 {
		fmt.Fprintf(&body, "{\"index\":{\"_id\":\"%d\"}}\n{\"m\":\"%s\"}\n", i, strings.Repeat("x", i*10))
	}
	for _, limit := range []int{1, 60, 150, 400, 1 << 20} {
		parts, counts := splitBulk(body.Bytes(), limit)
		var joined []byte
		total := 0
		for i, p := range parts {
			lines := strings.Split(strings.TrimSuffix(string(p), "\n"), "\n")
			if len(lines) != 2*counts[i] || !strings.HasPrefix(lines[0], `{"index"`) {
				t.Errorf("limit %d: part %d has %d lines for %d documents: %q", limit, i, len(lines), counts[i], p)
			}
			if len(p) > limit && counts[i] > 1 {
				t.Errorf("limit %d: part %d has %d bytes and %d documents", limit, i, len(p), counts[i])
			}
			joined = append(joined, p...)
			total += counts[i]
		}
		if !bytes.Equal(joined, body.Bytes()) || total != 10 {
			t.Errorf("limit %d: %d documents; parts joined differ from the body: %v", limit, total, !bytes.Equal(joined, body.Bytes()))
		}
		if limit == 1<<20 && len(parts) != 1 {
			t.Errorf("limit %d: %d parts, want 1", limit, len(parts))
		}
	}
}

// TestLatOffsets: the offsets the latency run computes are where its lines
// start in the followed file (the warm-up line, then writeAtRate's lines,
// each stamped with its own write time), so that a GET by the agent's id
// (host:file:offset) asks for the line meant.
func TestLatOffsets(t *testing.T) {
	const n = 2000
	base := time.Now().UnixNano()
	file := latLine(nil, base, 0)
	starts := []int{0}
	for seq := int64(1); seq <= n; seq++ {
		starts = append(starts, len(file))
		file = latLine(file, base+seq*997, seq)
	}
	offs := latOffsets(n)
	if len(offs) != n+1 {
		t.Fatalf("%d offsets, want %d", len(offs), n+1)
	}
	for seq, want := range starts {
		if offs[seq] != int64(want) {
			t.Fatalf("line %d: offset %d, want %d", seq, offs[seq], want)
		}
		if _, got, ok := parseLat(file[want:]); !ok || got != int64(seq) {
			t.Fatalf("line at offset %d is seq %d (ok %v), want %d", want, got, ok, seq)
		}
	}
}
