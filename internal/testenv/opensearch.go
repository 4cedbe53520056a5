package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// OpenSearch is a real single-node OpenSearch started by
// scripts/opensearch.sh (jars from Maven Central) on 127.0.0.1.
type OpenSearch struct {
	URL  string
	root string // the repository root
	dir  string
	port int
}

// StartOpenSearch starts a node with its data in dir; root is the
// repository root (for the script). The first start on a machine fetches
// the jars (about 50 MB) and compiles the launcher.
func StartOpenSearch(root, dir string) (*OpenSearch, error) {
	// The transport port is the HTTP port + 100: reserve both.
	port, err := LowPorts(101)
	if err != nil {
		return nil, err
	}
	o := &OpenSearch{root: root, dir: dir, port: port}
	if err := o.script("start", dir, strconv.Itoa(port)); err != nil {
		return nil, err
	}
	o.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	return o, nil
}

// Restart starts the stopped node again on its data and port.
func (o *OpenSearch) Restart() error { return o.script("start", o.dir) }

// Stop stops the node (SIGTERM, SIGKILL after a bound).
func (o *OpenSearch) Stop() error { return o.script("stop", o.dir) }

func (o *OpenSearch) script(args ...string) error {
	cmd := exec.Command("bash", append([]string{filepath.Join(o.root, "scripts", "opensearch.sh")}, args...)...)
	cmd.Dir = o.root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/opensearch.sh %s: %w\n%s", strings.Join(args, " "), err, LastLines(stderr.String(), 40))
	}
	return nil
}

// nodeClient bounds every request, so that a hung node fails a test
// instead of stalling it until go test's timeout. (Not osclient: testenv
// must not import conf, whose tests import testenv.)
var nodeClient = &http.Client{Timeout: 30 * time.Second}

// Do sends one request to the node and returns the answer's body; an
// answer other than 2xx is an error.
func (o *OpenSearch) Do(method, path, body string) ([]byte, error) {
	req, err := http.NewRequest(method, o.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := nodeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return data, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, data)
	}
	return data, nil
}

// IDs refreshes the indices matching pattern and returns the _id of every
// document in them (an id twice when two documents have it), up to 10,000.
func (o *OpenSearch) IDs(pattern string) ([]string, error) {
	if _, err := o.Do("POST", "/"+pattern+"/_refresh?allow_no_indices=true", ""); err != nil {
		return nil, err
	}
	data, err := o.Do("GET", "/"+pattern+"/_search?allow_no_indices=true&size=10000&_source=false", `{"sort": ["_doc"]}`)
	if err != nil {
		return nil, err
	}
	var ans struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return nil, err
	}
	ids := make([]string, len(ans.Hits.Hits))
	for i, h := range ans.Hits.Hits {
		ids[i] = h.ID
	}
	return ids, nil
}

// MappingError reports whether reason is what the node says of a document
// its mapping refuses: mapper_parsing_exception on OpenSearch,
// document_parsing_exception on Elasticsearch 8 (SEARCH_ENGINE).
func MappingError(reason string) bool {
	return strings.Contains(reason, "mapper_parsing_exception") || strings.Contains(reason, "document_parsing_exception")
}

// DeleteIndices deletes every index matching pattern, one by name (the
// node may refuse a wildcard delete): a test that shares the node leaves
// nothing for the next one to find.
func (o *OpenSearch) DeleteIndices(pattern string) error {
	data, err := o.Do("GET", "/_cat/indices/"+pattern+"?h=index&format=json&expand_wildcards=all", "")
	if err != nil {
		return err
	}
	var indices []struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(data, &indices); err != nil {
		return err
	}
	for _, i := range indices {
		if _, err := o.Do("DELETE", "/"+i.Index, ""); err != nil {
			return err
		}
	}
	return nil
}

var (
	sharedOnce sync.Once
	sharedNode *OpenSearch
	sharedDir  string
	sharedErr  error
)

// SharedOpenSearch returns the test binary's OpenSearch node, started on
// first use (root is the repository root). It skips the test when the node
// cannot be started, unless LOGAGENT_E2E=1 (make e2e), where that is a
// failure. TestMain calls StopSharedOpenSearch after the tests.
func SharedOpenSearch(t testing.TB, root string) *OpenSearch {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no OpenSearch node")
	}
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "logagent-opensearch-")
		if sharedErr != nil {
			return
		}
		sharedNode, sharedErr = StartOpenSearch(root, sharedDir)
	})
	if sharedErr != nil {
		if os.Getenv("LOGAGENT_E2E") == "1" {
			t.Fatalf("OpenSearch could not be started: %v", sharedErr)
		}
		t.Skipf("OpenSearch could not be started (scripts/opensearch.sh needs Java 17 and Maven Central): %v", sharedErr)
	}
	return sharedNode
}

// StopSharedOpenSearch stops the node SharedOpenSearch started, if it did,
// and removes its data.
func StopSharedOpenSearch() {
	if sharedNode != nil {
		sharedNode.Stop()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
}
