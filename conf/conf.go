// Package conf loads logagent's ini configuration into a typed Config.
//
// Loading is strict on purpose: an unknown section or key, a missing
// required key or a value that does not parse is reported as one error
// naming the file, the section and the key, so that a typo never becomes a
// silently ignored setting.
package conf

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// Config is the whole agent configuration.
type Config struct {
	Agent Agent
	Kafka Kafka
	Etcd  Etcd
	// Warnings are problems that do not stop the agent (a password file
	// others can read): the caller logs them.
	Warnings []string
}

// Agent holds the [agent] section.
type Agent struct {
	Host            string            // identity in etcd keys; empty = from HostFrom
	HostFrom        string            // when Host is empty: HostFromName (os.Hostname) or HostFromIP (outbound IP)
	Labels          map[string]string // published in the status: the console filters hosts by them
	DataDir         string            // positions and cached config
	HTTPAddr        string            // /metrics and /healthz; empty = off
	LogLevel        string            // debug, info, warn, error
	LogFormat       string            // text or json
	MaxLineBytes    int               // longer lines are split into pieces of this size
	BufferBytes     int64             // bytes read but not yet acked by Kafka, all files together
	ShutdownTimeout time.Duration     // how long a stop waits for in-flight acks
	RotateWait      time.Duration     // how long a rotated-away file is still read after its last growth
	PollInterval    time.Duration     // safety re-check of every file when no fs event arrives
	MaxReadDelay    time.Duration     // longest a written line waits to be read while its file gathers more
	// AllowPaths are the globs a followed file's real path (symlinks and
	// '..' resolved) must match: etcd says what to read, this says what
	// may be read.
	AllowPaths []string
	// MaxFilesPerEntry refuses a glob entry that matches more files.
	MaxFilesPerEntry int
}

// Kafka holds the [kafka] section.
type Kafka struct {
	Brokers         []string
	Client          string // sarama or franz-go
	Version         string // protocol version for sarama, e.g. 2.8.0
	Compression     string // none, gzip, snappy, lz4, zstd
	RequiredAcks    string // all, leader, none
	Idempotent      bool
	MaxMessageBytes int
	Linger          time.Duration // how long the producer waits to fill a batch
	RetryBackoff    time.Duration // first wait before a failed send is retried
	Key             string        // the record key: KeyID or KeyPath
	TLS             TLS
	SASLMechanism   string // "" (none), SASLPlain, SASLSCRAM256, SASLSCRAM512
	SASLUsername    string
	SASLPassword    Secret
	// LargestRecord is not an ini key: the largest record the agent sends,
	// max_line_bytes + RecordOverhead (set by Parse and Default). 0, for
	// other callers of kafka.New, means MaxMessageBytes.
	LargestRecord int
}

// Etcd holds the [etcd] section.
type Etcd struct {
	Endpoints   []string
	DialTimeout time.Duration
	Username    string
	Password    Secret
	TLS         TLS // on with an https:// endpoint or a tls_* file
}

// Client names accepted in [kafka] client.
const (
	ClientSarama = "sarama"

	// Where an empty [agent] host comes from.
	HostFromName  = "hostname" // os.Hostname: stable across DHCP leases
	HostFromIP    = "ip"       // the outbound IP, as the tutorial lineage did
	ClientFranzGo = "franz-go"
)

// Record keys accepted in [kafka] key.
const (
	// KeyID keys a record with its line's id, <host>:<file>:<offset>: a
	// sink can use it as a document id (the same line always has it).
	KeyID = "id"
	// KeyPath keys a record with the configured path.
	KeyPath = "path"
)

// Error is a configuration problem at one key.
type Error struct {
	File, Section, Key string
	Msg                string
}

