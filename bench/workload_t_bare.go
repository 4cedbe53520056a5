// The bare _bulk loop of workload T: the same documents as the transfer
// indexes, encoded and posted by a child process of the bench.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/logagent/logagent/internal/testenv"
	"github.com/logagent/logagent/transfer"
)

// tDocument has the fields, in the order, of the transfer's document
// (transfer/document.go), so that both contenders send the same bytes.
type tDocument struct {
	Timestamp string `json:"@timestamp"`
	Message   string `json:"message"`
	Host      string `json:"host"`
	Path      string `json:"path"`
	File      string `json:"file"`
	Offset    int64  `json:"offset"`
	Topic     string `json:"topic"`
	Partition int32  `json:"kafka_partition"`
	KOffset   int64  `json:"kafka_offset"`
}

// appendTDoc appends one document's action and source lines, as the
// transfer encodes the record at kafka offset i of topic.
func appendTDoc(buf *bytes.Buffer, index, topic string, i int, line []byte, off int64, ts time.Time) {
	o := strconv.FormatInt(off, 10)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	var action struct {
		Index struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		} `json:"index"`
	}
	action.Index.Index = index + "-" + ts.UTC().Format("2006.01.02")
	action.Index.ID = tHost + ":" + tFile + ":" + o
	enc.Encode(action) //nolint:errcheck // plain strings
	enc.Encode(tDocument{Timestamp: ts.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Message: string(line),
		Host: tHost, Path: tPath, File: tFile, Offset: off, Topic: topic, KOffset: int64(i)}) //nolint:errcheck
}

// splitBulk cuts an NDJSON body of action + source pairs into bodies of
// at most limit bytes (a single larger document alone), at document
// boundaries, with the number of documents in each.
func splitBulk(body []byte, limit int) (parts [][]byte, counts []int) {
	start, n := 0, 0
	for pos := 0; pos < len(body); {
		end := pos
		for range 2 { // the action line and the source line
			i := bytes.IndexByte(body[end:], '\n')
			if i < 0 {
				end = len(body)
				break
			}
			end += i + 1
		}
		if end-start > limit && n > 0 {
			parts, counts = append(parts, body[start:pos]), append(counts, n)
			start, n = pos, 0
		}
		pos = end
		n++
	}
	if n > 0 {
		parts, counts = append(parts, body[start:]), append(counts, n)
	}
	return parts, counts
}

// bareBulk runs the bare loop as a child process: it indexes docs
// documents of topic into index and reports its own wall and CPU over the
// posting loop.
func (e *env) bareBulk(ctx context.Context, node *testenv.OpenSearch, osPid int, topic, index string, docs int, ts time.Time) tSample {
	var s tSample
	tmpl := transfer.IndexTemplate(index, 1, 0) // the transfer's own template, shards 1, replicas 0
	if _, err := node.Do("PUT", "/_index_template/bench-"+index, string(tmpl)); err != nil {
		s.err = err
		return s
	}
	defer node.Do("DELETE", "/_index_template/bench-"+index, "") //nolint:errcheck
	p, err := startProc(filepath.Join(e.dir, "T", index+".log"), nil, e.self, childBulk, "-url", node.URL, "-index", index,
		"-topic", topic, "-docs", strconv.Itoa(docs), "-ts", strconv.FormatInt(ts.UnixMilli(), 10))
	if err != nil {
		s.err = err
		return s
	}
	osStart := make(chan time.Duration, 1)
	go func() {
		// The child prints "posting" once its bodies are encoded: from
		// then on OpenSearch works for it.
		waitLog(ctx, p, "posting", 5*time.Millisecond)
		c, _ := procCPU(osPid)
		osStart <- c
	}()
	rctx, cancel := context.WithTimeout(ctx, e.opts.timeout)
	defer cancel()
	fs := finishProc(rctx, p)
	s.rssKiB = fs.rssKiB
	if fs.err != nil {
		s.err = fs.err
		return s
	}
	os1, _ := procCPU(osPid)
	s.osCPU = os1 - <-osStart // sent once the child printed "posting" or exited
	var res bulkResult
	last := p.logTail(1)
	if err := json.Unmarshal([]byte(last), &res); err != nil {
		s.err = fmt.Errorf("bare bulk loop output %q: %v", last, err)
		return s
	}
	if res.Err != "" || res.Docs != docs {
		s.err = fmt.Errorf("bare bulk loop: %d of %d documents: %s", res.Docs, docs, res.Err)
		return s
	}
	s.wall, s.cpu = time.Duration(res.WallNs), time.Duration(res.CPUNs)
	return s
}

// waitLog polls p's output until it holds text (or p exits or ctx ends).
func waitLog(ctx context.Context, p *proc, text string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(p.logPath); err == nil && bytes.Contains(b, []byte(text)) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

type bulkResult struct {
	Docs   int    `json:"docs"`
	WallNs int64  `json:"wall_ns"`
	CPUNs  int64  `json:"cpu_ns"`
	Err    string `json:"err,omitempty"`
}

// bulkChildMain is the bare bulk loop: it encodes every document first,
// then posts the bodies one after the other with net/http and checks each
// answer's "errors" flag; it prints a bulkResult as its last line.
func bulkChildMain(args []string) int {
	fs := flag.NewFlagSet(childBulk, flag.ExitOnError)
	url := fs.String("url", "", "")
	index := fs.String("index", "", "")
	topic := fs.String("topic", "", "")
	docs := fs.Int("docs", 0, "")
	tsMs := fs.Int64("ts", 0, "")
	fs.Parse(args) //nolint:errcheck // ExitOnError
	ts := time.UnixMilli(*tsMs)
	var all bytes.Buffer
	tLines(*docs, func(i int, line []byte, off int64) { appendTDoc(&all, *index, *topic, i, line, off, ts) })
	parts, counts := splitBulk(all.Bytes(), tBulkBytes)
	fmt.Println("posting", len(parts), "bodies")
	var res bulkResult
	client := &http.Client{Timeout: 2 * time.Minute}
	cpu0, start := selfCPU(), time.Now()
	err := func() error {
		for i, body := range parts {
			// Only the errors flag is asked for: the least any client
			// can read back (the transfer asks for each item's status).
			resp, err := client.Post(*url+"/_bulk?filter_path=errors", "application/x-ndjson", bytes.NewReader(body))
			if err != nil {
				return err
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			var ans struct {
				Errors bool `json:"errors"`
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("bulk: HTTP %d: %.300s", resp.StatusCode, data)
			}
			if err := json.Unmarshal(data, &ans); err != nil {
				return fmt.Errorf("bulk answer: %w", err)
			}
			if ans.Errors {
				return fmt.Errorf("bulk answer has errors: %.300s", data)
			}
			res.Docs += counts[i]
		}
		return nil
	}()
	res.WallNs, res.CPUNs = int64(time.Since(start)), int64(selfCPU()-cpu0)
	if err != nil {
		res.Err = err.Error()
	}
	return printResult(res, err)
}
