package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOperatorWorkflow is the daily routine on one host, with the tools an
// operator has: start the agent, `etcdctl put` a file to collect, watch its
// lines with kafka-console-consumer, add a second file on its own topic,
// remove the first, stop the agent with SIGTERM, start it again.
func TestOperatorWorkflow(t *testing.T) {
	needE2E(t)
	for _, client := range clients {
		t.Run(client, func(t *testing.T) {
			start := time.Now()
			testOperatorWorkflow(t, client)
			t.Logf("%s: %s", t.Name(), since(start))
		})
	}
}

// line is one line written to a file: its text and its terminator.
type line struct{ text, end string }

// appendLines appends lines to path and returns the records they must
// become: value without terminator, headers host, path and byte offset
// (and a file id, and the key host:file:offset: see checkRecords).
func appendLines(t *testing.T, path string, lines ...line) []consoleRecord {
	t.Helper()
	off := int64(0)
	if fi, err := os.Stat(path); err == nil {
		off = fi.Size()
	}
	var data strings.Builder
	var want []consoleRecord
	for _, l := range lines {
		want = append(want, consoleRecord{
			headers: map[string]string{"host": host, "path": path, "offset": strconv.FormatInt(off, 10)},
			value:   l.text,
		})
		data.WriteString(l.text + l.end)
		off += int64(len(l.text) + len(l.end))
	}
	appendFile(t, path, data.String())
	return want
}

// fileIDRE is a file header: 16 hex digits.
var fileIDRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// checkRecords requires exactly want, in order, each with a file header
// and the key host:file:offset.
func checkRecords(t *testing.T, topic string, got, want []consoleRecord) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g := got[i]
		ok = g.value == want[i].value && len(g.headers) == len(want[i].headers)+1 && fileIDRE.MatchString(g.headers["file"]) &&
			g.key == g.headers["host"]+":"+g.headers["file"]+":"+g.headers["offset"]
		for k, v := range want[i].headers {
			ok = ok && g.headers[k] == v
		}
	}
	if !ok {
		t.Fatalf("topic %s: console consumer printed %d record(s), want %d:\n got: %s\nwant: %s",
			topic, len(got), len(want), fmtRecords(got), fmtRecords(want))
	}
}

func fmtRecords(rs []consoleRecord) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "\n  host:%s,path:%s,offset:%s,file:%s\t%s\t%q", r.headers["host"], r.headers["path"], r.headers["offset"],
			r.headers["file"], r.key, r.value)
	}
	return b.String()
}

func entriesJSON(t *testing.T, entries ...map[string]string) string {
	t.Helper()
	b, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testOperatorWorkflow(t *testing.T, client string) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	k := startKafka(t, 1)
	e := startEtcd(t)
	a := startAgent(t, dir, client, k.brokers(), e.endpoint)

	app, web := filepath.Join(logs, "app.log"), filepath.Join(logs, "web.log")
	const appTopic, webTopic = "app_log", "web_log"
	appEntry := map[string]string{"path": app, "topic": appTopic}
	webEntry := map[string]string{"path": web, "topic": webTopic, "read_from": "beginning"}

	// 1. The first file. It exists before its entry: reading starts at its
	// end (tail -F), so this line is never sent.
	appendLines(t, app, line{"written before the entry: never sent", "\n"})
	a.applied(e.put(configKey, entriesJSON(t, appEntry)))
	a.waitLog(10*time.Second, `msg="file opened"`, logAttr("path", app))

	wantApp := appendLines(t, app,
		line{"GET /index.html 200 1234", "\n"},
		line{"tab\there, two trailing spaces  ", "\n"},
		line{"", "\n"}, // an empty line is an empty record
		line{"ünïcödé ✓ 日本語", "\n"},
		line{"crlf terminated", "\r\n"},
		line{"invalid UTF-8 \xff\xfe passes through", "\n"},
		line{"last of the first batch", "\n"},
	)
	// One more than expected: the consumer waits for the idle timeout, so a
	// duplicate or the line written before the entry would show.
	checkRecords(t, appTopic, k.consume(appTopic, len(wantApp)+1, 6*time.Second), wantApp)

	// The status key is there while the agent runs.
	var st struct {
		Host string `json:"host"`
	}
	if v := e.get(statusKey); json.Unmarshal([]byte(v), &st) != nil || st.Host != host {
		t.Fatalf("status key %s = %q, want JSON with host %q", statusKey, v, host)
	}

	// 2. A second file, on its own topic, read from its beginning although
	// it already exists.
	wantWeb := appendLines(t, web, line{"web 1", "\n"}, line{"web 2", "\n"})
	a.applied(e.put(configKey, entriesJSON(t, appEntry, webEntry)))
	a.waitLog(10*time.Second, `msg="file opened"`, logAttr("path", web))
	wantWeb = append(wantWeb, appendLines(t, web, line{"web 3, after the entry", "\n"})...)
	wantApp = append(wantApp, appendLines(t, app, line{"app still collected", "\n"})...)
	checkRecords(t, webTopic, k.consume(webTopic, len(wantWeb)+1, 6*time.Second), wantWeb)

	// 3. Remove the first file. Once it is stopped, nothing appended to it
	// is sent; a marker on the second file proves the agent still ships.
	a.applied(e.put(configKey, entriesJSON(t, webEntry)))
	a.waitLog(10*time.Second, `msg="stopped collecting"`, logAttr("path", app))
	appendLines(t, app, line{"after the removal: never sent", "\n"}, line{"nor this", "\n"})
	wantWeb = append(wantWeb, appendLines(t, web, line{"marker after removing app.log", "\n"})...)
	checkRecords(t, webTopic, k.consume(webTopic, len(wantWeb), 30*time.Second), wantWeb)
	checkRecords(t, appTopic, k.consume(appTopic, len(wantApp)+1, 3*time.Second), wantApp)

	// 4. SIGTERM: exit 0, and the status key vanishes with the lease.
	a.stop()
	if v := e.get(statusKey); v != "" {
		t.Fatalf("status key %s = %q after the agent stopped, want it gone", statusKey, v)
	}

	// 5. Start it again on the same data_dir (systemctl restart): a clean
	// stop leaves nothing to resend, and new lines flow at once.
	a = startAgent(t, dir, client, k.brokers(), e.endpoint)
	a.waitLog(10*time.Second, `msg="file opened"`, logAttr("path", web))
	wantWeb = append(wantWeb, appendLines(t, web, line{"after the agent restarted", "\n"})...)
	checkRecords(t, webTopic, k.consume(webTopic, len(wantWeb)+1, 4*time.Second), wantWeb)
	a.stop()
}