func (e *Error) Error() string {
	switch {
	case e.Key != "":
		return fmt.Sprintf("%s: [%s] %s: %s", e.File, e.Section, e.Key, e.Msg)
	case e.Section != "":
		return fmt.Sprintf("%s: [%s]: %s", e.File, e.Section, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// Default returns the configuration used for every key the file leaves out.
func Default() Config {
	return Config{
		Agent: Agent{
			HostFrom:         HostFromName,
			DataDir:          "/var/lib/logagent",
			HTTPAddr:         "127.0.0.1:9302",
			LogLevel:         "info",
			LogFormat:        "text",
			MaxLineBytes:     512 << 10,
			BufferBytes:      8 << 20,
			ShutdownTimeout:  10 * time.Second,
			RotateWait:       5 * time.Second,
			PollInterval:     time.Second,
			MaxReadDelay:     time.Second,
			AllowPaths:       DefaultAllowPaths,
			MaxFilesPerEntry: 10000,
		},
		Kafka: Kafka{
			Client:          ClientFranzGo,
			Version:         "2.8.0",
			Compression:     "lz4",
			RequiredAcks:    "all",
			Idempotent:      true,
			MaxMessageBytes: 1000000,
			Linger:          5 * time.Millisecond,
			RetryBackoff:    250 * time.Millisecond,
			Key:             KeyID,
			LargestRecord:   512<<10 + RecordOverhead,
		},
		Etcd: Etcd{DialTimeout: 5 * time.Second},
	}
}

// Load reads and validates the ini file at path.
func Load(path string) (*Config, error) {
	return load(path, path)
}

// Parse validates ini text; name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	return load(name, data)
}

func load(name string, source any) (*Config, error) {
	f, err := loadINI(name, source)
	if err != nil {
		return nil, err
	}
	return parse(name, f)
}

// loadINI reads ini text (a path or bytes) the way every logagent config is read.
func loadINI(name string, source any) (*ini.File, error) {
	f, err := ini.LoadSources(ini.LoadOptions{
		// A value such as a password may contain ';' or '#': comments are
		// only recognised after whitespace.
		SpaceBeforeInlineComment: true,
		// A key given twice keeps both values, so that parse can refuse
		// it: which one was meant is not known.
		AllowShadows: true,
	}, source)
	if err != nil {
		return nil, &Error{File: name, Msg: err.Error()}
	}
	return f, nil
}

// reader turns ini keys into typed fields, remembering the first error.
type reader struct {
	file string
	sec  *ini.Section
	err  error
}

func (r *reader) fail(key, format string, args ...any) {
	if r.err == nil {
		r.err = &Error{File: r.file, Section: r.sec.Name(), Key: key, Msg: fmt.Sprintf(format, args...)}
	}
}

func (r *reader) value(key string) (string, bool) {
	if !r.sec.HasKey(key) {
		return "", false
	}
	return strings.TrimSpace(r.sec.Key(key).String()), true
}

func (r *reader) str(key string, dst *string) {
	if v, ok := r.value(key); ok {
		*dst = v
	}
}

func (r *reader) required(key string, dst *[]string) {
	v, _ := r.value(key)
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*dst = append(*dst, p)
		}
	}
	if len(*dst) == 0 {
		r.fail(key, "required, e.g. %s = 127.0.0.1:%s", key, map[string]string{"brokers": "9092", "endpoints": "2379"}[key])
	}
}

// addresses checks each of addrs is host:port; with schemes, an
// http:// or https:// prefix is allowed too (etcd endpoints). A broker
// without a port would be retried forever at run time.
func (r *reader) addresses(key string, addrs []string, schemes bool) {
	for _, a := range addrs {
		hp := a
		if schemes {
			hp = strings.TrimPrefix(strings.TrimPrefix(hp, "http://"), "https://")
		}
		if err := checkHostPort(hp, false); err != nil {
			r.fail(key, "%q: %v (want host:port, e.g. 127.0.0.1:%s)", a, err, map[string]string{"brokers": "9092", "endpoints": "2379"}[key])
			return
		}
	}
}

