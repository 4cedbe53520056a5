package conf

import (
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
		{base + "[agent]\n", "[agent]: unknown section (want console, etcd, kafka)"},
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
