package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSysAgentRecords: an operator switches the Sys Agent on with
// `etcdctl put /logagent/<host>/sys_config`, and reads host metrics with
// kafka-console-consumer from the real broker: one JSON record per
// sample, keyed by the host, the first without rates and the next with
// them; the status key shows the latest headline; deleting the key stops
// the records.
func TestSysAgentRecords(t *testing.T) {
	needE2E(t)
	start := time.Now()
	dir := t.TempDir()
	k := startKafka(t, 1)
	e := startEtcd(t)
	a := startAgent(t, dir, "franz-go", k.brokers(), e.endpoint)
	const sysKey, topic = "/logagent/" + host + "/sys_config", "sys_metrics"

	rev := e.put(sysKey, `{"topic": "`+topic+`", "interval": "1s"}`)
	a.waitLog(10*time.Second, `msg="sys config applied"`, logAttr("revision", strconv.FormatInt(rev, 10)))
	recs := k.consume(topic, 2, 30*time.Second)
	if len(recs) != 2 {
		t.Fatalf("console consumer printed %d sys records, want 2", len(recs))
	}
	type sample struct {
		Schema int    `json:"schema"`
		Host   string `json:"host"`
		Time   string `json:"time"`
		Seq    int    `json:"seq"`
		Rates  bool   `json:"rates"`
		CPU    *struct {
			CPUs int      `json:"cpus"`
			Used *float64 `json:"used_percent"`
		} `json:"cpu"`
		Load    *struct{ Load1 float64 } `json:"load"`
		Memory  *struct{ Total uint64 }  `json:"memory"`
		Network []struct {
			Interface string   `json:"interface"`
			RxBytes   *float64 `json:"rx_bytes_per_s"`
		} `json:"network"`
	}
	var got [2]sample
	for i, r := range recs {
		t.Logf("record %d: key %s, headers %v, value %s", i, r.key, r.headers, r.value)
		if r.key != host || r.headers["host"] != host {
			t.Fatalf("record %d: key %q, host header %q; want %q", i, r.key, r.headers["host"], host)
		}
		if err := json.Unmarshal([]byte(r.value), &got[i]); err != nil {
			t.Fatalf("record %d is not JSON: %v", i, err)
		}
		s := got[i]
		if s.Schema != 1 || s.Host != host || s.Seq != i+1 || s.CPU == nil || s.CPU.CPUs == 0 || s.Load == nil || s.Memory == nil || len(s.Network) == 0 {
			t.Fatalf("record %d lacks fields: %s", i, r.value)
		}
		if _, err := time.Parse(time.RFC3339, s.Time); err != nil {
			t.Fatalf("record %d: time %q: %v", i, s.Time, err)
		}
	}
	if got[0].Rates || got[0].CPU.Used != nil || strings.Contains(recs[0].value, "_per_s") {
		t.Fatalf("the first sample carries rates: %s", recs[0].value)
	}
	if !got[1].Rates || got[1].CPU.Used == nil || !strings.Contains(recs[1].value, `"rx_bytes_per_s"`) {
		t.Fatalf("the second sample has no rates: %s", recs[1].value)
	}

	deadline := time.Now().Add(40 * time.Second)
	for !strings.Contains(e.get(statusKey), `"cpu_percent"`) {
		if time.Now().After(deadline) {
			t.Fatalf("status key never showed the Sys Agent's headline: %s", e.get(statusKey))
		}
		time.Sleep(200 * time.Millisecond)
	}

	e.ctl("del", sysKey)
	a.waitLog(10*time.Second, `msg="sys agent off"`)
	a.stop()
	t.Logf("%s: %s", t.Name(), since(start))
}