// checkHostPort checks addr is host:port with a port number; emptyHost
// allows ":port" (every address, for a listener).
func checkHostPort(addr string, emptyHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if ae, ok := err.(*net.AddrError); ok {
			return errors.New(ae.Err)
		}
		return err
	}
	if host == "" && !emptyHost {
		return errors.New("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// hostRE is what [agent] host may be: it is a path segment of the etcd keys
// (/logagent/<host>/...). Names starting with '_' are the console's
// (/logagent/_audit/...).
var hostRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$`)

// CheckHost says whether h can be a host's identity in the etcd keys.
func CheckHost(h string) error {
	if !hostRE.MatchString(h) {
		return fmt.Errorf("invalid host %q: it is part of the etcd keys (/logagent/<host>/...); use letters, digits, '.', '_', '-' and ':', starting with a letter or digit", h)
	}
	return nil
}

func (r *reader) oneOf(key string, dst *string, allowed ...string) {
	v, ok := r.value(key)
	if !ok {
		return
	}
	for _, a := range allowed {
		if v == a {
			*dst = v
			return
		}
	}
	r.fail(key, "invalid value %q (want one of %s)", v, strings.Join(allowed, ", "))
}

func (r *reader) boolean(key string, dst *bool) {
	v, ok := r.value(key)
	if !ok {
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(key, "invalid value %q (want true or false)", v)
		return
	}
	*dst = b
}

func (r *reader) duration(key string, dst *time.Duration, min time.Duration) {
	v, ok := r.value(key)
	if !ok {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(key, "invalid duration %q (e.g. 5s, 250ms)", v)
		return
	}
	if d < min {
		r.fail(key, "%s is below the minimum %s", d, min)
		return
	}
	*dst = d
}

var (
	labelKeyRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	labelValueRE = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{0,63}$`)
)

// labels reads "k=v, k2=v2": lower-case keys, plain values, at most 32.
func (r *reader) labels(key string, dst *map[string]string) {
	v, ok := r.value(key)
	if !ok || v == "" {
		return
	}
	m := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		k, val, found := strings.Cut(strings.TrimSpace(kv), "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		switch {
		case !found || !labelKeyRE.MatchString(k):
			r.fail(key, "%q is not name=value with a lower-case name of letters, digits, '_', '.', '-' (e.g. labels = role=web, dc=sh)", strings.TrimSpace(kv))
			return
		case !labelValueRE.MatchString(val):
			r.fail(key, "value of %s: %q may hold letters, digits, '_', '.', ':', '/', '-' (at most 63)", k, val)
			return
		case m[k] != "":
			r.fail(key, "%s given twice", k)
			return
		}
		m[k] = val
	}
	if len(m) > 32 {
		r.fail(key, "%d labels; at most 32", len(m))
		return
	}
	*dst = m
}

// kafkaVersionRE is the form sarama parses: 0.x.y.z or x.y.z.
var kafkaVersionRE = regexp.MustCompile(`^(0\.\d+\.\d+\.\d+|[1-9]\d*\.\d+\.\d+)$`)

var sizeRE = regexp.MustCompile(`^(\d+)\s*(|kib|mib|gib)$`)

// decimalRE is a size in units that may mean 1000 or 1024: refused, not
// guessed.
var decimalRE = regexp.MustCompile(`^(\d+)\s*(k|kb|m|mb|g|gb)$`)

// size accepts a byte count with an optional binary unit: 512KiB, 16MiB,
// 1000000 (the unit in any case).
func (r *reader) size(key string, dst *int64, min, max int64) {
	v, ok := r.value(key)
	if !ok {
		return
	}
	m := sizeRE.FindStringSubmatch(strings.ToLower(v))
	if m == nil {
		if d := decimalRE.FindStringSubmatch(strings.ToLower(v)); d != nil {
			r.fail(key, "invalid size %q: write %sKiB/MiB/GiB (1024-based) or the number of bytes", v, d[1])
			return
		}
		r.fail(key, "invalid size %q (e.g. 1000000, 512KiB, 16MiB)", v)
		return
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		r.fail(key, "invalid size %q", v)
		return
	}
	shift := map[string]uint{"kib": 10, "mib": 20, "gib": 30}[m[2]]
	if n > max>>shift { // before shifting: a huge value must not wrap into range
		r.fail(key, "%s is outside %d..%d bytes", v, min, max)
		return
	}
	n <<= shift
	if n < min || n > max {
		r.fail(key, "%d bytes is outside %d..%d", n, min, max)
		return
	}
	*dst = n
}

// count accepts a whole number within min..max.
func (r *reader) count(key string, dst *int, min, max int) {
	v, ok := r.value(key)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.fail(key, "invalid number %q (a whole number from %d to %d)", v, min, max)
		return
	}
	*dst = n
}

func (r *reader) intSize(key string, dst *int, min, max int64) {
	n := int64(*dst)
	r.size(key, &n, min, max)
	*dst = int(n)
}

// kafkaSecurityKeys are [kafka]'s TLS and SASL keys (reader.tls, reader.sasl),
// taken by the agent and the console alike.
var kafkaSecurityKeys = []string{"tls", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name",
	"tls_insecure_skip_verify", "sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file"}

