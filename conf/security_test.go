package conf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logagent/logagent/internal/testenv"
)

// TestSecurityKeys: TLS, SASL, passwords from files and allow_paths load
// into the config; a password file others can read gets a warning.
func TestSecurityKeys(t *testing.T) {
	dir := t.TempDir()
	ca, cl := testCerts(t, dir)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret;#x\n"), 0o644)
	ini := fmt.Sprintf(`[agent]
allow_paths = /var/log/**, /srv/*/logs/**
[kafka]
brokers = b:9093
tls = true
tls_ca_file = %[1]s
tls_cert_file = %[2]s
tls_key_file = %[3]s
tls_server_name = kafka.example
sasl_mechanism = SCRAM-SHA-512
sasl_username = agent
sasl_password_file = %[4]s
[etcd]
endpoints = https://e:2379
username = agent
password = p;w
tls_ca_file = %[1]s
`, ca.File, cl.Cert, cl.Key, pw)
	c, err := Parse("x.ini", []byte(ini))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Kafka
	if !k.TLS.Enabled || k.TLS.CAFile != ca.File || k.TLS.CertFile != cl.Cert || k.TLS.ServerName != "kafka.example" ||
		k.SASLMechanism != SASLSCRAM512 || k.SASLUsername != "agent" || k.SASLPassword.Reveal() != "s3cret;#x" {
		t.Errorf("kafka %+v", k)
	}
	if !c.Etcd.TLS.Enabled || c.Etcd.Password.Reveal() != "p;w" || strings.Join(c.Agent.AllowPaths, " ") != "/var/log/** /srv/*/logs/**" {
		t.Errorf("etcd %+v, allow %q", c.Etcd, c.Agent.AllowPaths)
	}
	os.Chmod(cl.Key, 0o640)
	if c, err = Parse("x.ini", []byte(ini)); err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], "[kafka] tls_key_file: "+cl.Key+" is readable by others than its owner (mode 0640)") ||
		!strings.Contains(c.Warnings[1], "sasl_password_file: "+pw+" is readable by others") {
		t.Errorf("warnings %q", c.Warnings)
	}
	if tc, err := k.TLS.Config(); err != nil || len(tc.Certificates) != 1 || tc.RootCAs == nil {
		t.Errorf("tls config %v %v", tc, err)
	}
	// The password never prints.
	if s := fmt.Sprintf("%v %+v %#v %s", c, c, c, c.Kafka.SASLPassword); strings.Contains(s, "s3cret") || strings.Contains(s, "p;w") {
		t.Errorf("a password prints: %s", s)
	}
	os.Chmod(pw, 0o600)
	os.Chmod(cl.Key, 0o600)
	if c, err = Parse("x.ini", []byte(ini)); err != nil || len(c.Warnings) != 0 {
		t.Errorf("mode 600: %v %q", err, c.Warnings)
	}
}

