package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
)

// testPassword is grepped for in every output: it must never show.
const testPassword = "pa55-w0rd-never-shown"

// TestEtcdTLSAndAuth: etcd serving TLS, requiring client certificates and
// with authentication on; the agent connects with [etcd] tls_* files, an
// https:// endpoint and a password from password_file, and ships.
func TestEtcdTLSAndAuth(t *testing.T) {
	h := &harness{t: t, dir: t.TempDir(), client: conf.ClientSarama}
	ca, err := testenv.NewCA(h.dir, "etcd")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("etcd", false)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ca.Issue("agent", false)
	if err != nil {
		t.Fatal(err)
	}
	if h.etcd, err = testenv.StartEtcdTLS(h.dir, srv, ca); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.etcd.Close)
	if h.kafka, err = testenv.StartKafka(0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.kafka.Close)
	tlsConf := conf.TLS{Enabled: true, CAFile: ca.File, CertFile: cl.Cert, KeyFile: cl.Key}
	if h.cli, err = newEtcdClient(conf.Etcd{Endpoints: []string{h.etcd.Endpoint}, DialTimeout: 5 * time.Second, TLS: tlsConf}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cli.Close() })
	if h.cons, err = testenv.NewConsumer(h.kafka.Addrs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.cons.Close)

	log := filepath.Join(h.dir, "a.log")
	h.put(etcd.Entry{Path: log, Topic: "a", ReadFrom: "beginning"})
	ctx := context.Background()
	h.enableAuth(testPassword)
	pw := filepath.Join(h.dir, "etcd-password")
	os.WriteFile(pw, []byte(testPassword+"\n"), 0o600)
	appendFile(t, log, "over TLS\n")
	h.extra = fmt.Sprintf("[etcd]\nusername = root\npassword_file = %s\ndial_timeout = 10s\ntls_ca_file = %s\ntls_cert_file = %s\ntls_key_file = %s\n",
		pw, ca.File, cl.Cert, cl.Key)
	h.start()
	if rs := h.records(1); string(rs[0].Value) != "over TLS" {
		t.Fatalf("record = %q", rs[0].Value)
	}
	h.stop()

	// Without a client certificate etcd refuses the connection; check says
	// so in one line.
	h.extra = fmt.Sprintf("[etcd]\nusername = root\npassword_file = %s\ndial_timeout = 2s\ntls_ca_file = %s\n", pw, ca.File)
	var out bytes.Buffer
	if n := Check(ctx, h.config(), &out); n == 0 {
		t.Fatalf("check passed without a client certificate:\n%s", out.String())
	}
	want := "FAIL etcd    TLS handshake with etcd " + h.etcd.Endpoint + " failed: remote error: tls: certificate required; check [etcd] tls_ca_file"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("check output:\n%s\nwant a line with %q", out.String(), want)
	}
}

