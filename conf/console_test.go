package conf

import (
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
