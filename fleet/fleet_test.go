package fleet_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/logagent/logagent/fleet"
)

// The documents' JSON is the contract: field names, order and omissions.
// These are the agent's documents as it wrote them before they moved here.
const (
	statusJSON   = `{"host":"web1","owner":{"instance":"i","machine":"m","pid":7,"start_time":"2026-12-06T01:02:03Z"},"version":"v1","labels":{"role":"web"},"start_time":"2026-12-06T01:02:03Z","updated":"2026-12-06T01:02:03Z","health":"ok","sys_config":{"config_revision":3},"sys":{"topic":"sys","interval":"10s","buffered_samples":1,"sent_samples":2,"dropped_samples":3,"last_seq":4,"latest":{"time":"t","rates":true,"cpu_percent":12.5,"load1":0.4,"memory_used_percent":63,"disk_busy_percent":7,"busiest_disk":"sda","network_rx_bytes_per_s":1024,"network_tx_bytes_per_s":2048}},"config":{"config_revision":42,"config_error":"bad","config_problems":["p"]},"files_total":1,"file_states":{"error":1},"lag_bytes":2,"files":[{"path":"/a","entry":"/*","topic":"t","state":"error","last_error":"denied","committed_offset":1,"size":3,"lag_bytes":2,"lines_read":4,"lines_acked":5,"bytes_read":6,"rotations":7,"truncations":8,"oversized_lines":9,"records_split":10,"lost_bytes":11}],"files_omitted":1,"refused_topics":[{"topic":"t","state":"refused","reason":"r","error":"e","refused_since":"2026-12-06T01:02:03Z","waiting_records":2,"buffered_bytes":9,"files_waiting":["/a"]}],"topic_limits":[{"topic":"t","max_message_bytes":100,"problem":"small"}]}`
	lastSeenJSON = `{"time":"2026-12-06T01:02:03Z","state":"stopped","version":"v1","owner":{"instance":"i","machine":"m","pid":7,"start_time":"2026-12-06T01:02:03Z"}}`
)

func TestStatusJSON(t *testing.T) {
	now := time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)
	owner := fleet.Owner{Instance: "i", Machine: "m", PID: 7, StartTime: now}
	st := &fleet.Status{Host: "web1", Owner: owner, Version: "v1", Labels: map[string]string{"role": "web"}, StartTime: now, Health: "ok",
		SysConfig:   fleet.ConfigState{Revision: 3},
		Config:      fleet.ConfigState{Revision: 42, LastError: "bad", Problems: []string{"p"}},
		Topics:      []fleet.TopicStatus{{Topic: "t", State: fleet.TopicRefused, Reason: "r", Error: "e", Since: now, WaitingRecords: 2, BufferedBytes: 9, Files: []string{"/a"}}},
		TopicLimits: []fleet.TopicLimit{{Topic: "t", MaxMessageBytes: 100, Problem: "small"}}}
	st.SetFiles([]fleet.FileStatus{{Path: "/a", Entry: "/*", Topic: "t", State: fleet.FileStateError, LastError: "denied", Committed: 1, Size: 3,
		LagBytes: 2, LinesRead: 4, LinesAcked: 5, BytesRead: 6, Rotations: 7, Truncations: 8, Oversized: 9, RecordsSplit: 10, LostBytes: 11}})
	st.FilesOmitted = 1
	st.Stamp(now)
	cpu, load, mem, disk, rx, tx := 12.5, 0.4, 63.0, 7.0, 1024.0, 2048.0
	st.Sys = &fleet.SysStatus{Topic: "sys", Interval: "10s", Buffered: 1, Sent: 2, Dropped: 3, LastSeq: 4, Latest: &fleet.SysHeadline{Time: "t", Rates: true, CPU: &cpu,
		Load1: &load, MemoryUsed: &mem, DiskBusy: &disk, BusiestDisk: "sda", NetworkRx: &rx, NetworkTx: &tx}}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != statusJSON {
		t.Errorf("status JSON\ngot  %s\nwant %s", data, statusJSON)
	}
	var back fleet.Status
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, st) {
		t.Errorf("round trip\ngot  %+v\nwant %+v", back, *st)
	}

	ls := fleet.LastSeen{Time: now, State: fleet.LastSeenStopped, Version: "v1", Owner: owner}
	if data, _ := json.Marshal(ls); string(data) != lastSeenJSON {
		t.Errorf("last_seen JSON\ngot  %s\nwant %s", data, lastSeenJSON)
	}
}

// A reader decodes a status tolerantly: a newer agent's fields are skipped.
func TestStatusUnknownFields(t *testing.T) {
	var st fleet.Status
	if err := json.Unmarshal([]byte(`{"host":"h","health":"ok","from_the_future":{"x":1}}`), &st); err != nil || st.Host != "h" {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestKeys(t *testing.T) {
	for got, want := range map[string]string{
		fleet.ConfigKey("web1"):       "/logagent/web1/collect_config",
		fleet.SysConfigKey("web1"):    "/logagent/web1/sys_config",
		fleet.StatusKey("web1"):       "/logagent/web1/status",
		fleet.LastSeenKey("web1"):     "/logagent/web1/last_seen",
		fleet.TransferConfigKey:       "/logtransfer/config",
		fleet.TransferStatusKey("t1"): "/logtransfer/t1/status",
		fleet.AuditPrefix + "1-web1":  "/logagent/_audit/1-web1",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}

func TestSplitKey(t *testing.T) {
	for key, want := range map[string][2]string{
		"/logagent/web1/status":         {"web1", "status"},
		"/logagent/web1/collect_config": {"web1", "collect_config"},
		"/logagent/_audit/123-web1":     {},
		"/logagent/web1":                {},
		"/logagent/web1/a/b":            {},
		"/logtransfer/config":           {},
	} {
		h, n, ok := fleet.SplitKey(key)
		if ok != (want[0] != "") || h != want[0] || n != want[1] {
			t.Errorf("%s: %q %q %v", key, h, n, ok)
		}
	}
}

func TestValidTopic(t *testing.T) {
	for topic, want := range map[string]bool{"web_log": true, "a.b-c": true, "": false, ".": false, "..": false,
		"a b": false, string(make([]byte, 250)): false} {
		if fleet.ValidTopic(topic) != want {
			t.Errorf("ValidTopic(%q) = %v", topic, !want)
		}
	}
}
