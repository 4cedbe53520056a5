package console

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logagent/logagent/agent"
	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
	"github.com/logagent/logagent/transfer"
)

// The browser tests run the pages in headless Chromium (Debian's
// chromium, driven by chromedp). Without chromium they are skipped, unless
// LOGAGENT_BROWSER=1 (set by `make browser`, part of `make test`), which
// makes a missing browser a failure. LOGAGENT_SCREENSHOTS=DIR writes the
// fleet and host pages' screenshots there (docs/ for the README).

// browser starts headless Chromium; each test takes a tab of it.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath("chromium"); err != nil {
		if os.Getenv("LOGAGENT_BROWSER") == "1" {
			t.Fatal("chromium is not installed: make browser installs it (apt-get install chromium)")
		}
		t.Skip("chromium is not installed: the browser tests run with `make browser` (part of `make test`), which installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.WindowSize(1280, 860))
	// No timeout on the contexts that start the browser: it would kill it.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tab, cancelTab := chromedp.NewContext(bctx)
	tab, cancelTimeout := context.WithTimeout(tab, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelTab() })
	return tab
}

// waitFor waits until the JavaScript expression is true on the page.
func waitFor(t *testing.T, tab context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		msg, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v\npage:\n%s", what, err, msg)
	}
}

// login opens url, logs in as user on the login page and waits for the
// fleet page.
func login(t *testing.T, tab context.Context, url, user string) {
	t.Helper()
	err := chromedp.Do(tab,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#login-user")),
		chromedp.SendKeys(chromedp.CSS("#login-user"), user),
		chromedp.SendKeys(chromedp.CSS("#login-password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#hosts")),
	)
	if err != nil {
		t.Fatalf("log in as %s: %v", user, err)
	}
}

