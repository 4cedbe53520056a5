package e2e

// The search path: agent → Kafka → logagent transfer → OpenSearch, all real
// (the built binary, Apache Kafka and OpenSearch from Maven Central jars,
// etcd from Debian), with crashes on the way.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logagent/logagent/internal/testenv"
)

// startOpenSearch starts a real node for the test (scripts/opensearch.sh).
func startOpenSearch(t *testing.T) *testenv.OpenSearch {
	t.Helper()
	start := time.Now()
	o, err := testenv.StartOpenSearch(root, filepath.Join(t.TempDir(), "opensearch"))
	if err != nil {
		t.Fatalf("starting OpenSearch: %v", err)
	}
	t.Cleanup(func() { o.Stop() })
	t.Logf("OpenSearch at %s, up in %s", o.URL, since(start))
	return o
}

// startTransfer runs `logagent transfer` as instance name with its log in
// dir/<name>.log.
func startTransfer(t *testing.T, dir, name string, brokers []string, etcdEndpoint, osURL string) *agentProc {
	t.Helper()
	cfg := filepath.Join(dir, name+".ini")
	ini := fmt.Sprintf(`; written by the e2e suite
[transfer]
instance = %s
data_dir = %s
http_addr =
retry_backoff = 100ms
retry_max = 1s

[kafka]
brokers = %s
group = e2e
session_timeout = 6s

[opensearch]
urls = %s
timeout = 10s

[etcd]
endpoints = %s
`, name, filepath.Join(dir, name), strings.Join(brokers, ","), osURL, etcdEndpoint)
	if err := os.WriteFile(cfg, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("$ logagent transfer -config %s", cfg)
	p := startProc(t, filepath.Join(dir, name+".log"), name, true, bin, "transfer", "-config", cfg)
	p.waitLog(30*time.Second, `msg="transfer started"`)
	return p
}

// kill9 is kill -9 of the process.
func (a *agentProc) kill9() {
	a.t.Helper()
	a.t.Logf("$ kill -9 %d", a.PID())
	a.stopped = true
	a.Kill()
}

// TestSearchEndToEnd: lines written to three files reach OpenSearch each
// exactly once (count and ids) although the agent is killed (-9) and
// restarted mid-stream (it resends lines at new Kafka offsets), one of two
// transfers of the group is killed (-9) and the other takes its
// partitions, and OpenSearch is stopped and started again. A line
// OpenSearch refuses (a mapping error) lands in the dead-letter topic.
func TestSearchEndToEnd(t *testing.T) {
	needE2E(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	k := startKafka(t, 1)
	e := startEtcd(t)
	node := startOpenSearch(t)

	const webTopic, appTopic, webIndex, appIndex = "web_log", "app_log", "logs-web", "logs-app"
	k.createTopic(webTopic, 4, 1)
	// Today's app index exists with message as a number: a text line is a
	// mapping error there.
	appDay := appIndex + "-" + time.Now().UTC().Format("2006.01.02")
	if _, err := node.Do("PUT", "/"+appDay, `{"settings": {"number_of_replicas": 0}, "mappings": {"properties": {"message": {"type": "long"}}}}`); err != nil {
		t.Fatal(err)
	}
	e.put("/logtransfer/config", fmt.Sprintf(`[{"topic": %q, "index": %q}, {"topic": %q, "index": %q}]`,
		webTopic, webIndex, appTopic, appIndex))
	ta := startTransfer(t, dir, "ta", k.brokers(), e.endpoint, node.URL)
	tb := startTransfer(t, dir, "tb", k.brokers(), e.endpoint, node.URL)

	agentDir := filepath.Join(dir, "agent")
	os.Mkdir(agentDir, 0o755)
	a := startAgent(t, agentDir, "franz-go", k.brokers(), e.endpoint)
	const files, perFile = 3, 2400
	var entries []map[string]string
	paths := make([]string, files)
	for i := range paths {
		paths[i] = filepath.Join(logs, fmt.Sprintf("web-%d.log", i))
		entries = append(entries, map[string]string{"path": paths[i], "topic": webTopic, "read_from": "beginning"})
	}
	app := filepath.Join(logs, "app.log")
	entries = append(entries, map[string]string{"path": app, "topic": appTopic, "read_from": "beginning"})
	appendFile(t, app, "1\nnot a number\n3\n")
	a.applied(e.put(configKey, entriesJSON(t, entries...)))

	writers := make([]*seqWriter, files)
	for i, p := range paths {
		writers[i] = startSeqWriter(t, p, perFile, 2, 4*time.Millisecond)
	}

	// 1. kill -9 of the agent mid-stream, and a restart on its data.
	writers[0].waitWritten(t, 400, time.Minute)
	a.kill9()
	a = startAgent(t, agentDir, "franz-go", k.brokers(), e.endpoint)

	// 2. kill -9 of a transfer that indexed lines: the other one takes
	// its partitions once the group's session timeout passed.
	writers[0].waitWritten(t, 1000, time.Minute)
	victim, survivor, victimName, survivorName := ta, tb, "ta", "tb"
	if status("tb", e).Indexed > status("ta", e).Indexed {
		victim, survivor, victimName, survivorName = tb, ta, "tb", "ta"
	}
	victim.kill9()

	// 3. OpenSearch stopped while lines keep coming, and started again.
	writers[0].waitWritten(t, 1600, time.Minute)
	t.Log("$ scripts/opensearch.sh stop")
	if err := node.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, w := range writers {
		w.waitWritten(t, perFile, 2*time.Minute)
	}
	survivor.waitLog(time.Minute, `msg="bulk request failed; retrying with backoff (offsets stay uncommitted)"`)
	t.Log("$ scripts/opensearch.sh start")
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}

	// Exactly the written lines, each once: ids host:file:offset, three
	// files of perFile lines at offsets i*seqLineLen.
	want := files * perFile
	var ids []string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var err error
		ids, err = node.IDs(webIndex + "-*")
		if err == nil && len(ids) >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("index %s-* holds %d documents after 3m, want %d (err %v)", webIndex, len(ids), want, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	byFile := map[string][]int64{}
	for _, id := range ids {
		parts := strings.Split(id, ":")
		off, err := strconv.ParseInt(parts[len(parts)-1], 10, 64)
		if len(parts) != 3 || parts[0] != host || err != nil {
			t.Fatalf("document id %q is not %s:<file>:<offset>", id, host)
		}
		byFile[parts[1]] = append(byFile[parts[1]], off)
	}
	if len(ids) != want || len(byFile) != files {
		t.Fatalf("%d documents in %d files, want %d in %d", len(ids), len(byFile), want, files)
	}
	for f, offs := range byFile {
		slices.Sort(offs)
		for i, off := range offs {
			if off != int64(i*seqLineLen) {
				t.Fatalf("file %s: document %d has offset %d, want %d (a line missing or twice)", f, i, off, i*seqLineLen)
			}
		}
	}
	// The same through OpenSearch's own count.
	data, err := node.Do("GET", "/"+webIndex+"-*/_count", "")
	if err != nil || !strings.Contains(string(data), fmt.Sprintf(`"count":%d`, want)) {
		t.Fatalf("_count: %s %v", data, err)
	}

	// The refused line is in the dead-letter topic with its reason; the
	// others of its file are indexed. The dead-letter topic is
	// at-least-once like Kafka: a line the agent resent after its crash
	// is refused again, and is there twice with the same key.
	dlq := k.consume(appTopic+".dlq", 10, 6*time.Second)
	keys := map[string]bool{}
	for _, r := range dlq {
		keys[r.key] = true
		if r.value != "not a number" || !testenv.MappingError(r.headers["dlq_reason"]) || r.headers["dlq_topic"] != appTopic {
			t.Errorf("dead-letter record: %+v", r)
		}
	}
	if len(keys) != 1 {
		t.Fatalf("dead-letter topic holds %d lines, want the one refused: %+v", len(keys), dlq)
	}
	if ids, err := node.IDs(appDay); err != nil || len(ids) != 2 {
		t.Fatalf("%s: %v %v, want the two numeric lines", appDay, ids, err)
	}
	// The survivor owns every partition, and the victim's status key
	// expired with its lease.
	deadline = time.Now().Add(time.Minute)
	for st := status(survivorName, e); len(st.Assigned[webTopic]) != 4; st = status(survivorName, e) {
		if time.Now().After(deadline) {
			t.Fatalf("the surviving transfer holds %v of %s, want its 4 partitions", st.Assigned, webTopic)
		}
		time.Sleep(time.Second)
	}
	if v := e.get("/logtransfer/" + victimName + "/status"); v != "" {
		t.Errorf("the killed transfer's status key is still there: %s", v)
	}
	t.Logf("%d lines indexed once each; agent and transfer killed, OpenSearch restarted", want)
}

// transferStatus is what the test reads of /logtransfer/<instance>/status.
type transferStatus struct {
	Indexed  int64              `json:"indexed"`
	Assigned map[string][]int32 `json:"assigned"`
}

func status(name string, e *etcdServer) transferStatus {
	var st transferStatus
	json.Unmarshal([]byte(e.get("/logtransfer/"+name+"/status")), &st)
	return st
}
