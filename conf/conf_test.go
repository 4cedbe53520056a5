package conf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The shipped example must always load and equal the defaults it documents.
func TestExampleConfigParses(t *testing.T) {
	c, err := Load("config.ini")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Kafka.Brokers = []string{"127.0.0.1:9092"}
	want.Etcd.Endpoints = []string{"127.0.0.1:2379"}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("example config differs from the defaults it documents:\n got %+v\nwant %+v", *c, want)
	}
}

const minimal = "[kafka]\nbrokers = b1:9092, b2:9092\n[etcd]\nendpoints = e1:2379\n"

func TestParseValues(t *testing.T) {
	c, err := Parse("x.ini", []byte(minimal+`
[agent]
host = web-1
max_line_bytes = 64KiB
buffer_bytes = 1MiB
shutdown_timeout = 3s
[kafka]
client = franz-go
compression = zstd
linger = 0s
key = path
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Kafka.Brokers; !reflect.DeepEqual(got, []string{"b1:9092", "b2:9092"}) {
		t.Errorf("brokers = %q", got)
	}
	if c.Agent.Host != "web-1" || c.Agent.MaxLineBytes != 64<<10 || c.Agent.BufferBytes != 1<<20 ||
		c.Agent.ShutdownTimeout != 3*time.Second || c.Kafka.Client != ClientFranzGo ||
		c.Kafka.Compression != "zstd" || c.Kafka.Linger != 0 || c.Kafka.Key != KeyPath || c.Kafka.LargestRecord != 64<<10+RecordOverhead {
		t.Errorf("unexpected config %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, ini string
		want      string // the whole error text
	}{
		{"missing brokers", "[kafka]\n[etcd]\nendpoints = e:1\n", "x.ini: [kafka] brokers: required, e.g. brokers = 127.0.0.1:9092"},
		{"empty brokers", "[kafka]\nbrokers = , \n[etcd]\nendpoints = e:1\n", "x.ini: [kafka] brokers: required, e.g. brokers = 127.0.0.1:9092"},
		{"missing etcd section", "[kafka]\nbrokers = b:1\n", "x.ini: [etcd]: missing section"},
		{"missing endpoints", "[kafka]\nbrokers = b:1\n[etcd]\n", "x.ini: [etcd] endpoints: required, e.g. endpoints = 127.0.0.1:2379"},
		{"unknown section", minimal + "[kafak]\n", "x.ini: [kafak]: unknown section (want agent, kafka, etcd)"},
		{"unknown key", minimal + "[agent]\nhots = a\n", "x.ini: [agent] hots: unknown key (known: host, host_from, labels, data_dir, http_addr, log_level, log_format, max_line_bytes, buffer_bytes, shutdown_timeout, rotate_wait, poll_interval, max_read_delay, allow_paths, max_files_per_entry)"},
		{"top-level key", "x = 1\n" + minimal, "x.ini: [(top)] x: key outside any section; put it under [agent], [kafka] or [etcd]"},
		{"bad client", minimal + "[kafka]\nclient = kafka-go\n", `x.ini: [kafka] client: invalid value "kafka-go" (want one of sarama, franz-go)`},
		{"bad key", minimal + "[kafka]\nkey = offset\n", `x.ini: [kafka] key: invalid value "offset" (want one of id, path)`},
		{"bad acks", minimal + "[kafka]\nrequired_acks = 2\n", `x.ini: [kafka] required_acks: invalid value "2" (want one of all, leader, none)`},
		{"bad version", minimal + "[kafka]\nversion = banana\n", `x.ini: [kafka] version: invalid Kafka protocol version "banana" (e.g. 2.8.0)`},
		{"idempotent needs all", minimal + "[kafka]\nrequired_acks = leader\n", "x.ini: [kafka] idempotent: true needs required_acks = all (got leader)"},
		{"bad bool", minimal + "[kafka]\nidempotent = yes please\n", `x.ini: [kafka] idempotent: invalid value "yes please" (want true or false)`},
		{"bad duration", minimal + "[etcd]\ndial_timeout = 5\n", `x.ini: [etcd] dial_timeout: invalid duration "5" (e.g. 5s, 250ms)`},
		{"duration too small", minimal + "[agent]\npoll_interval = 1ms\n", "x.ini: [agent] poll_interval: 1ms is below the minimum 10ms"},
		{"read delay too long", minimal + "[agent]\nmax_read_delay = 2h\n", "x.ini: [agent] max_read_delay: 2h0m0s is above the maximum 1m"},
		{"max files not a number", minimal + "[agent]\nmax_files_per_entry = many\n", "x.ini: [agent] max_files_per_entry: invalid number \"many\" (a whole number from 1 to 1000000)"},
		{"bad size", minimal + "[agent]\nbuffer_bytes = lots\n", `x.ini: [agent] buffer_bytes: invalid size "lots" (e.g. 1000000, 512KiB, 16MiB)`},
		{"size out of range", minimal + "[agent]\nmax_line_bytes = 12\n", "x.ini: [agent] max_line_bytes: 12 bytes is outside 1024..67108864"},
		{"line bigger than message", minimal + "[agent]\nmax_line_bytes = 2MiB\nbuffer_bytes=64MiB\n", "x.ini: [agent] max_line_bytes: 2097152 does not fit in [kafka] max_message_bytes 1000000 less 12288 bytes of record overhead"},
		{"size that would overflow", minimal + "[agent]\nbuffer_bytes = 17179869185GiB\n", "x.ini: [agent] buffer_bytes: 17179869185GiB is outside 65536..4294967296 bytes"},
		{"empty data_dir", minimal + "[agent]\ndata_dir =\n", "x.ini: [agent] data_dir: must not be empty"},
		{"http_addr without host part", minimal + "[agent]\nhttp_addr = 9302\n", `x.ini: [agent] http_addr: "9302": missing port in address (want host:port, e.g. 127.0.0.1:9302, or empty for none)`},
		{"http_addr bad port", minimal + "[agent]\nhttp_addr = 127.0.0.1:http\n", `x.ini: [agent] http_addr: "127.0.0.1:http": port "http" is not a number from 0 to 65535 (want host:port, e.g. 127.0.0.1:9302, or empty for none)`},
		{"broker without port", "[kafka]\nbrokers = b1:9092, kafka-1\n[etcd]\nendpoints = e:1\n", `x.ini: [kafka] brokers: "kafka-1": missing port in address (want host:port, e.g. 127.0.0.1:9092)`},
		{"broker without host", "[kafka]\nbrokers = :9092\n[etcd]\nendpoints = e:1\n", `x.ini: [kafka] brokers: ":9092": no host (want host:port, e.g. 127.0.0.1:9092)`},
		{"endpoint without port", "[kafka]\nbrokers = b:1\n[etcd]\nendpoints = https://etcd-1\n", `x.ini: [etcd] endpoints: "https://etcd-1": missing port in address (want host:port, e.g. 127.0.0.1:2379)`},
		{"size in MB", minimal + "[agent]\nbuffer_bytes = 8MB\n", `x.ini: [agent] buffer_bytes: invalid size "8MB": write 8KiB/MiB/GiB (1024-based) or the number of bytes`},
		{"size in M", minimal + "[agent]\nbuffer_bytes = 8M\n", `x.ini: [agent] buffer_bytes: invalid size "8M": write 8KiB/MiB/GiB (1024-based) or the number of bytes`},
		{"size in mb", minimal + "[agent]\nbuffer_bytes = 8mb\n", `x.ini: [agent] buffer_bytes: invalid size "8mb": write 8KiB/MiB/GiB (1024-based) or the number of bytes`},
		{"host with slash", minimal + "[agent]\nhost = web/1\n", `x.ini: [agent] host: invalid host "web/1": it is part of the etcd keys (/logagent/<host>/...); use letters, digits, '.', '_', '-' and ':', starting with a letter or digit`},
		{"host with space", minimal + "[agent]\nhost = web 1\n", `x.ini: [agent] host: invalid host "web 1": it is part of the etcd keys (/logagent/<host>/...); use letters, digits, '.', '_', '-' and ':', starting with a letter or digit`},
		{"host like the audit trail", minimal + "[agent]\nhost = _audit\n", `x.ini: [agent] host: invalid host "_audit": it is part of the etcd keys (/logagent/<host>/...); use letters, digits, '.', '_', '-' and ':', starting with a letter or digit`},
		{"label without value", minimal + "[agent]\nlabels = role=web, dc\n", `x.ini: [agent] labels: "dc" is not name=value with a lower-case name of letters, digits, '_', '.', '-' (e.g. labels = role=web, dc=sh)`},
		{"label value with a space", minimal + "[agent]\nlabels = role=web server\n", `x.ini: [agent] labels: value of role: "web server" may hold letters, digits, '_', '.', ':', '/', '-' (at most 63)`},
		{"label twice", minimal + "[agent]\nlabels = role=web, role=db\n", `x.ini: [agent] labels: role given twice`},
		{"first error wins", "[kafka]\nclient = x\n[etcd]\n", `x.ini: [kafka] brokers: required, e.g. brokers = 127.0.0.1:9092`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.ini", []byte(tc.ini))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *conf.Error", err)
			}
			if err.Error() != tc.want {
				t.Fatalf("error\n got %q\nwant %q", err, tc.want)
			}
		})
	}
}

// The forms every address and size key takes.
func TestParseAcceptedForms(t *testing.T) {
	c, err := Parse("x.ini", []byte(`[agent]
host = web-1.dc_2:a
labels = role=web, dc=sh-1, rack=a/3
http_addr = :9302
buffer_bytes = 8mib
max_line_bytes = 64kib
[kafka]
brokers = kafka-1:9092, [::1]:9092
[etcd]
endpoints = https://etcd-1:2379, http://127.0.0.1:2379, etcd-3:2379
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent.BufferBytes != 8<<20 || c.Agent.MaxLineBytes != 64<<10 || c.Agent.HTTPAddr != ":9302" || len(c.Etcd.Endpoints) != 3 ||
		!reflect.DeepEqual(c.Agent.Labels, map[string]string{"role": "web", "dc": "sh-1", "rack": "a/3"}) {
		t.Fatalf("unexpected config %+v", c)
	}
}

func TestLoadMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.ini")
	_, err := Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+": ") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadMalformedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.ini")
	if err := os.WriteFile(p, []byte("[kafka\nbrokers = x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.HasPrefix(err.Error(), p+": ") {
		t.Fatalf("err = %v", err)
	}
}

// A key given twice with different values is refused: which one was meant
// is not known. The same value twice is harmless.
func TestDuplicateKey(t *testing.T) {
	const base = "[kafka]\nbrokers = 127.0.0.1:9092\n[etcd]\nendpoints = 127.0.0.1:2379\n"
	_, err := Parse("dup.ini", []byte(base+"[kafka]\nlinger = 5ms\nlinger = 50ms\n"))
	var e *Error
	if !errors.As(err, &e) || e.Section != "kafka" || e.Key != "linger" || !strings.Contains(e.Msg, "given 2 times") {
		t.Fatalf("err = %v, want kafka.linger given twice", err)
	}
	if strings.Contains(err.Error(), "50ms") {
		t.Fatalf("the error shows the values (one may be a password): %v", err)
	}
	c, err := Parse("same.ini", []byte(base+"[agent]\nmax_read_delay = 2s\nmax_read_delay = 2s\n"))
	if err != nil || c.Agent.MaxReadDelay != 2*time.Second {
		t.Fatalf("the same value twice: %v, %+v", err, c)
	}
}
