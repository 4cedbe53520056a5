package console

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logagent/logagent/fleet"
)

// TestTail: the live tail streams the host's lines from the topics of its
// entries, by the record's host header (and path header when asked), and
// nothing of another host.
func TestTail(t *testing.T) {
	h := newHarness(t)
	k := h.startKafka()
	h.start()
	h.put(fleet.ConfigKey("web1"), `[{"path": "/var/log/a.log", "topic": "t"}, {"path": "/var/log/b.log", "topic": "t"}]`)
	c := h.login("viv")

	prod, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce := func(host, path, value string) {
		t.Helper()
		rec := &kgo.Record{Topic: "t", Value: []byte(value), Headers: []kgo.RecordHeader{
			{Key: "host", Value: []byte(host)}, {Key: "path", Value: []byte(path)}, {Key: "offset", Value: []byte("42")}}}
		if err := prod.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"a 1", "b 1"}},
		// The lines of the last few seconds come first: a 1 may too.
		{"?path=/var/log/a.log", []string{"a 2"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL()+"/api/hosts/web1/tail"+tc.query, nil)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("tail%s: %d %s", tc.query, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(resp.Body)
		event := func() (string, string) {
			var name string
			for sc.Scan() {
				if n, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
					name = n
				}
				if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					return name, d
				}
			}
			t.Fatalf("tail%s ended: %v", tc.query, sc.Err())
			return "", ""
		}
		if name, _ := event(); name != "ready" {
			t.Fatalf("first event %q", name)
		}
		n := tc.want[0][2:]
		produce("web2", "/var/log/a.log", "other host "+n)
		produce("web1", "/var/log/a.log", "a "+n)
		produce("web1", "/var/log/b.log", "b "+n)
		var got []string
		for len(got) == 0 || got[len(got)-1] != tc.want[len(tc.want)-1] {
			name, data := event()
			if name != "line" {
				t.Fatalf("event %s %s", name, data)
			}
			var l tailLine
			json.Unmarshal([]byte(data), &l)
			if l.Topic != "t" || l.Offset != 42 || !strings.HasPrefix(l.Path, "/var/log/") {
				t.Errorf("line %+v", l)
			}
			got = append(got, l.Value)
		}
		if tc.query != "" && got[0] == "a 1" {
			got = got[1:]
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("tail%s: %v, want %v", tc.query, got, tc.want)
		}
		cancel()
		resp.Body.Close()
	}

	var e apiError
	if st := c.do("GET", "/api/hosts/nohost/tail", nil, &e); st != http.StatusNotFound {
		t.Errorf("unknown host: %d %+v", st, e)
	}
}

// TestTailWithoutKafka: no [kafka] in the ini, no live tail, said so.
func TestTailWithoutKafka(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.put(fleet.ConfigKey("web1"), `[{"path": "/var/log/a.log", "topic": "t"}]`)
	var e apiError
	if st := h.login("viv").do("GET", "/api/hosts/web1/tail", nil, &e); st != http.StatusNotImplemented || !strings.Contains(e.Message, "[kafka]") {
		t.Errorf("%d %+v", st, e)
	}
}
