package conf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
)

// Secret is a password. It prints as "[redacted]" with every fmt verb and
// in JSON, so that a config, an error or a log line that carries it by
// mistake does not show it; Reveal gives the value to the client that
// sends it.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// MarshalText keeps the value out of JSON and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the password itself.
func (s Secret) Reveal() string { return string(s) }

// TLS is the TLS of a client: the files are PEM; none set and Enabled
// false means plain TCP.
type TLS struct {
	Enabled    bool
	CAFile     string // the CA that signs the servers' certificates; empty: the system's
	CertFile   string // the client certificate, for mutual TLS (with KeyFile)
	KeyFile    string
	ServerName string // the name expected in the server certificate; empty: the host dialled
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool
}

// Config returns the tls.Config t describes (nil when TLS is off). The
// files are read now: a client made later (a restart of the agent) sees a
// renewed certificate.
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	var err error
	if t.CAFile != "" {
		if c.RootCAs, err = loadCA(t.CAFile); err != nil {
			return nil, err
		}
	}
	if t.CertFile != "" {
		cert, err := loadCert(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func loadCA(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

func loadCert(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return cert, fmt.Errorf("certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// SASL mechanisms accepted in [kafka] sasl_mechanism.
const (
	SASLPlain    = "PLAIN"
	SASLSCRAM256 = "SCRAM-SHA-256"
	SASLSCRAM512 = "SCRAM-SHA-512"
)

// DefaultAllowPaths is [agent] allow_paths when the file leaves it out.
var DefaultAllowPaths = []string{"/var/log/**"}

// tls reads the TLS keys of the reader's section; enabled says TLS is on
// whatever the keys (etcd: an https:// endpoint).
func (r *reader) tls(dst *TLS, withSwitch bool, warnings *[]string) {
	if withSwitch {
		r.boolean("tls", &dst.Enabled)
	}
	r.path("tls_ca_file", &dst.CAFile)
	r.path("tls_cert_file", &dst.CertFile)
	r.path("tls_key_file", &dst.KeyFile)
	r.str("tls_server_name", &dst.ServerName)
	r.boolean("tls_insecure_skip_verify", &dst.InsecureSkipVerify)
	switch {
	case dst.CertFile != "" && dst.KeyFile == "":
		r.fail("tls_cert_file", "set without tls_key_file (mutual TLS needs both)")
		return
	case dst.KeyFile != "" && dst.CertFile == "":
		r.fail("tls_key_file", "set without tls_cert_file (mutual TLS needs both)")
		return
	}
	anySet := dst.CAFile != "" || dst.CertFile != "" || dst.ServerName != "" || dst.InsecureSkipVerify
	if withSwitch && anySet && !dst.Enabled {
		r.fail("tls", "false, but TLS settings are given; set tls = true")
		return
	}
	if !withSwitch && anySet {
		dst.Enabled = true
	}
	if r.err != nil {
		return
	}
	// A certificate or CA that does not load is found now, not at the
	// first connection.
	if dst.CAFile != "" {
		if _, err := loadCA(dst.CAFile); err != nil {
			r.fail("tls_ca_file", "%v", err)
			return
		}
	}
	if dst.CertFile != "" {
		if _, err := loadCert(dst.CertFile, dst.KeyFile); err != nil {
			r.fail("tls_cert_file", "%v", err)
			return
		}
		r.private("tls_key_file", dst.KeyFile, warnings)
	}
}

// private warns when file, a secret, is readable by others than its owner.
func (r *reader) private(key, file string, warnings *[]string) {
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		*warnings = append(*warnings, fmt.Sprintf("[%s] %s: %s is readable by others than its owner (mode %04o); chmod 600 it",
			r.sec.Name(), key, file, fi.Mode().Perm()))
	}
}

// path reads a path-valued key and checks the file is readable.
func (r *reader) path(key string, dst *string) {
	v, ok := r.value(key)
	if !ok || v == "" {
		return
	}
	f, err := os.Open(v)
	if err != nil {
		r.fail(key, "%v", err)
		return
	}
	f.Close()
	*dst = v
}

// secret reads a password from key, or from the file named by key_file
// (its first line; a trailing newline is not part of it). A file that
// others than its owner can read gets a warning.
func (r *reader) secret(key string, dst *Secret, warnings *[]string) {
	v, inline := r.value(key)
	file, fromFile := r.value(key + "_file")
	if inline && fromFile && file != "" {
		r.fail(key+"_file", "given with %s; keep one", key)
		return
	}
	if !fromFile || file == "" {
		*dst = Secret(v)
		return
	}
	if _, err := os.Stat(file); err != nil {
		r.fail(key+"_file", "%v", err)
		return
	}
	data, err := os.ReadFile(file)
	if err != nil {
		r.fail(key+"_file", "%v", err)
		return
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" || strings.ContainsAny(s, "\r\n") {
		r.fail(key+"_file", "%s must hold the password on one line", file)
		return
	}
	r.private(key+"_file", file, warnings)
	*dst = Secret(s)
}

// sasl reads the [kafka] SASL keys.
func (r *reader) sasl(k *Kafka, warnings *[]string) {
	r.oneOf("sasl_mechanism", &k.SASLMechanism, SASLPlain, SASLSCRAM256, SASLSCRAM512)
	r.str("sasl_username", &k.SASLUsername)
	r.secret("sasl_password", &k.SASLPassword, warnings)
	if r.err != nil {
		return
	}
	switch {
	case k.SASLMechanism == "" && (k.SASLUsername != "" || k.SASLPassword != ""):
		r.fail("sasl_mechanism", "required with sasl_username or a password (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
	case k.SASLMechanism != "" && k.SASLUsername == "":
		r.fail("sasl_username", "required with sasl_mechanism = %s", k.SASLMechanism)
	case k.SASLMechanism != "" && k.SASLPassword == "":
		r.fail("sasl_password", "required with sasl_mechanism = %s (or sasl_password_file)", k.SASLMechanism)
	case k.SASLMechanism == SASLPlain && !k.TLS.Enabled:
		*warnings = append(*warnings, "[kafka] sasl_mechanism = PLAIN without tls = true sends the password in clear text")
	}
}

// allowPaths reads [agent] allow_paths: absolute glob patterns, '*' within
// a directory, '**' as a whole segment for any number of directories.
func (r *reader) allowPaths(dst *[]string) {
	v, ok := r.value("allow_paths")
	if !ok {
		return
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if err := checkAllowPattern(p); err != nil {
			r.fail("allow_paths", "%q: %v", p, err)
			return
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		r.fail("allow_paths", "empty: no file could be read (e.g. /var/log/**)")
		return
	}
	*dst = out
}

func checkAllowPattern(p string) error {
	if !strings.HasPrefix(p, "/") {
		return errors.New("not an absolute path")
	}
	if path.Clean(p) != p {
		return fmt.Errorf("not clean (write %s)", path.Clean(p))
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == ".." || seg == "." {
			return errors.New("'.' and '..' are not allowed")
		}
		if strings.Contains(seg, "**") && seg != "**" {
			return errors.New("'**' must be a whole path segment (/var/log/**, not /var/log/a**)")
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("bad glob: %v", err)
		}
	}
	return nil
}