func TestSecurityErrors(t *testing.T) {
	dir := t.TempDir()
	ca, cl := testCerts(t, dir)
	missing := filepath.Join(dir, "nope.pem")
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, tc := range []struct{ name, ini, want string }{
		{"cert without key", fmt.Sprintf("[kafka]\ntls = true\ntls_cert_file = %s\n", cl.Cert),
			"x.ini: [kafka] tls_cert_file: set without tls_key_file (mutual TLS needs both)"},
		{"key without cert", fmt.Sprintf("[etcd]\ntls_key_file = %s\n", cl.Key),
			"x.ini: [etcd] tls_key_file: set without tls_cert_file (mutual TLS needs both)"},
		{"missing CA", fmt.Sprintf("[kafka]\ntls = true\ntls_ca_file = %s\n", missing),
			fmt.Sprintf("x.ini: [kafka] tls_ca_file: open %s: no such file or directory", missing)},
		{"CA not PEM", fmt.Sprintf("[kafka]\ntls = true\ntls_ca_file = %s\n", empty),
			fmt.Sprintf("x.ini: [kafka] tls_ca_file: %s holds no PEM certificate", empty)},
		{"key of another cert", fmt.Sprintf("[kafka]\ntls = true\ntls_cert_file = %s\ntls_key_file = %s\n", cl.Cert, ca.File),
			"x.ini: [kafka] tls_cert_file: certificate " + cl.Cert + " with key " + ca.File + ": tls: found a certificate rather than a key in the PEM for the private key"},
		{"tls settings with tls off", fmt.Sprintf("[kafka]\ntls_ca_file = %s\n", ca.File),
			"x.ini: [kafka] tls: false, but TLS settings are given; set tls = true"},
		{"mechanism without user", "[kafka]\nsasl_mechanism = PLAIN\nsasl_password = x\n",
			"x.ini: [kafka] sasl_username: required with sasl_mechanism = PLAIN"},
		{"mechanism without password", "[kafka]\nsasl_mechanism = SCRAM-SHA-256\nsasl_username = u\n",
			"x.ini: [kafka] sasl_password: required with sasl_mechanism = SCRAM-SHA-256 (or sasl_password_file)"},
		{"user without mechanism", "[kafka]\nsasl_username = u\n",
			"x.ini: [kafka] sasl_mechanism: required with sasl_username or a password (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"},
		{"bad mechanism", "[kafka]\nsasl_mechanism = GSSAPI\n",
			`x.ini: [kafka] sasl_mechanism: invalid value "GSSAPI" (want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)`},
		{"missing password file", fmt.Sprintf("[etcd]\nusername = u\npassword_file = %s\n", missing),
			fmt.Sprintf("x.ini: [etcd] password_file: stat %s: no such file or directory", missing)},
		{"empty password file", fmt.Sprintf("[etcd]\nusername = u\npassword_file = %s\n", empty),
			fmt.Sprintf("x.ini: [etcd] password_file: %s must hold the password on one line", empty)},
		{"password and file", fmt.Sprintf("[etcd]\nusername = u\npassword = x\npassword_file = %s\n", empty),
			"x.ini: [etcd] password_file: given with password; keep one"},
		{"password without user", "[etcd]\npassword = x\n", "x.ini: [etcd] username: required with a password"},
		{"https and http", fmt.Sprintf("[etcd]\ntls_ca_file = %s\n", ca.File),
			`x.ini: [etcd] endpoints: "http://e1:2379" is http:// but tls_* files are set; write https://`},
		{"relative allow path", "[agent]\nallow_paths = var/log/**\n", `x.ini: [agent] allow_paths: "var/log/**": not an absolute path`},
		{"dotdot allow path", "[agent]\nallow_paths = /var/log/../../etc/*\n", `x.ini: [agent] allow_paths: "/var/log/../../etc/*": not clean (write /etc/*)`},
		{"partial **", "[agent]\nallow_paths = /var/log**\n", `x.ini: [agent] allow_paths: "/var/log**": '**' must be a whole path segment (/var/log/**, not /var/log/a**)`},
		{"bad glob", "[agent]\nallow_paths = /var/[log\n", `x.ini: [agent] allow_paths: "/var/[log": bad glob: syntax error in pattern`},
		{"empty allow", "[agent]\nallow_paths = ,\n", "x.ini: [agent] allow_paths: empty: no file could be read (e.g. /var/log/**)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ini := minimal + tc.ini
			if tc.name == "https and http" {
				ini = strings.Replace(ini, "e1:2379", "http://e1:2379", 1)
			}
			_, err := Parse("x.ini", []byte(ini))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

// testCerts makes a CA and a client certificate it signs, in dir.
func testCerts(t *testing.T, dir string) (*testenv.CA, testenv.CertFiles) {
	t.Helper()
	ca, err := testenv.NewCA(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ca.Issue("agent", false)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cl
}
