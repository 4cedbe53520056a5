package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Live tail bounds: the lines of the last tailBack, then new ones as they
// land; at most tailRate lines a second reach the page, the others are
// counted as skipped (a busy file would swamp a browser).
const (
	tailBack = 5 * time.Second
	tailRate = 100
)

// tailLine is one record, as the page shows it.
type tailLine struct {
	Topic  string    `json:"topic"`
	Path   string    `json:"path"`
	Offset int64     `json:"offset"` // the line's byte offset in its file
	Time   time.Time `json:"time"`
	Value  string    `json:"value"`
}

// apiTail: GET /api/hosts/{host}/tail?path=P is a server-sent event
// stream of the host's lines as they land in Kafka (what operators do with
// kafka-console-consumer): the topics of its entries (or of the entry for
// path), filtered by the record's host (and path) header. Events: "line"
// (a tailLine), "skipped" ({"lines": n} beyond the rate), "error".
func (s *Server) apiTail(w http.ResponseWriter, r *http.Request, _ *session) {
	host, path := r.PathValue("host"), r.URL.Query().Get("path")
	if path != "" {
		path = filepath.Clean(path)
	}
	if len(s.brokers) == 0 {
		writeError(w, errorf(http.StatusNotImplemented, "no live tail: the console's ini has no [kafka] brokers"))
		return
	}
	d, _ := s.cache.host(host)
	var topics []string
	for _, e := range newHostConfig(d.config, d.configRev).Entries {
		if (path == "" || e.Path == path) && !slices.Contains(topics, e.Topic) {
			topics = append(topics, e.Topic)
		}
	}
	if len(topics) == 0 {
		writeError(w, errorf(http.StatusNotFound, "host %q has no collect entry (for path %q) to tail", host, path))
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, errorf(http.StatusInternalServerError, "streaming is not supported here"))
		return
	}

	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(s.now().Add(-tailBack).UnixMilli())),
		kgo.FetchMaxWait(500 * time.Millisecond)}, s.kafkaOpts...)...)
	if err != nil {
		writeError(w, fmt.Errorf("kafka client: %w", err))
		return
	}
	defer cl.Close()
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) {
		data, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
	}
	send("ready", map[string]any{"topics": topics})
	fl.Flush()

	var window time.Time
	sent, skipped := 0, 0
	lastErr := ""
	for {
		fetches := cl.PollFetches(r.Context())
		if r.Context().Err() != nil {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			// Said once until it changes: the client retries by itself.
			if msg := fmt.Sprintf("%s/%d: %v", topic, p, err); msg != lastErr {
				send("error", map[string]string{"error": msg})
				lastErr = msg
			}
		})
		fetches.EachRecord(func(rec *kgo.Record) {
			var line tailLine
			hostOK := false
			for _, h := range rec.Headers {
				switch h.Key {
				case "host":
					hostOK = string(h.Value) == host
				case "path":
					line.Path = string(h.Value)
				case "offset":
					line.Offset, _ = strconv.ParseInt(string(h.Value), 10, 64)
				}
			}
			if !hostOK || (path != "" && line.Path != path) {
				return
			}
			if now := s.now(); now.Sub(window) >= time.Second {
				if skipped > 0 {
					send("skipped", map[string]int{"lines": skipped})
				}
				window, sent, skipped = now, 0, 0
			}
			if sent++; sent > tailRate {
				skipped++
				return
			}
			line.Topic, line.Time, line.Value = rec.Topic, rec.Timestamp, string(rec.Value)
			send("line", line)
		})
		fl.Flush()
	}
}
