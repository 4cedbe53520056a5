package conf

import (
	"reflect"
	"testing"
	"time"
)

// The shipped transfer example must load and equal the defaults it documents.
func TestTransferExampleParses(t *testing.T) {
	c, err := LoadTransfer("transfer.ini")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultTransfer()
	want.Kafka.Brokers = []string{"127.0.0.1:9092"}
	want.OpenSearch.URLs = []string{"http://127.0.0.1:9200"}
	want.Etcd.Endpoints = []string{"127.0.0.1:2379"}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("example differs from the defaults it documents:\n got %+v\nwant %+v", *c, want)
	}
}

const minimalTransfer = "[kafka]\nbrokers = b1:9092\n[opensearch]\nurls = http://o1:9200, https://o2:9200/\n[etcd]\nendpoints = e1:2379\n"

func TestParseTransferValues(t *testing.T) {
	c, err := ParseTransfer("t.ini", []byte(minimalTransfer+`
[transfer]
instance = transfer-1
buffer_bytes = 8MiB
bulk_bytes = 1MiB
retention_days = 7
dead_letter_suffix = -dead
[kafka]
group = idx
[opensearch]
replicas = 1
shards = 3
timeout = 5s
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Transfer.Instance != "transfer-1" || c.Transfer.BufferBytes != 8<<20 || c.Transfer.BulkBytes != 1<<20 ||
		c.Transfer.RetentionDays != 7 || c.Transfer.DeadLetter != "-dead" || c.Kafka.Group != "idx" ||
		c.OpenSearch.Replicas != 1 || c.OpenSearch.Shards != 3 || c.OpenSearch.Timeout != 5*time.Second ||
		!reflect.DeepEqual(c.OpenSearch.URLs, []string{"http://o1:9200", "https://o2:9200/"}) {
		t.Errorf("unexpected config %+v", c)
	}
}

func TestParseTransferErrors(t *testing.T) {
	for _, tc := range []struct {
		name, ini string
		want      string
	}{
		{"unknown key", minimalTransfer + "[transfer]\nbufer_bytes = 1MiB\n",
			"t.ini: [transfer] bufer_bytes: unknown key (known: instance, data_dir, http_addr, log_level, log_format, buffer_bytes, bulk_bytes, retry_backoff, retry_max, dead_letter_suffix, retention_days)"},
		{"agent section", minimalTransfer + "[agent]\nhost = x\n", "t.ini: [agent]: unknown section (want transfer, kafka, opensearch, etcd)"},
		{"agent key in kafka", minimalTransfer + "[kafka]\nclient = sarama\n", "t.ini: [kafka] client: unknown key (known: brokers, group, session_timeout)"},
		{"missing opensearch", "[kafka]\nbrokers = b:1\n[etcd]\nendpoints = e:1\n", "t.ini: [opensearch]: missing section"},
		{"missing urls", "[kafka]\nbrokers = b:1\n[opensearch]\n[etcd]\nendpoints = e:1\n", "t.ini: [opensearch] urls: required, e.g. urls = http://127.0.0.1:9200"},
		{"url without scheme", "[kafka]\nbrokers = b:1\n[opensearch]\nurls = o1:9200\n[etcd]\nendpoints = e:1\n",
			`t.ini: [opensearch] urls: "o1:9200": want http://host:port or https://host:port`},
		{"url without port", "[kafka]\nbrokers = b:1\n[opensearch]\nurls = http://o1\n[etcd]\nendpoints = e:1\n",
			`t.ini: [opensearch] urls: "http://o1": want http://host:port or https://host:port`},
		{"replicas", minimalTransfer + "[opensearch]\nreplicas = -1\n", `t.ini: [opensearch] replicas: invalid value "-1" (want a whole number from 0 to 16)`},
		{"retention", minimalTransfer + "[transfer]\nretention_days = 1w\n", `t.ini: [transfer] retention_days: invalid value "1w" (want a whole number from 0 to 100000)`},
		{"bulk over half the buffer", minimalTransfer + "[transfer]\nbuffer_bytes = 4MiB\nbulk_bytes = 3MiB\n",
			"t.ini: [transfer] bulk_bytes: must be at most half of buffer_bytes (a bulk is built from records in the buffer)"},
		{"suffix", minimalTransfer + "[transfer]\ndead_letter_suffix = \n",
			`t.ini: [transfer] dead_letter_suffix: invalid suffix "": appended to a topic name, it must be 1 to 40 of letters, digits, '.', '_', '-'`},
		{"instance", minimalTransfer + "[transfer]\ninstance = a/b\n", `t.ini: [transfer] instance: invalid instance "a/b": it is part of the etcd key /logtransfer/<instance>/status; use letters, digits, '.', '_', '-' and ':', starting with a letter or digit`},
		{"etcd shared", "[kafka]\nbrokers = b:1\n[opensearch]\nurls = http://o:1\n[etcd]\nendpoints = e\n",
			`t.ini: [etcd] endpoints: "e": missing port in address (want host:port, e.g. 127.0.0.1:2379)`},
		{"http_addr", minimalTransfer + "[transfer]\nhttp_addr = 9303\n", `t.ini: [transfer] http_addr: "9303": missing port in address (want host:port, e.g. 127.0.0.1:9303, or empty for none)`},
		{"twice", minimalTransfer + "[kafka]\ngroup = a\ngroup = b\n", "t.ini: [kafka] group: given 2 times with different values; keep one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTransfer("t.ini", []byte(tc.ini))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}