func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("LOGAGENT_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserFleetAndHost: log in; a host appears on the fleet page when
// its agent starts, without a reload; an entry added on the host page is
// saved, the agent applies it and its file's lines reach Kafka and the
// live tail; a bulk
// change lands on every agent listed; the audit page shows the changes;
// the host turns offline when its agent stops.
func TestBrowserFleetAndHost(t *testing.T) {
	tab := browser(t)
	h := newHarness(t)
	k := h.startKafka()
	h.start()
	logs := t.TempDir()
	first, second := filepath.Join(logs, "app.log"), filepath.Join(logs, "second.log")
	for _, p := range []string{first, second} {
		os.WriteFile(p, nil, 0o644)
	}
	// Two hosts that are not running, for the fleet page.
	h.put(fleet.ConfigKey("db1"), `[{"path": "/var/log/db.log", "topic": "db_log"}]`)
	h.put(fleet.LastSeenKey("db2"), mustJSON(t, fleet.LastSeen{Time: time.Now().Add(-2 * time.Hour).UTC(), State: fleet.LastSeenStopped, Version: "v0.9"}))

	// The fleet page sends to the login page first.
	login(t, tab, h.srv.URL()+"/", "ed")
	waitFor(t, tab, "db1 listed as never seen", `!!document.querySelector('tr[data-host="db1"][data-state="never_seen"]')`)
	// A host running the Sys Agent shows its headline load; one without, none.
	h.put(fleet.StatusKey("db3"), `{"host":"db3","health":"ok","sys":{"latest":{"rates":true,"cpu_percent":12.4,"load1":0.42,"memory_used_percent":63.2}}}`)
	waitFor(t, tab, "db3's load", `(r => r && r.querySelector('.load').textContent === 'CPU 12% · load 0.4 · mem 63%')(document.querySelector('tr[data-host="db3"]'))`+
		` && document.querySelector('tr[data-host="db1"] .load').textContent === ''`)

	// An agent starts: its host appears, healthy, with no reload.
	h.put(fleet.ConfigKey("web1"), fmt.Sprintf(`[{"path": %q, "topic": "web_log"}]`, first))
	stopAgent := startAgent(t, h, k, "web1")
	waitFor(t, tab, "web1 healthy on the fleet page", `!!document.querySelector('tr[data-host="web1"][data-state="healthy"]')`)
	// Its first status may come before it applied the config: flagged,
	// until the next status.
	waitFor(t, tab, "web1's config applied", `(r => r && r.children[4].textContent === '1' && !r.textContent.includes('not applied'))(document.querySelector('tr[data-host="web1"]'))`)
	screenshot(t, tab, "console-fleet.png")

	// The host page: add an entry and save it.
	err := chromedp.Do(tab,
		chromedp.Navigate(h.srv.URL()+"/hosts/web1"),
		chromedp.WaitVisible(chromedp.CSS("#entries tbody tr")),
		chromedp.Click(chromedp.CSS("#add-entry")),
		chromedp.SendKeys(chromedp.CSS("#entries tbody tr:nth-child(2) .e-path"), second),
		chromedp.SendKeys(chromedp.CSS("#entries tbody tr:nth-child(2) .e-topic"), "second_log"),
		chromedp.Click(chromedp.CSS("#save")),
	)
	if err != nil {
		t.Fatalf("edit: %v", err)
	}
	waitFor(t, tab, "saved", `document.querySelector('#message').textContent.startsWith('Saved')`)
	if v, _ := h.get(fleet.ConfigKey("web1")); !strings.Contains(v, second) || !strings.Contains(v, "second_log") {
		t.Fatalf("etcd holds %s", v)
	}
	// The agent applies it: the file shows on the page, its lines reach Kafka.
	waitFor(t, tab, "the new file followed", fmt.Sprintf(`[...document.querySelectorAll('#files td')].some(td => td.textContent === %q)`, second))
	os.WriteFile(second, []byte("hello from the console test\n"), 0o644)
	cons, err := testenv.NewConsumer(k.Addrs, "second_log")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		recs, err := cons.Poll(context.Background(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 && string(recs[0].Value) == "hello from the console test" && recs[0].Headers["host"] == "web1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the line of the added file did not reach Kafka")
		}
	}
	// The live tail shows a line written now.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#tail-start"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tab, "the tail following", `document.querySelector('#tail-state').textContent.startsWith('following')`)
	f, err := os.OpenFile(second, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("a line for the live tail\n")
	f.Close()
	waitFor(t, tab, "the line in the live tail", `document.querySelector('#tail').textContent.includes('second.log:28  a line for the live tail')`)
	screenshot(t, tab, "console-host.png")
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#tail-stop"))); err != nil {
		t.Fatal(err)
	}

	// A concurrent edit: the page says so and shows the current value.
	h.put(fleet.ConfigKey("web1"), fmt.Sprintf(`[{"path": %q, "topic": "web_log"}]`, first))
	err = chromedp.Do(tab,
		chromedp.SendKeys(chromedp.CSS("#entries tbody tr:nth-child(1) .e-topic"), "2"),
		chromedp.Click(chromedp.CSS("#save")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, tab, "the conflict shown", `document.querySelector('#message.error') && document.querySelector('#message').textContent.includes('changed since it was loaded')`)

	// The raw JSON editor: the agent's validation answers on the page,
	// and nothing is written.
	_, before := h.get(fleet.ConfigKey("web1"))
	err = chromedp.Do(tab,
		chromedp.Click(chromedp.CSS("#reload")),
		chromedp.Click(chromedp.CSS("#raw-toggle")),
		chromedp.WaitVisible(chromedp.CSS("#raw")),
		chromedp.SetValue(chromedp.CSS("#raw"), `[{"path": "var/log/relative.log", "topic": "web_log"}]`),
		chromedp.Click(chromedp.CSS("#save")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, tab, "the validation error shown", `document.querySelector('#message.error') && document.querySelector('#message').textContent.includes('path must be absolute')`)
	if _, after := h.get(fleet.ConfigKey("web1")); after != before {
		t.Fatalf("an invalid raw save wrote the key (revision %d → %d)", before, after)
	}

	// Bulk: add an entry to every web* host.
	err = chromedp.Do(tab,
		chromedp.Navigate(h.srv.URL()+"/bulk"),
		chromedp.WaitVisible(chromedp.CSS("#b-q")),
		chromedp.SendKeys(chromedp.CSS("#b-q"), "web"),
		chromedp.SendKeys(chromedp.CSS("#b-path"), "/var/log/bulk.log"),
		chromedp.SendKeys(chromedp.CSS("#b-topic"), "bulk_log"),
		chromedp.Click(chromedp.CSS("#b-preview")),
		chromedp.WaitEnabled(chromedp.CSS("#b-apply")),
		chromedp.Click(chromedp.CSS("#b-apply")),
	)
	if err != nil {
		t.Fatalf("bulk: %v", err)
	}
	waitFor(t, tab, "bulk applied", `document.querySelector('tr[data-host="web1"] .result').textContent === 'applied'`)
	if v, _ := h.get(fleet.ConfigKey("web1")); !strings.Contains(v, "bulk_log") {
		t.Fatalf("after bulk: %s", v)
	}
	if v, _ := h.get(fleet.ConfigKey("db1")); strings.Contains(v, "bulk_log") {
		t.Fatalf("db1 changed by a bulk change on web*: %s", v)
	}

	// Audit: the edit and the bulk change, by ed.
	err = chromedp.Do(tab, chromedp.Navigate(h.srv.URL()+"/audit"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, tab, "audit rows", `document.querySelectorAll('#audit tbody tr').length === 2 && document.querySelector('#audit tbody').textContent.includes('bulk-set')`)

	// The agent stops: offline on the fleet page, with no reload.
	if err := chromedp.Do(tab, chromedp.Navigate(h.srv.URL()+"/")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tab, "web1 listed", `!!document.querySelector('tr[data-host="web1"]')`)
	stopAgent()
	waitFor(t, tab, "web1 offline", `!!document.querySelector('tr[data-host="web1"][data-state="offline"]') && document.querySelector('tr[data-host="web1"]').textContent.includes('stopped at')`)
}

// startAgent runs a real agent for host against the harness's etcd and k;
// the returned function stops it and waits.
func startAgent(t *testing.T, h *harness, k *testenv.Kafka, host string) func() {
	t.Helper()
	dir := t.TempDir()
	p, err := testenv.WriteConfig(dir, host, k.Addrs, h.etcd.Endpoint, "[kafka]\nclient = franz-go\n")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(&tlogWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("agent", host)
	a, err := agent.New(cfg, log, "v-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the agent did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestBrowserAgentKilled: the logagent binary is killed (SIGKILL): its
// status key goes with its lease, and the fleet page shows the host
// offline, "lost contact after" its last check-in, without a reload.
func TestBrowserAgentKilled(t *testing.T) {
	tab := browser(t)
	h := newHarness(t)
	k := h.startKafka()
	h.start()
	dir := t.TempDir()
	bin, err := testenv.BuildAgent("..", dir, "")
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "app.log")
	os.WriteFile(logFile, nil, 0o644)
	h.put(fleet.ConfigKey("web1"), fmt.Sprintf(`[{"path": %q, "topic": "web_log"}]`, logFile))
	cfg, err := testenv.WriteConfig(dir, "web1", k.Addrs, h.etcd.Endpoint, "")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Stderr = &tlogWriter{t: t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	login(t, tab, h.srv.URL()+"/login", "viv")
	waitFor(t, tab, "web1 healthy", `!!document.querySelector('tr[data-host="web1"][data-state="healthy"]')`)
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, tab, "web1 offline after the kill", `(r => r && r.dataset.state === 'offline' && r.textContent.includes('lost contact after'))(document.querySelector('tr[data-host="web1"]'))`)
}

// TestBrowserSearch: a line written to a file a moment ago travels agent →
// Kafka → transfer → OpenSearch, and the Search page finds it: the match
// highlighted, the line's own markup shown as text, the histogram drawn,
// and the lines around it from the same file.
func TestBrowserSearch(t *testing.T) {
	tab := browser(t)
	root, _ := filepath.Abs("..")
	node := testenv.SharedOpenSearch(t, root)
	h := newHarness(t)
	k := h.startKafka()
	h.search.URLs = []string{node.URL}
	h.search.Timeout = 30 * time.Second
	h.start()

	index := fmt.Sprintf("browser-search-%d", time.Now().UnixNano()%1e6)
	// The page searches every index: an earlier run's (go test -count=N,
	// one node) would be hits too. Registered before the transfer starts,
	// so it runs after the transfer has stopped.
	t.Cleanup(func() {
		if err := node.DeleteIndices(index + "-*"); err != nil {
			t.Errorf("deleting the test's indices: %v", err)
		}
	})
	// Outside the fleet's prefix: the console's cache does not see it.
	if _, err := h.cli.Put(context.Background(), fleet.TransferConfigKey, fmt.Sprintf(`[{"topic": "search_log", "index": %q}]`, index)); err != nil {
		t.Fatal(err)
	}
	cfg := conf.DefaultTransfer()
	cfg.Transfer.Instance, cfg.Transfer.DataDir, cfg.Transfer.HTTPAddr = "t1", t.TempDir(), ""
	cfg.Kafka.Brokers, cfg.OpenSearch.URLs, cfg.Etcd.Endpoints = k.Addrs, []string{node.URL}, []string{h.etcd.Endpoint}
	tr, err := transfer.New(&cfg, slog.New(slog.NewTextHandler(&tlogWriter{t: t}, nil)).With("transfer", "t1"), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	logFile := filepath.Join(t.TempDir(), "app.log")
	h.put(fleet.ConfigKey("web1"), fmt.Sprintf(`[{"path": %q, "topic": "search_log", "read_from": "beginning"}]`, logFile))
	startAgent(t, h, k, "web1")
	testenv.AppendLine(logFile, "the line before")
	testenv.AppendLine(logFile, "a needle <b>in bold</b> here")
	testenv.AppendLine(logFile, "the line after")

	// The page searches once it is loaded: wait until the lines are
	// searchable, then open it.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(60 * time.Second); ; {
		ids, err := node.IDs(index + "-*")
		if err == nil && len(ids) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lines did not reach OpenSearch: %v %v", ids, err)
		}
		<-tick.C
	}
	login(t, tab, h.srv.URL()+"/", "viv")
	err = chromedp.Do(tab,
		chromedp.Navigate(h.srv.URL()+"/search"),
		chromedp.WaitVisible(chromedp.CSS("#search-form")),
		chromedp.SendKeys(chromedp.CSS("#s-q"), "needle"),
		chromedp.Click(chromedp.CSS(`#search-form button[type="submit"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, tab, "the hit shown", `document.querySelectorAll('#s-hits tbody tr').length === 1 && document.querySelector('#s-hits td.line mark')?.textContent === 'needle'`)
	waitFor(t, tab, "the line's markup shown as text", `(td => !td.querySelector('b') && td.textContent === 'a needle <b>in bold</b> here')(document.querySelector('#s-hits td.line'))`)
	waitFor(t, tab, "the hit's host and path", `(r => r.children[1].textContent === 'web1' && r.children[2].textContent === `+fmt.Sprintf("%q", logFile)+`)(document.querySelector('#s-hits tbody tr'))`)
	waitFor(t, tab, "a histogram bar", `[...document.querySelectorAll('#s-histogram .bar')].some(b => b.style.height === '100%')`)
	waitFor(t, tab, "the URL holds the search", `location.search.includes('q=needle')`)
	screenshot(t, tab, "console-search.png")
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#s-hits a.context"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tab, "the lines around it", `(rows => rows.length === 3 && rows[0].textContent.includes('the line before') && rows[1].classList.contains('this') && rows[2].textContent.includes('the line after'))([...document.querySelectorAll('#s-context tbody tr')])`)
}