// TestAllowPathsRefusal: an entry outside [agent] allow_paths is refused
// with its reason in the status key (state error, last_error), the log and
// logagent_file_refused; check names it; the allowed entry ships.
func TestAllowPathsRefusal(t *testing.T) {
	h := newHarness(t, conf.ClientFranzGo)
	var logs syncBuffer
	logs.tlogWriter.t = t
	logsDir := filepath.Join(h.dir, "logs")
	os.Mkdir(logsDir, 0o755)
	real, _ := filepath.EvalSymlinks(logsDir)
	port, _ := testenv.FreePort()
	h.extra = fmt.Sprintf("[agent]\nallow_paths = %s/**\nhttp_addr = 127.0.0.1:%d\n", real, port)
	secret := filepath.Join(h.dir, "shadow")
	appendFile(t, secret, "root:hash\n")
	good := filepath.Join(logsDir, "app.log")
	h.put(etcd.Entry{Path: good, Topic: "a", ReadFrom: "beginning"}, etcd.Entry{Path: secret, Topic: "a", ReadFrom: "beginning"})
	a, err := New(h.config(), slog.New(slog.NewTextHandler(&logs, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.agent, h.cancel, h.done = a, cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(h.stop)
	appendFile(t, good, "shipped\n")
	if rs := h.records(1); string(rs[0].Value) != "shipped" {
		t.Fatalf("record = %q", rs[0].Value)
	}
	secretReal, _ := filepath.EvalSymlinks(secret)
	reason := fmt.Sprintf("%s is outside [agent] allow_paths (%s/**): refused", secretReal, real)
	// The status key cuts errors short (it is bounded): its start is there.
	inKey := strings.TrimSuffix(fleet.CutText(reason), "…")
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := h.cli.Get(ctx, fleet.StatusKey(host))
		if err == nil && len(resp.Kvs) == 1 && strings.Contains(string(resp.Kvs[0].Value), inKey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status key never showed %q: %v", reason, resp)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := fmt.Sprintf("logagent_file_refused{path=%q} 1", secret)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), "shows "+want, func(c int, b string) bool { return strings.Contains(b, want) })
	if !strings.Contains(logs.String(), reason) {
		t.Errorf("the log does not say %q", reason)
	}
	var out bytes.Buffer
	Check(ctx, h.config(), &out)
	if want := "FAIL file    " + reason + "; add it to [agent] allow_paths"; !strings.Contains(out.String(), want) {
		t.Errorf("check output:\n%s\nwant a line with %q", out.String(), want)
	}
	for _, r := range h.seen {
		if strings.Contains(string(r.Value), "root:hash") {
			t.Fatalf("the refused file was shipped")
		}
	}
}

// syncBuffer is a log destination tests can read, and that shows in t.Log.
type syncBuffer struct {
	tlogWriter
	b bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.tlogWriter.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestSecretsNeverShown: with SCRAM over TLS to Kafka (the password inline)
// and etcd authentication (the password from a file), the password shows
// nowhere: not in the log, the status key, /metrics, /healthz, check, nor
// in the errors of a wrong password.
func TestSecretsNeverShown(t *testing.T) {
	h := newHarness(t, conf.ClientSarama)
	ca, err := testenv.NewCA(h.dir, "kafka")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("kafka", false)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := testenv.ServerTLS(srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.kafka.Close()
	if h.kafka, err = testenv.StartKafkaOpts(kfake.TLS(tc), kfake.EnableSASL(), kfake.Superuser(conf.SASLSCRAM512, "agent", testPassword)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.kafka.Close)
	h.cons.Close()
	if h.cons, err = testenv.NewConsumerOpts(h.kafka.Addrs, kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool()}),
		kgo.SASL(scram.Auth{User: "agent", Pass: testPassword}.AsSha512Mechanism())); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(h.dir, "a.log")
	h.put(etcd.Entry{Path: log, Topic: "a", ReadFrom: "beginning"})
	ctx := context.Background()
	h.enableAuth(testPassword)
	if h.cli, err = newEtcdClient(conf.Etcd{Endpoints: []string{h.etcd.Endpoint}, DialTimeout: 10 * time.Second,
		Username: "root", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cli.Close() })
	pw := filepath.Join(h.dir, "etcd-password")
	os.WriteFile(pw, []byte(testPassword+"\n"), 0o644) // a warning, not shown
	port, _ := testenv.FreePort()
	kafkaSec := fmt.Sprintf("[kafka]\ntls = true\ntls_ca_file = %s\nsasl_mechanism = SCRAM-SHA-512\nsasl_username = agent\n", ca.File)
	etcdSec := fmt.Sprintf("[etcd]\nusername = root\npassword_file = %s\ndial_timeout = 10s\n", pw)
	h.extra = fmt.Sprintf("[agent]\nhttp_addr = 127.0.0.1:%d\n%ssasl_password = %s\n%s", port, kafkaSec, testPassword, etcdSec)

	var logs syncBuffer
	logs.tlogWriter.t = t
	run := func() (stop func()) {
		cfg := h.config()
		for _, w := range cfg.Warnings {
			slog.New(slog.NewTextHandler(&logs, nil)).Warn(w)
		}
		a, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)), "test")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		return func() { cancel(); <-done }
	}
	appendFile(t, log, "one\n")
	stop := run()
	h.records(1)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var outputs []string
	outputs = append(outputs, waitHTTP(t, base+"/metrics", "up", func(c int, b string) bool { return c == 200 }))
	_, body := get(t, base+"/healthz")
	outputs = append(outputs, body)
	var status string
	for deadline := time.Now().Add(15 * time.Second); status == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := h.cli.Get(ctx, fleet.StatusKey(host)); err == nil && len(resp.Kvs) == 1 {
			status = string(resp.Kvs[0].Value)
		}
	}
	if status == "" {
		t.Fatal("no status key")
	}
	outputs = append(outputs, status)
	var out bytes.Buffer
	Check(ctx, h.config(), &out)
	stop()

	// A wrong Kafka password: a clear error in the log, /healthz and
	// check, the line waits; fixed and restarted, it is delivered.
	h.extra = fmt.Sprintf("[agent]\nhttp_addr = 127.0.0.1:%d\n%ssasl_password = wrong-%s\n%s", port, kafkaSec, testPassword, etcdSec)
	appendFile(t, log, "two\n")
	stop = run()
	body = waitHTTP(t, base+"/healthz", "names the SASL failure", func(c int, b string) bool { return c == 503 && strings.Contains(b, "sasl_password") })
	outputs = append(outputs, body)
	Check(ctx, h.config(), &out)
	stop()
	// kfake closes the connection on a wrong password without a word.
	if !strings.Contains(out.String(), "FAIL kafka   "+h.kafka.Addrs[0]+" closed the connection: if it was during SASL SCRAM-SHA-512 authentication as \"agent\", check [kafka] sasl_username and sasl_password") {
		t.Errorf("check does not name the SASL failure:\n%s", out.String())
	}
	h.extra = fmt.Sprintf("[agent]\nhttp_addr = 127.0.0.1:%d\n%ssasl_password = %s\n%s", port, kafkaSec, testPassword, etcdSec)
	stop = run()
	if rs := h.records(2); string(rs[1].Value) != "two" {
		t.Fatalf("records %q, %q", rs[0].Value, rs[1].Value)
	}
	stop()

	outputs = append(outputs, out.String(), logs.String())
	for _, o := range outputs {
		if strings.Contains(o, testPassword) {
			t.Fatalf("the password shows in:\n%s", o)
		}
	}
	if !strings.Contains(logs.String(), "password_file: "+pw+" is readable by others than its owner") {
		t.Error("no warning about the password file's mode")
	}
}
