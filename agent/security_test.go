package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
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
	for _, step := range []func() error{
		func() error { _, err := h.cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := h.cli.UserAdd(ctx, "root", testPassword); return err },
		func() error { _, err := h.cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := h.cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
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
	t.Logf("check:\n%s", out.String())
}
