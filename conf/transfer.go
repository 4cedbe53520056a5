package conf

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// TransferConfig is the configuration of `logagent transfer`: Kafka →
// OpenSearch. It is read as strictly as the agent's (see Load).
type TransferConfig struct {
	Transfer   Transfer
	Kafka      TransferKafka
	OpenSearch OpenSearch
	Etcd       Etcd
	// Warnings are problems that do not stop the transfer (a password
	// file others can read).
	Warnings []string
}

// Transfer holds the [transfer] section.
type Transfer struct {
	Instance      string        // identity in /logtransfer/<instance>/status; empty = host name
	DataDir       string        // the cached /logtransfer/config
	HTTPAddr      string        // /metrics and /healthz; empty = off
	LogLevel      string        // debug, info, warn, error
	LogFormat     string        // text or json
	BufferBytes   int64         // records fetched from Kafka and not yet indexed
	BulkBytes     int64         // the largest bulk request body
	RetryBackoff  time.Duration // first wait before a failed bulk is sent again
	RetryMax      time.Duration // longest wait between attempts
	DeadLetter    string        // suffix of a topic's dead-letter topic
	RetentionDays int           // daily indices older than this are deleted; 0 = never
}

// TransferKafka holds the transfer's [kafka] section.
type TransferKafka struct {
	Brokers []string
	Group   string // consumer group shared by every transfer
	// SessionTimeout is how long the group waits for a member that stopped
	// heartbeating (killed) before its partitions go to the others.
	SessionTimeout time.Duration
}

// OpenSearch holds the [opensearch] section.
type OpenSearch struct {
	URLs     []string
	Username string
	Password Secret
	Timeout  time.Duration // one request
	Shards   int           // of each daily index (the installed template)
	Replicas int
}

// DefaultTransfer returns the transfer configuration used for every key the
// file leaves out.
func DefaultTransfer() TransferConfig {
	return TransferConfig{
		Transfer: Transfer{
			DataDir:      "/var/lib/logagent-transfer",
			HTTPAddr:     "127.0.0.1:9303",
			LogLevel:     "info",
			LogFormat:    "text",
			BufferBytes:  32 << 20,
			BulkBytes:    5 << 20,
			RetryBackoff: 250 * time.Millisecond,
			RetryMax:     30 * time.Second,
			DeadLetter:   ".dlq",
		},
		Kafka:      TransferKafka{Group: "logtransfer", SessionTimeout: 10 * time.Second},
		OpenSearch: OpenSearch{Timeout: 30 * time.Second, Shards: 1, Replicas: 0},
		Etcd:       Etcd{DialTimeout: 5 * time.Second},
	}
}

// LoadTransfer reads and validates the transfer's ini file at path.
func LoadTransfer(path string) (*TransferConfig, error) { return loadTransfer(path, path) }

// ParseTransfer validates the transfer's ini text; name is used in errors.
func ParseTransfer(name string, data []byte) (*TransferConfig, error) {
	return loadTransfer(name, data)
}

var knownTransfer = map[string][]string{
	"transfer": {"instance", "data_dir", "http_addr", "log_level", "log_format", "buffer_bytes",
		"bulk_bytes", "retry_backoff", "retry_max", "dead_letter_suffix", "retention_days"},
	"kafka":      {"brokers", "group", "session_timeout"},
	"opensearch": {"urls", "username", "password", "password_file", "timeout", "shards", "replicas"},
	"etcd":       known["etcd"],
}