var known = map[string][]string{
	"agent": {"host", "host_from", "labels", "data_dir", "http_addr", "log_level", "log_format", "max_line_bytes",
		"buffer_bytes", "shutdown_timeout", "rotate_wait", "poll_interval", "max_read_delay", "allow_paths",
		"max_files_per_entry"},
	"kafka": append([]string{"brokers", "client", "version", "compression", "required_acks", "idempotent",
		"max_message_bytes", "linger", "retry_backoff", "key"}, kafkaSecurityKeys...),
	"etcd": {"endpoints", "dial_timeout", "username", "password", "password_file",
		"tls_ca_file", "tls_cert_file", "tls_key_file"},
}

func parse(name string, f *ini.File) (*Config, error) {
	if err := checkSections(name, f, known, []string{"agent", "kafka", "etcd"}, "kafka", "etcd"); err != nil {
		return nil, err
	}

	c := Default()
	// One reader walks the sections, so the first error is the one reported.
	r := &reader{file: name}
	section := func(s string) *reader { r.sec = f.Section(s); return r }

	a := section("agent")
	a.str("host", &c.Agent.Host)
	a.oneOf("host_from", &c.Agent.HostFrom, HostFromName, HostFromIP)
	a.labels("labels", &c.Agent.Labels)
	if h := c.Agent.Host; h != "" {
		if err := CheckHost(h); err != nil {
			a.fail("host", "%v", err)
		}
	}
	a.daemon(&c.Agent.DataDir, &c.Agent.HTTPAddr, &c.Agent.LogLevel, &c.Agent.LogFormat, "127.0.0.1:9302")
	a.intSize("max_line_bytes", &c.Agent.MaxLineBytes, 1<<10, 64<<20)
	a.size("buffer_bytes", &c.Agent.BufferBytes, 64<<10, 4<<30)
	a.duration("shutdown_timeout", &c.Agent.ShutdownTimeout, 0)
	a.duration("rotate_wait", &c.Agent.RotateWait, 0)
	a.duration("poll_interval", &c.Agent.PollInterval, 10*time.Millisecond)
	a.duration("max_read_delay", &c.Agent.MaxReadDelay, 0)
	if c.Agent.MaxReadDelay > time.Minute {
		a.fail("max_read_delay", "%s is above the maximum 1m", c.Agent.MaxReadDelay)
	}
	a.allowPaths(&c.Agent.AllowPaths)
	a.count("max_files_per_entry", &c.Agent.MaxFilesPerEntry, 1, 1000000)

	k := section("kafka")
	k.required("brokers", &c.Kafka.Brokers)
	k.addresses("brokers", c.Kafka.Brokers, false)
	k.oneOf("client", &c.Kafka.Client, ClientSarama, ClientFranzGo)
	k.str("version", &c.Kafka.Version)
	if !kafkaVersionRE.MatchString(c.Kafka.Version) {
		k.fail("version", "invalid Kafka protocol version %q (e.g. 2.8.0)", c.Kafka.Version)
	}
	k.oneOf("compression", &c.Kafka.Compression, "none", "gzip", "snappy", "lz4", "zstd")
	k.oneOf("required_acks", &c.Kafka.RequiredAcks, "all", "leader", "none")
	k.boolean("idempotent", &c.Kafka.Idempotent)
	k.intSize("max_message_bytes", &c.Kafka.MaxMessageBytes, 1<<10, 1<<30)
	k.duration("linger", &c.Kafka.Linger, 0)
	k.duration("retry_backoff", &c.Kafka.RetryBackoff, time.Millisecond)
	k.oneOf("key", &c.Kafka.Key, KeyID, KeyPath)
	if c.Kafka.Idempotent && c.Kafka.RequiredAcks != "all" {
		k.fail("idempotent", "true needs required_acks = all (got %s)", c.Kafka.RequiredAcks)
	}
	k.tls(&c.Kafka.TLS, true, &c.Warnings)
	k.sasl(&c.Kafka, &c.Warnings)

	section("etcd").etcd(&c.Etcd, &c.Warnings)
	if r.err != nil {
		return nil, r.err
	}

	// A line piece must fit in one Kafka message with its headers.
	if c.Agent.MaxLineBytes > c.Kafka.MaxMessageBytes-RecordOverhead {
		return nil, &Error{File: name, Section: "agent", Key: "max_line_bytes",
			Msg: fmt.Sprintf("%d does not fit in [kafka] max_message_bytes %d less %d bytes of record overhead",
				c.Agent.MaxLineBytes, c.Kafka.MaxMessageBytes, RecordOverhead)}
	}
	if c.Agent.BufferBytes < int64(c.Agent.MaxLineBytes)*2 {
		return nil, &Error{File: name, Section: "agent", Key: "buffer_bytes",
			Msg: fmt.Sprintf("%d must be at least twice max_line_bytes (%d)", c.Agent.BufferBytes, c.Agent.MaxLineBytes)}
	}
	c.Kafka.LargestRecord = c.Agent.MaxLineBytes + RecordOverhead
	return &c, nil
}

