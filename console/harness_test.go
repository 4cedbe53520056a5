package console

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/internal/testenv"
)

type tlogWriter struct {
	mu sync.Mutex
	t  testing.TB
}

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// harness is a console on a real embedded etcd, with a viewer and an
// editor in its users file.
type harness struct {
	t     testing.TB
	dir   string
	etcd  *testenv.Etcd
	cli   *clientv3.Client
	srv   *Server
	users string
	// kafka, set before start, is the live tail's Kafka.
	kafka conf.Kafka
	// search, set before start, is the Search page's OpenSearch.
	search conf.OpenSearch
	// tls, set before start, serves HTTPS with a self-signed certificate.
	tls     bool
	certDER []byte
}

// writeCert writes a self-signed certificate for 127.0.0.1.
func (h *harness) writeCert() (certFile, keyFile string) {
	h.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "console test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		h.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		h.t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(h.dir, "cert.pem"), filepath.Join(h.dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	h.certDER = der
	return certFile, keyFile
}

const testPassword = "correct horse battery"

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir()}
	var err error
	if h.etcd, err = testenv.StartEtcd(h.dir, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.etcd.Close)
	h.connect(h.etcd.Endpoint)
	return h
}

// newHarnessNoEtcd is a harness whose etcd is not started: its client
// dials 127.0.0.1:port.
func newHarnessNoEtcd(t testing.TB, port int) *harness {
	h := &harness{t: t, dir: t.TempDir()}
	h.connect(fmt.Sprintf("127.0.0.1:%d", port))
	return h
}

func (h *harness) connect(endpoint string) {
	t := h.t
	var err error
	h.cli, err = clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cli.Close() })
	h.users = filepath.Join(h.dir, "users")
	for name, role := range map[string]string{"viv": roleViewer, "ed": roleEditor} {
		if err := AddUser(h.users, name, role, []byte(testPassword)); err != nil {
			t.Fatal(err)
		}
	}
}

// startKafka starts an in-process Kafka for the live tail (and agents);
// call it before start.
func (h *harness) startKafka() *testenv.Kafka {
	h.t.Helper()
	k, err := testenv.StartKafka(0)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(k.Close)
	h.kafka.Brokers = k.Addrs
	return k
}

// start starts the console.
func (h *harness) start() {
	h.t.Helper()
	cfg := conf.DefaultConsole().Console
	cfg.Listen, cfg.UsersFile = "127.0.0.1:0", h.users
	if h.tls {
		cfg.TLSCertFile, cfg.TLSKeyFile = h.writeCert()
	}
	log := slog.New(slog.NewTextHandler(&tlogWriter{t: h.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(cfg, h.cli, h.kafka, log)
	if err != nil {
		h.t.Fatal(err)
	}
	srv.SetSearch(h.search)
	h.srv = srv
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	h.t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			h.t.Errorf("Run: %v", err)
		}
	})
	if h.etcd != nil {
		select {
		case <-srv.cache.loaded:
		case <-time.After(10 * time.Second):
			h.t.Fatal("the console did not read the fleet from etcd")
		}
	}
}

// put writes key and waits until the console's cache has seen it.
func (h *harness) put(key, value string) int64 {
	h.t.Helper()
	resp, err := h.cli.Put(context.Background(), key, value)
	if err != nil {
		h.t.Fatal(err)
	}
	h.waitRev(resp.Header.Revision)
	return resp.Header.Revision
}

func (h *harness) del(key string) {
	h.t.Helper()
	resp, err := h.cli.Delete(context.Background(), key)
	if err != nil {
		h.t.Fatal(err)
	}
	h.waitRev(resp.Header.Revision)
}

// waitRev returns once the console's cache is at rev or later.
func (h *harness) waitRev(rev int64) {
	h.t.Helper()
	ch, unsubscribe := h.srv.cache.subscribe()
	defer unsubscribe()
	timeout := time.After(10 * time.Second)
	for {
		if h.srv.cache.revision() >= rev {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			h.t.Fatalf("the console's cache did not reach revision %d", rev)
		}
	}
}

func (h *harness) get(key string) (string, int64) {
	h.t.Helper()
	resp, err := h.cli.Get(context.Background(), key)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
}

// client is a browser-like API client: a cookie jar and the CSRF token.
type client struct {
	h    *harness
	http *http.Client
	csrf string
}

func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	if h.certDER != nil {
		cert, _ := x509.ParseCertificate(h.certDER)
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	return &client{h: h, http: hc}
}

// login logs in as name and fails the test if it cannot.
func (h *harness) login(name string) *client {
	h.t.Helper()
	c := h.client()
	var s session
	if st := c.do("POST", "/api/login", map[string]string{"user": name, "password": testPassword}, &s); st != 200 {
		h.t.Fatalf("login %s: status %d", name, st)
	}
	c.csrf = s.CSRF
	return c
}

// do calls the API with a JSON body (nil: none) and decodes the answer
// into out (nil: dropped); it returns the status.
func (c *client) do(method, path string, body, out any) int {
	c.h.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.h.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.h.srv.URL()+path, r)
	if err != nil {
		c.h.t.Fatal(err)
	}
	if c.csrf != "" {
		req.Header.Set(csrfHeader, c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.h.t.Fatalf("%s %s: status %d, body %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