func loadTransfer(name string, source any) (*TransferConfig, error) {
	f, err := loadINI(name, source)
	if err != nil {
		return nil, err
	}
	if err := checkSections(name, f, knownTransfer, []string{"transfer", "kafka", "opensearch", "etcd"},
		"kafka", "opensearch", "etcd"); err != nil {
		return nil, err
	}
	c := DefaultTransfer()
	r := &reader{file: name}
	section := func(s string) *reader { r.sec = f.Section(s); return r }

	t := section("transfer")
	t.str("instance", &c.Transfer.Instance)
	if h := c.Transfer.Instance; h != "" && !hostRE.MatchString(h) {
		t.fail("instance", "invalid instance %q: it is part of the etcd key /logtransfer/<instance>/status; use letters, digits, '.', '_', '-' and ':', starting with a letter or digit", h)
	}
	t.daemon(&c.Transfer.DataDir, &c.Transfer.HTTPAddr, &c.Transfer.LogLevel, &c.Transfer.LogFormat, "127.0.0.1:9303")
	t.size("buffer_bytes", &c.Transfer.BufferBytes, 1<<20, 4<<30)
	t.size("bulk_bytes", &c.Transfer.BulkBytes, 64<<10, 100<<20)
	t.duration("retry_backoff", &c.Transfer.RetryBackoff, time.Millisecond)
	t.duration("retry_max", &c.Transfer.RetryMax, time.Millisecond)
	t.str("dead_letter_suffix", &c.Transfer.DeadLetter)
	if v := c.Transfer.DeadLetter; !topicSuffixRE.MatchString(v) {
		t.fail("dead_letter_suffix", "invalid suffix %q: appended to a topic name, it must be 1 to 40 of letters, digits, '.', '_', '-'", v)
	}
	t.integer("retention_days", &c.Transfer.RetentionDays, 0, 100000)

	k := section("kafka")
	k.required("brokers", &c.Kafka.Brokers)
	k.addresses("brokers", c.Kafka.Brokers, false)
	k.str("group", &c.Kafka.Group)
	if !topicSuffixRE.MatchString(c.Kafka.Group) {
		k.fail("group", "invalid group %q: use letters, digits, '.', '_', '-'", c.Kafka.Group)
	}
	// Brokers refuse a session outside group.min/max.session.timeout.ms
	// (6s and 30m by default).
	k.duration("session_timeout", &c.Kafka.SessionTimeout, time.Second)

	o := section("opensearch")
	o.opensearch(&c.OpenSearch, &c.Warnings)
	o.integer("shards", &c.OpenSearch.Shards, 1, 1024)
	o.integer("replicas", &c.OpenSearch.Replicas, 0, 16)

	section("etcd").etcd(&c.Etcd, &c.Warnings)
	if r.err != nil {
		return nil, r.err
	}
	if c.Transfer.BulkBytes*2 > c.Transfer.BufferBytes {
		return nil, &Error{File: name, Section: "transfer", Key: "bulk_bytes",
			Msg: "must be at most half of buffer_bytes (a bulk is built from records in the buffer)"}
	}
	return &c, nil
}

// opensearch reads the connection keys of an [opensearch] section (the
// transfer's and the console's): urls, username, password or
// password_file, timeout.
func (r *reader) opensearch(c *OpenSearch, warnings *[]string) {
	r.list("urls", &c.URLs)
	if len(c.URLs) == 0 {
		r.fail("urls", "required, e.g. urls = http://127.0.0.1:9200")
	}
	for _, u := range c.URLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || checkHostPort(p.Host, false) != nil {
			r.fail("urls", "%q: want http://host:port or https://host:port", u)
			break
		}
	}
	r.str("username", &c.Username)
	r.secret("password", &c.Password, warnings)
	if c.Password != "" && c.Username == "" {
		r.fail("username", "required with a password")
	}
	r.duration("timeout", &c.Timeout, 100*time.Millisecond)
}

// topicSuffixRE is what a dead-letter suffix and a group name may be.
var topicSuffixRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,40}$`)

// list reads a comma-separated value.
func (r *reader) list(key string, dst *[]string) {
	v, ok := r.value(key)
	if !ok {
		return
	}
	*dst = nil
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*dst = append(*dst, p)
		}
	}
}

func (r *reader) integer(key string, dst *int, min, max int) {
	v, ok := r.value(key)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.fail(key, "invalid value %q (want a whole number from %d to %d)", v, min, max)
		return
	}
	*dst = n
}