// checkSections refuses an unknown section or key, a key given twice and
// a missing required section: a misspelt key would otherwise leave its
// default in force without a word. order lists the known sections as the
// error names them.
func checkSections(name string, f *ini.File, known map[string][]string, order []string, required ...string) error {
	for _, sec := range f.Sections() {
		if sec.Name() == ini.DefaultSection {
			if len(sec.Keys()) > 0 {
				return &Error{File: name, Key: sec.Keys()[0].Name(), Section: "(top)",
					Msg: "key outside any section; put it under [" + strings.Join(order[:len(order)-1], "], [") + "] or [" + order[len(order)-1] + "]"}
			}
			continue
		}
		keys, ok := known[sec.Name()]
		if !ok {
			return &Error{File: name, Section: sec.Name(), Msg: "unknown section (want " + strings.Join(order, ", ") + ")"}
		}
		for _, k := range sec.Keys() {
			if !slices.Contains(keys, k.Name()) {
				return &Error{File: name, Section: sec.Name(), Key: k.Name(),
					Msg: "unknown key (known: " + strings.Join(keys, ", ") + ")"}
			}
			if v := k.ValueWithShadows(); len(v) > 1 {
				return &Error{File: name, Section: sec.Name(), Key: k.Name(),
					Msg: fmt.Sprintf("given %d times with different values; keep one", len(v))}
			}
		}
	}
	for _, s := range required {
		if !f.HasSection(s) {
			return &Error{File: name, Section: s, Msg: "missing section"}
		}
	}
	return nil
}

// daemon reads the keys every logagent daemon's own section has:
// data_dir, http_addr (example: its default), log_level, log_format.
func (r *reader) daemon(dataDir, httpAddr, logLevel, logFormat *string, example string) {
	r.str("data_dir", dataDir)
	if *dataDir == "" {
		r.fail("data_dir", "must not be empty")
	}
	r.str("http_addr", httpAddr)
	if v := *httpAddr; v != "" {
		if err := checkHostPort(v, true); err != nil {
			r.fail("http_addr", "%q: %v (want host:port, e.g. %s, or empty for none)", v, err, example)
		}
	}
	r.oneOf("log_level", logLevel, "debug", "info", "warn", "error")
	r.oneOf("log_format", logFormat, "text", "json")
}

// etcd reads an [etcd] section (the agent's and the transfer's), with its
// TLS and secrets; what does not stop the program goes to warnings.
func (r *reader) etcd(c *Etcd, warnings *[]string) {
	r.required("endpoints", &c.Endpoints)
	r.addresses("endpoints", c.Endpoints, true)
	r.duration("dial_timeout", &c.DialTimeout, 100*time.Millisecond)
	r.str("username", &c.Username)
	r.secret("password", &c.Password, warnings)
	if c.Password != "" && c.Username == "" {
		r.fail("username", "required with a password")
	}
	r.tls(&c.TLS, false, warnings)
	tlsFiles := c.TLS.Enabled
	for _, ep := range c.Endpoints {
		switch {
		case strings.HasPrefix(ep, "https://"):
			c.TLS.Enabled = true
		case tlsFiles && strings.HasPrefix(ep, "http://"):
			r.fail("endpoints", "%q is http:// but tls_* files are set; write https://", ep)
		}
	}
}

// RecordOverhead is room kept in a Kafka message for the record framing,
// the host, path, offset and file headers and the key (a path is at most
// 4096 bytes on Linux, and with key = path it is there twice).
const RecordOverhead = 12 << 10
