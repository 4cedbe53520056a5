package console

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
	"github.com/logagent/logagent/kafka"
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
		event, stop := openTail(t, c, h.srv.URL()+"/api/hosts/web1/tail"+tc.query)
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
		stop()
	}

	var e apiError
	if st := c.do("GET", "/api/hosts/nohost/tail", nil, &e); st != http.StatusNotFound {
		t.Errorf("unknown host: %d %+v", st, e)
	}
}

// openTail opens the live tail at url and reads its first event, "ready";
// event returns the next event's name and data, stop closes the stream.
func openTail(t *testing.T, c *client, url string) (event func() (string, string), stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	event = func() (string, string) {
		t.Helper()
		var name string
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				name = n
			}
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				return name, d
			}
		}
		t.Fatalf("%s ended: %v", url, sc.Err())
		return "", ""
	}
	if name, _ := event(); name != "ready" {
		t.Fatalf("first event %q", name)
	}
	return event, func() { cancel(); resp.Body.Close() }
}

// TestTailSecured: the live tail connects with the [kafka] TLS and SASL
// settings, as the agent does: kfake with TLS and SCRAM-SHA-512.
func TestTailSecured(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := ca.Issue("kafka", false)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := testenv.ServerTLS(srvCert, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := testenv.StartKafkaOpts(kfake.TLS(tc), kfake.EnableSASL(), kfake.Superuser(conf.SASLSCRAM512, "console", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)

	h := newHarness(t)
	h.kafka = conf.Kafka{Brokers: k.Addrs, TLS: conf.TLS{Enabled: true, CAFile: ca.File},
		SASLMechanism: conf.SASLSCRAM512, SASLUsername: "console", SASLPassword: "s3cret"}
	h.start()
	h.put(fleet.ConfigKey("web1"), `[{"path": "/var/log/a.log", "topic": "t"}]`)
	sec, err := kafka.FranzSecurity(h.kafka)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(append(sec, kgo.SeedBrokers(k.Addrs...), kgo.AllowAutoTopicCreation())...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	event, stop := openTail(t, h.login("viv"), h.srv.URL()+"/api/hosts/web1/tail")
	defer stop()
	rec := &kgo.Record{Topic: "t", Value: []byte("secured"), Headers: []kgo.RecordHeader{{Key: "host", Value: []byte("web1")}}}
	if err := prod.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	name, data := event()
	var l tailLine
	json.Unmarshal([]byte(data), &l)
	if name != "line" || l.Value != "secured" {
		t.Fatalf("event %s %s, want the line", name, data)
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
