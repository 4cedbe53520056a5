// Command demo shows logagent working with nothing installed: it starts an
// embedded etcd and an in-process Kafka (kfake), runs the real logagent
// binary against them, writes a log file, and prints every record as it
// lands in Kafka; it runs the web console too (logagent console), with a
// demo user whose password it makes up and prints once. It is not part of
// the logagent binary.
//
//	make demo        (= go build -o bin/logagent . && go run ./cmd/demo -agent bin/logagent)
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
)

func main() {
	agentBin := flag.String("agent", "bin/logagent", "the logagent binary to run")
	// Free ports by default: fixed ones clashed with the e2e suite's Kafka.
	etcdPort := flag.Int("etcd-port", 0, "client port of the embedded etcd (0 = a free one)")
	kafkaPort := flag.Int("kafka-port", 0, "port of the in-process Kafka (0 = a free one)")
	duration := flag.Duration("duration", 0, "stop after this long (0 = until Ctrl-C)")
	flag.Parse()
	if err := run(*agentBin, *etcdPort, *kafkaPort, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

const host = "demo"

// color is set when stdout is a terminal: no escape codes into a pipe or file.
var color = isTerminal(os.Stdout)

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// tag is a bracketed prefix, in the given SGR style on a terminal.
func tag(name, sgr string) string {
	if !color {
		return "[" + name + "]"
	}
	return "\033[" + sgr + "m[" + name + "]\033[0m"
}

func say(format string, args ...any) { fmt.Printf(tag("demo", "1")+" "+format+"\n", args...) }

func run(agentBin string, etcdPort, kafkaPort int, duration time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	if _, err := os.Stat(agentBin); err != nil {
		return fmt.Errorf("agent binary: %w (build it with: go build -o %s .)", err, agentBin)
	}
	dir, err := os.MkdirTemp("", "logagent-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	e, err := testenv.StartEtcd(dir, etcdPort)
	if err != nil {
		return fmt.Errorf("%w (is port %d taken? try -etcd-port 0)", err, etcdPort)
	}
	defer e.Close()
	k, err := testenv.StartKafka(kafkaPort)
	if err != nil {
		return fmt.Errorf("%w (is port %d taken? try -kafka-port 0)", err, kafkaPort)
	}
	defer k.Close()
	say("embedded etcd at %s, in-process Kafka at %s", e.Endpoint, strings.Join(k.Addrs, ","))

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	first, second := filepath.Join(logs, "app.log"), filepath.Join(logs, "second.log")
	key := fleet.ConfigKey(host)
	value := mustJSON([]map[string]string{{"path": first, "topic": "web_log"}})
	if _, err := cli.Put(ctx, key, value); err != nil {
		return err
	}
	say("etcd: put %s '%s'", key, value)

	httpPort, err := testenv.FreePort()
	if err != nil {
		return err
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	cfg, err := testenv.WriteConfig(dir, host, k.Addrs, e.Endpoint, "[agent]\nhttp_addr = "+httpAddr+"\n")
	if err != nil {
		return err
	}
	agent := exec.Command(agentBin, "-config", cfg)
	stderr, _ := agent.StderrPipe()
	if err := agent.Start(); err != nil {
		return err
	}
	say("started %s -config %s (pid %d)", agentBin, cfg, agent.Process.Pid)
	go testenv.Prefix(tag("agent", "2")+" ", stderr)

	console, err := startConsole(ctx, agentBin, dir, e.Endpoint, k.Addrs)
	if err != nil {
		return err
	}
	defer console.stop()

	consumed := make(chan struct{})
	go func() { consume(ctx, k.Addrs); close(consumed) }()

	say("while this runs, add a second file from another terminal (etcdctl: apt-get install etcd-client):")
	fmt.Printf("\n  etcdctl --endpoints %s put %s '%s'\n  echo hello >> %s\n\n", e.Endpoint, key,
		mustJSON([]map[string]string{{"path": first, "topic": "web_log"}, {"path": second, "topic": "second_log"}}), second)
	say("(the demo does the same by itself in 8 seconds; Ctrl-C to stop)")
	say("the agent's health, metrics and status:")
	fmt.Printf("\n  curl http://%s/healthz\n  curl -s http://%s/metrics | grep ^logagent_file\n  etcdctl --endpoints %s get /logagent/%s/status --print-value-only\n\n",
		httpAddr, httpAddr, e.Endpoint, host)

	tick := time.NewTicker(700 * time.Millisecond)
	defer tick.Stop()
	added := time.After(8 * time.Second)
	shown := time.After(5 * time.Second)
	secondLines := 0
	for n := 0; ; {
		select {
		case <-ctx.Done():
			say("stopping the agent (SIGTERM)")
			agent.Process.Signal(syscall.SIGTERM)
			err := agent.Wait()
			<-consumed
			if err != nil {
				return fmt.Errorf("agent: %w", err)
			}
			say("agent exited 0")
			return nil
		case <-shown:
			showState(ctx, cli, httpAddr)
		case <-added:
			added = nil
			shown = time.After(3 * time.Second)
			v := mustJSON([]map[string]string{{"path": first, "topic": "web_log"}, {"path": second, "topic": "second_log", "read_from": "beginning"}})
			testenv.AppendLine(second, "a line written before the entry existed")
			if _, err := cli.Put(ctx, key, v); err == nil {
				say("etcd: put %s '%s'  (hot add, no restart)", key, v)
			}
		case <-tick.C:
			n++
			testenv.AppendLine(first, fmt.Sprintf(`127.0.0.1 - - [%s] "GET /item/%d HTTP/1.1" 200 %d`, time.Now().Format("02/Jan/2006:15:04:05 -0700"), n, 100+n))
			if n%3 == 0 {
				if _, err := os.Stat(second); err == nil {
					secondLines++
					testenv.AppendLine(second, fmt.Sprintf("second file, line %d", secondLines))
				}
			}
		}
	}
}

// consoleProc is the running `logagent console`.
type consoleProc struct{ cmd *exec.Cmd }

// startConsole writes a console.ini, creates the user demo (an editor)
// with a generated password through `logagent console adduser`, starts
// `logagent console` and prints its URL and the login.
func startConsole(ctx context.Context, agentBin, dir, etcdEndpoint string, brokers []string) (*consoleProc, error) {
	port, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	ini := filepath.Join(dir, "console.ini")
	users := filepath.Join(dir, "console-users")
	text := fmt.Sprintf("[console]\nlisten = 127.0.0.1:%d\nusers_file = %s\n[etcd]\nendpoints = %s\n[kafka]\nbrokers = %s\n",
		port, users, etcdEndpoint, strings.Join(brokers, ","))
	if err := os.WriteFile(ini, []byte(text), 0o644); err != nil {
		return nil, err
	}
	pw := make([]byte, 12)
	rand.Read(pw)
	password := base64.RawURLEncoding.EncodeToString(pw)
	add := exec.CommandContext(ctx, agentBin, "console", "adduser", "demo", "-role", "editor", "-config", ini)
	add.Stdin = strings.NewReader(password + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("console adduser: %w: %s", err, out)
	}
	cmd := exec.Command(agentBin, "console", "-config", ini)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the console: %w", err)
	}
	go testenv.Prefix(tag("console", "35")+" ", stderr)
	say("web console: http://127.0.0.1:%d   user demo, password %s (made up for this run)", port, password)
	return &consoleProc{cmd: cmd}, nil
}

func (c *consoleProc) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.cmd.Wait()
}

func consume(ctx context.Context, addrs []string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeRegex(), kgo.ConsumeTopics(".*"),
		kgo.MetadataMinAge(500*time.Millisecond), kgo.MetadataMaxAge(time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		say("consumer: %v", err)
		return
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachRecord(func(r *kgo.Record) {
			var h []string
			for _, x := range r.Headers {
				h = append(h, x.Key+"="+string(x.Value))
			}
			sort.Strings(h)
			fmt.Printf(tag("kafka", "32")+" %s/%d@%d  %s  %q\n", r.Topic, r.Partition, r.Offset, strings.Join(h, " "), r.Value)
		})
	}
}

// showState prints what an operator would look at: /healthz, the file
// metrics and the status key.
func showState(ctx context.Context, cli *clientv3.Client, httpAddr string) {
	hc := &http.Client{Timeout: 2 * time.Second}
	if resp, err := hc.Get("http://" + httpAddr + "/healthz"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		say("GET /healthz: %s %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if resp, err := hc.Get("http://" + httpAddr + "/metrics"); err == nil {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "logagent_file_lines_acked_total") || strings.HasPrefix(l, "logagent_file_lag_bytes") {
				say("GET /metrics: %s", l)
			}
		}
		resp.Body.Close()
	}
	if r, err := cli.Get(ctx, fleet.StatusKey(host)); err == nil && len(r.Kvs) == 1 {
		v := string(r.Kvs[0].Value)
		if len(v) > 300 {
			v = v[:300] + "…"
		}
		say("etcd: /logagent/%s/status = %s", host, v)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
