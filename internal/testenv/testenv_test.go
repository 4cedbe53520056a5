package testenv

import (
	"testing"
	"time"

	"github.com/logagent/logagent/conf"
)

// The extra keys of a test replace the base's: the agent refuses a key
// given twice with different values.
func TestOverlay(t *testing.T) {
	base := "[agent]\nhttp_addr =\n[kafka]\nbrokers = 127.0.0.1:9092\nlinger = 1ms\n[etcd]\nendpoints = 127.0.0.1:2379\n"
	out, err := Overlay(base, "[kafka]\nlinger = 5ms\n[agent]\nhttp_addr = 127.0.0.1:8080\nlog_level = warn\n")
	if err != nil {
		t.Fatal(err)
	}
	c, err := conf.Parse("overlay.ini", []byte(out))
	if err != nil {
		t.Fatalf("%v in:\n%s", err, out)
	}
	if c.Kafka.Linger != 5*time.Millisecond || c.Agent.HTTPAddr != "127.0.0.1:8080" || c.Agent.LogLevel != "warn" {
		t.Fatalf("overlaid config %+v from:\n%s", c, out)
	}
}
