// Command demo-search shows the search path working with nothing but Java
// installed: an embedded etcd, an in-process Kafka (kfake), a real
// OpenSearch node (scripts/opensearch.sh), the real logagent agent and
// `logagent transfer`; it writes a log file and shows its lines arriving
// in the index with the curl an operator would type. It is not part of the
// logagent binary.
//
//	make demo-search   (= make build && go run ./cmd/demo-search -agent bin/logagent)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
)

func main() {
	bin := flag.String("agent", "bin/logagent", "the logagent binary to run (agent and transfer)")
	duration := flag.Duration("duration", 0, "stop after this long (0 = until Ctrl-C)")
	flag.Parse()
	if err := run(*bin, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "demo-search:", err)
		os.Exit(1)
	}
}

const (
	host  = "demo"
	topic = "web_log"
	index = "logs-web"
)

func say(format string, args ...any) { fmt.Printf("[demo] "+format+"\n", args...) }

func run(bin string, duration time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("logagent binary: %w (build it with: make build)", err)
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "logagent-demo-search-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	say("starting OpenSearch (the first run fetches its jars from Maven Central)…")
	node, err := testenv.StartOpenSearch(root, filepath.Join(dir, "opensearch"))
	if err != nil {
		return err
	}
	defer func() { say("stopping OpenSearch"); node.Stop() }()
	e, err := testenv.StartEtcd(dir, 0)
	if err != nil {
		return err
	}
	defer e.Close()
	k, err := testenv.StartKafka(0)
	if err != nil {
		return err
	}
	defer k.Close()
	say("OpenSearch at %s, embedded etcd at %s, in-process Kafka at %s", node.URL, e.Endpoint, strings.Join(k.Addrs, ","))

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	app := filepath.Join(logs, "access.log")
	for key, value := range map[string]string{
		fleet.ConfigKey(host):   fmt.Sprintf(`[{"path": %q, "topic": %q}]`, app, topic),
		fleet.TransferConfigKey: fmt.Sprintf(`[{"topic": %q, "index": %q}]`, topic, index),
	} {
		if _, err := cli.Put(ctx, key, value); err != nil {
			return err
		}
		say("etcd: put %s '%s'", key, value)
	}

	agentCfg, err := testenv.WriteConfig(dir, host, k.Addrs, e.Endpoint, "[agent]\nhttp_addr =\n")
	if err != nil {
		return err
	}
	transferPort, err := testenv.FreePort()
	if err != nil {
		return err
	}
	transferHTTP := fmt.Sprintf("127.0.0.1:%d", transferPort)
	transferCfg := filepath.Join(dir, "transfer.ini")
	os.WriteFile(transferCfg, []byte(fmt.Sprintf("[transfer]\ninstance = demo-transfer\ndata_dir = %s\nhttp_addr = %s\n[kafka]\nbrokers = %s\n[opensearch]\nurls = %s\n[etcd]\nendpoints = %s\n",
		filepath.Join(dir, "transfer"), transferHTTP, strings.Join(k.Addrs, ","), node.URL, e.Endpoint)), 0o644)
	procs := []*exec.Cmd{exec.Command(bin, "-config", agentCfg), exec.Command(bin, "transfer", "-config", transferCfg)}
	for i, p := range procs {
		name := []string{"agent", "transfer"}[i]
		stderr, _ := p.StderrPipe()
		if err := p.Start(); err != nil {
			return err
		}
		say("started %s (pid %d): %s", name, p.Process.Pid, strings.Join(p.Args, " "))
		go testenv.Prefix("["+name+"] ", stderr)
	}
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
		say("agent and transfer stopped")
	}()

	query := node.URL + "/" + index + "-*/_search?q=message:GET&sort=@timestamp:desc&size=3&filter_path=hits.total,hits.hits._id,hits.hits._source.message"
	say("look at the index yourself, while this runs:")
	fmt.Printf("\n  curl -s '%s'\n  curl -s http://%s/metrics | grep ^logtransfer_records\n  etcdctl --endpoints %s get /logtransfer/demo-transfer/status --print-value-only\n\n",
		query, transferHTTP, e.Endpoint)
	say("(Ctrl-C to stop)")
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	search := time.NewTicker(4 * time.Second)
	defer search.Stop()
	for n := 0; ; {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			n++
			testenv.AppendLine(app, fmt.Sprintf(`127.0.0.1 - - [%s] "GET /item/%d HTTP/1.1" 200 %d`, time.Now().Format("02/Jan/2006:15:04:05 -0700"), n, 100+n))
		case <-search.C:
			showSearch(query)
		}
	}
}

// showSearch prints the newest hits, as the curl above shows them.
func showSearch(query string) {
	resp, err := http.Get(query)
	if err != nil {
		say("search: %v", err)
		return
	}
	defer resp.Body.Close()
	var ans struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
			Hits []struct {
				ID     string `json:"_id"`
				Source struct {
					Message string `json:"message"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &ans); err != nil || resp.StatusCode != 200 {
		say("search: %s %s", resp.Status, strings.TrimSpace(string(data)))
		return
	}
	say("OpenSearch: %d lines in %s-*; newest:", ans.Hits.Total.Value, index)
	for _, h := range ans.Hits.Hits {
		fmt.Printf("         _id %s  %q\n", h.ID, h.Source.Message)
	}
}
