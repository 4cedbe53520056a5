package conf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConsoleExample: the shipped conf/console.ini parses.
func TestConsoleExample(t *testing.T) {
	c, err := LoadConsole("console.ini")
	if err != nil {
		t.Fatal(err)
	}
	if c.Console.Listen != "127.0.0.1:9400" || c.Console.UsersFile == "" || c.Console.SessionTTL != 12*time.Hour ||
		len(c.Etcd.Endpoints) != 1 || c.Etcd.DialTimeout != 5*time.Second {
		t.Errorf("%+v", c)
	}
}

func TestConsoleErrors(t *testing.T) {
	base := "[console]\nusers_file = /u\n[etcd]\nendpoints = 127.0.0.1:2379\n"
	for _, tc := range []struct{ ini, want string }{
		{"[console]\nusers_file = /u\n", "[etcd]: missing section"},
		{"[etcd]\nendpoints = h:1\n", "[console]: missing section"},
		{"[console]\n[etcd]\nendpoints = h:1\n", "[console] users_file: required"},
		{base + "[agent]\n", "[agent]: unknown section (want console, etcd, kafka, opensearch)"},
		{base + "[opensearch]\n", "[opensearch] urls: required"},
		{base + "[opensearch]\nurls = http://o:9200\nshards = 2\n", "[opensearch] shards: unknown key"},
		{base + "[opensearch]\nurls = http://o:9200\npassword = p\n", "[opensearch] username: required with a password"},
		{base + "[kafka]\n", "[kafka] brokers: required"},
		{base + "[kafka]\nbrokers = nohost\n", "[kafka] brokers: \"nohost\""},
		{strings.Replace(base, "[console]\n", "[console]\nlisten_addr = :1\n", 1), "[console] listen_addr: unknown key"},
		{strings.Replace(base, "[console]\n", "[console]\nlisten = nowhere\n", 1), "[console] listen: \"nowhere\""},
		{strings.Replace(base, "[console]\n", "[console]\ntls_cert_file = /c\n", 1), "tls_cert_file and tls_key_file go together"},
		{strings.Replace(base, "[console]\n", "[console]\nsession_ttl = 1s\n", 1), "below the minimum"},
		{strings.Replace(base, "[console]\n", "[console]\nusers_file = /v\n", 1), "given 2 times"},
		{"x = 1\n" + base, "key outside any section"},
		{strings.Replace(base, "127.0.0.1:2379", "", 1), "[etcd] endpoints: required"},
	} {
		_, err := ParseConsole("c.ini", []byte(tc.ini))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.ini, err, tc.want)
		}
	}
	if c, err := ParseConsole("c.ini", []byte(base)); err != nil || c.Kafka.Brokers != nil {
		t.Error(c, err)
	}
	if c, err := ParseConsole("c.ini", []byte(base+"[kafka]\nbrokers = a:1, b:2\n")); err != nil || len(c.Kafka.Brokers) != 2 {
		t.Error(c, err)
	}
}

// TestConsoleKafkaSecurity: the console's [kafka] takes the agent's TLS and
// SASL keys, read and checked by the same code; a bad one is an error
// naming it, and the producer's keys stay unknown.
func TestConsoleKafkaSecurity(t *testing.T) {
	dir := t.TempDir()
	ca, cl := testCerts(t, dir)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o644)
	base := "[console]\nusers_file = /u\n[etcd]\nendpoints = 127.0.0.1:2379\n[kafka]\nbrokers = b:9093\n"
	ini := base + fmt.Sprintf(`tls = true
tls_ca_file = %s
tls_cert_file = %s
tls_key_file = %s
tls_server_name = kafka.example
tls_insecure_skip_verify = false
sasl_mechanism = SCRAM-SHA-512
sasl_username = console
sasl_password_file = %s
`, ca.File, cl.Cert, cl.Key, pw)
	c, err := ParseConsole("c.ini", []byte(ini))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Kafka
	if !k.TLS.Enabled || k.TLS.CAFile != ca.File || k.TLS.CertFile != cl.Cert || k.TLS.KeyFile != cl.Key ||
		k.TLS.ServerName != "kafka.example" || k.SASLMechanism != SASLSCRAM512 || k.SASLUsername != "console" ||
		k.SASLPassword.Reveal() != "s3cret" {
		t.Errorf("kafka %+v", k)
	}
	if !strings.Contains(strings.Join(c.Warnings, "\n"), pw) {
		t.Errorf("no warning for the password file others can read: %q", c.Warnings)
	}
	if c, err := ParseConsole("c.ini", []byte(base+"sasl_mechanism = PLAIN\nsasl_username = u\nsasl_password = p\n")); err != nil ||
		c.Kafka.SASLPassword.Reveal() != "p" || !strings.Contains(strings.Join(c.Warnings, "\n"), "clear text") {
		t.Errorf("%+v %v", c, err)
	}

	for _, tc := range []struct{ keys, want string }{
		{"sasl_mechanism = MD5\n", "c.ini: [kafka] sasl_mechanism:"},
		{"sasl_username = u\n", "c.ini: [kafka] sasl_mechanism: required with sasl_username"},
		{"sasl_mechanism = SCRAM-SHA-256\nsasl_username = u\n", "c.ini: [kafka] sasl_password: required"},
		{"tls = true\ntls_ca_file = " + filepath.Join(dir, "none.pem") + "\n", "c.ini: [kafka] tls_ca_file:"},
		{"tls_cert_file = " + cl.Cert + "\n", "c.ini: [kafka] tls_cert_file: set without tls_key_file"},
		{"tls = maybe\n", "c.ini: [kafka] tls:"},
		{"client = franz-go\n", "c.ini: [kafka] client: unknown key"},
	} {
		_, err := ParseConsole("c.ini", []byte(base+tc.keys))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.keys, err, tc.want)
		}
	}
}

// TestConsoleOpenSearch: the optional [opensearch] section is read by the
// transfer's reader (a password from a file too); without it, no search.
func TestConsoleOpenSearch(t *testing.T) {
	base := "[console]\nusers_file = /u\n[etcd]\nendpoints = 127.0.0.1:2379\n"
	if c, err := ParseConsole("c.ini", []byte(base)); err != nil || c.OpenSearch.URLs != nil {
		t.Fatal(c, err)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConsole("c.ini", []byte(base+"[opensearch]\nurls = http://o1:9200, http://o2:9200\nusername = u\npassword_file = "+pw+"\ntimeout = 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OpenSearch.URLs) != 2 || c.OpenSearch.Username != "u" || c.OpenSearch.Password != "s3cret" || c.OpenSearch.Timeout != 5*time.Second {
		t.Errorf("%+v", c.OpenSearch)
	}
}
