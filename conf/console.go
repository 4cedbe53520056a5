package conf

import (
	"time"

	"gopkg.in/ini.v1"
)

// Console is the configuration of `logagent console`.
type Console struct {
	Console ConsoleServer
	Etcd    Etcd
	// Kafka is where the live tail reads a host's lines; no [kafka]
	// section: no live tail. Only Brokers and the agent's TLS and SASL
	// keys are read (knownConsole): the tail connects as an agent does.
	Kafka Kafka
	// OpenSearch is where the Search page searches the transfer's
	// indices; no [opensearch] section (no URLs): no search.
	OpenSearch OpenSearch
	// Warnings are problems that do not stop the console (a password
	// file others can read).
	Warnings []string
}

// ConsoleServer holds the [console] section.
type ConsoleServer struct {
	Listen      string        // host:port of the web console
	UsersFile   string        // bcrypt-hashed users, written by `logagent console adduser`
	TLSCertFile string        // both set: HTTPS; both empty: HTTP
	TLSKeyFile  string        //
	SessionTTL  time.Duration // how long a login lasts
	LogLevel    string        // debug, info, warn, error
}

// DefaultConsole returns the values used for every key the file leaves out.
func DefaultConsole() Console {
	return Console{
		Console: ConsoleServer{Listen: "127.0.0.1:9400", SessionTTL: 12 * time.Hour, LogLevel: "info"},
		Etcd:    Etcd{DialTimeout: 5 * time.Second},
	}
}

var knownConsole = map[string][]string{
	"console": {"listen", "users_file", "tls_cert_file", "tls_key_file", "session_ttl", "log_level"},
	"etcd":    known["etcd"], // the agent's [etcd]: read by the same reader
	"kafka":   append([]string{"brokers"}, kafkaSecurityKeys...),
	// The transfer's connection keys: read by the same reader.
	"opensearch": {"urls", "username", "password", "password_file", "timeout"},
}

// LoadConsole reads and validates the console's ini file at path.
func LoadConsole(path string) (*Console, error) { return loadConsole(path, path) }

// ParseConsole validates console ini text; name is used in errors.
func ParseConsole(name string, data []byte) (*Console, error) { return loadConsole(name, data) }

func loadConsole(name string, source any) (*Console, error) {
	f, err := ini.LoadSources(ini.LoadOptions{SpaceBeforeInlineComment: true, AllowShadows: true}, source)
	if err != nil {
		return nil, &Error{File: name, Msg: err.Error()}
	}
	if err := checkSections(name, f, knownConsole, []string{"console", "etcd", "kafka", "opensearch"}, "console", "etcd"); err != nil {
		return nil, err
	}
	c := DefaultConsole()
	r := &reader{file: name}
	section := func(s string) *reader { r.sec = f.Section(s); return r }

	s := section("console")
	s.str("listen", &c.Console.Listen)
	if err := checkHostPort(c.Console.Listen, true); err != nil {
		s.fail("listen", "%q: %v (want host:port, e.g. 127.0.0.1:9400)", c.Console.Listen, err)
	}
	s.str("users_file", &c.Console.UsersFile)
	if c.Console.UsersFile == "" {
		s.fail("users_file", "required: the file `logagent console adduser NAME` writes, e.g. /etc/logagent/console-users")
	}
	s.str("tls_cert_file", &c.Console.TLSCertFile)
	s.str("tls_key_file", &c.Console.TLSKeyFile)
	if (c.Console.TLSCertFile == "") != (c.Console.TLSKeyFile == "") {
		s.fail("tls_key_file", "tls_cert_file and tls_key_file go together: set both for HTTPS, or neither")
	}
	s.duration("session_ttl", &c.Console.SessionTTL, time.Minute)
	s.oneOf("log_level", &c.Console.LogLevel, "debug", "info", "warn", "error")

	section("etcd").etcd(&c.Etcd, &c.Warnings)

	if f.HasSection("kafka") {
		k := section("kafka")
		k.required("brokers", &c.Kafka.Brokers)
		k.addresses("brokers", c.Kafka.Brokers, false)
		k.tls(&c.Kafka.TLS, true, &c.Warnings)
		k.sasl(&c.Kafka, &c.Warnings)
	}
	if f.HasSection("opensearch") {
		c.OpenSearch.Timeout = 30 * time.Second
		section("opensearch").opensearch(&c.OpenSearch, &c.Warnings)
	}
	if r.err != nil {
		return nil, r.err
	}
	return &c, nil
}
