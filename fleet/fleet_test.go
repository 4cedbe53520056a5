package fleet_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/logagent/logagent/agent"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/sysagent"
	"github.com/logagent/logagent/taillog"
)

// TestAgentDocuments: what the agent writes decodes into the fleet types
// with nothing lost of what they hold, and the key names are the agent's.
func TestAgentDocuments(t *testing.T) {
	now := time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)
	owner := etcd.Owner{Instance: "i", Machine: "m", PID: 7, StartTime: now}
	st := agent.Status{Host: "web1", Owner: owner, Version: "v1", StartTime: now, Updated: now, Health: "ok",
		Config: etcd.State{Revision: 42, LastError: "bad", Problems: []string{"p"}},
		Files: []taillog.Status{{Path: "/a", Topic: "t", State: "error", LastError: "denied", Committed: 1, Size: 3,
			LagBytes: 2, LinesRead: 4, LinesAcked: 5, BytesRead: 6, Rotations: 7, Truncations: 8}}}
	cpu, load, mem, disk, rx, tx := 12.5, 0.4, 63.0, 7.0, 1024.0, 2048.0
	st.Sys = &sysagent.Status{Topic: "sys", Interval: "10s", Latest: &sysagent.Headline{Time: "t", Rates: true, CPU: &cpu,
		Load1: &load, MemoryUsed: &mem, DiskBusy: &disk, BusiestDisk: "sda", NetworkRx: &rx, NetworkTx: &tx}}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var got fleet.Status
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := fleet.Status{Host: "web1", Owner: fleet.Owner(owner), Version: "v1", StartTime: now, Updated: now, Health: "ok",
		Config: fleet.ConfigState{Revision: 42, Error: "bad", Problems: []string{"p"}},
		Files: []fleet.FileStatus{{Path: "/a", Topic: "t", State: fleet.FileStateError, LastError: "denied", Committed: 1, Size: 3,
			LagBytes: 2, LinesRead: 4, LinesAcked: 5, BytesRead: 6, Rotations: 7, Truncations: 8}},
		Sys: &fleet.SysStatus{Latest: &fleet.SysHeadline{Time: "t", Rates: true, CPU: &cpu, Load1: &load, MemoryUsed: &mem,
			DiskBusy: &disk, BusiestDisk: "sda", NetworkRx: &rx, NetworkTx: &tx}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	ls := etcd.LastSeen{Time: now, State: etcd.LastSeenStopped, Version: "v1", Owner: owner}
	data, _ = json.Marshal(ls)
	var gotLS fleet.LastSeen
	json.Unmarshal(data, &gotLS)
	if gotLS != (fleet.LastSeen{Time: now, State: fleet.LastSeenStopped, Version: "v1", Owner: fleet.Owner(owner)}) {
		t.Errorf("last_seen %+v", gotLS)
	}
	if fleet.ConfigKey("h") != etcd.ConfigKey("h") || fleet.StatusKey("h") != etcd.StatusKey("h") || fleet.LastSeenKey("h") != etcd.LastSeenKey("h") {
		t.Error("key names differ from the agent's")
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
