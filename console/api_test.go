package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/testenv"
)

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type hostsResp struct {
	Hosts  []hostRow      `json:"hosts"`
	Total  int            `json:"total"`
	States map[string]int `json:"states"`
}

// TestFleetStates: every kind of host gets its state, reason, version,
// files, lag and config revisions from its keys.
func TestFleetStates(t *testing.T) {
	h := newHarness(t)
	h.start()
	start := time.Now().Add(-time.Hour).UTC()
	// Not a host: another prefix.
	if _, err := h.cli.Put(context.Background(), "/logtransfer/config", "[]"); err != nil {
		t.Fatal(err)
	}
	entries := `[{"path": "/var/log/a.log", "topic": "t"}]`
	status := func(host string, rev int64, health string, files ...fleet.FileStatus) string {
		return mustJSON(t, fleet.Status{Host: host, Version: "v1.2", StartTime: start, Health: health,
			Config: fleet.ConfigState{Revision: rev}, Files: files, Labels: map[string]string{"role": "web"}})
	}
	// healthy: applied the current config.
	rev := h.put(fleet.ConfigKey("web1"), entries)
	h.put(fleet.StatusKey("web1"), status("web1", rev, "ok", fleet.FileStatus{Path: "/var/log/a.log", State: "running", LagBytes: 100}))
	// degraded: a file in error, and an older config applied.
	h.put(fleet.ConfigKey("web2"), entries)
	h.put(fleet.StatusKey("web2"), status("web2", 1, "ok",
		fleet.FileStatus{Path: "/var/log/a.log", State: fleet.FileStateError, LastError: "permission denied", LagBytes: 5},
		fleet.FileStatus{Path: "/var/log/b.log", State: "running", LagBytes: 7}))
	// degraded: Kafka down.
	h.put(fleet.StatusKey("db1"), status("db1", 0, "kafka: no broker reachable"))
	// offline: stopped cleanly; and lost.
	seen := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	h.put(fleet.ConfigKey("db2"), entries)
	h.put(fleet.LastSeenKey("db2"), mustJSON(t, fleet.LastSeen{Time: seen, State: fleet.LastSeenStopped, Version: "v1.1"}))
	h.put(fleet.LastSeenKey("db3"), mustJSON(t, fleet.LastSeen{Time: seen, State: fleet.LastSeenRunning}))
	// never seen: a config only.
	h.put(fleet.ConfigKey("new1"), entries)
	// not a host: the audit trail.
	h.put(fleet.AuditPrefix+"x", "{}")

	c := h.login("viv")
	var got hostsResp
	if st := c.do("GET", "/api/hosts", nil, &got); st != 200 {
		t.Fatalf("status %d", st)
	}
	byHost := map[string]hostRow{}
	var names []string
	for _, r := range got.Hosts {
		byHost[r.Host] = r
		names = append(names, r.Host)
	}
	if want := []string{"db1", "db2", "db3", "new1", "web1", "web2"}; !slices.Equal(names, want) {
		t.Fatalf("hosts %v, want %v", names, want)
	}
	check := func(host, state, reason string) hostRow {
		t.Helper()
		r := byHost[host]
		if r.State != state || !strings.Contains(r.Reason, reason) {
			t.Errorf("%s: state %q reason %q, want %q with %q", host, r.State, r.Reason, state, reason)
		}
		return r
	}
	if r := check("web1", StateHealthy, ""); r.ConfigStale || r.Files != 1 || r.LagBytes != 100 || r.Version != "v1.2" || r.UptimeSeconds < 3600 || r.Labels["role"] != "web" {
		t.Errorf("web1: %+v", r)
	}
	if r := check("web2", StateDegraded, "/var/log/a.log: permission denied"); !r.ConfigStale || r.FilesInError != 1 || r.LagBytes != 12 || r.AppliedRevision != 1 {
		t.Errorf("web2: %+v", r)
	}
	check("db1", StateDegraded, "kafka: no broker reachable")
	if r := check("db2", StateOffline, "stopped at 2026-12-01T10:00:00Z"); r.Since == nil || !r.Since.Equal(seen) || r.Version != "v1.1" {
		t.Errorf("db2: %+v", r)
	}
	check("db3", StateOffline, "lost contact after 2026-12-01T10:00:00Z")
	check("new1", StateNeverSeen, "")
	if got.States[StateDegraded] != 2 || got.States[StateOffline] != 2 {
		t.Errorf("counts %v", got.States)
	}

	// Filters, sort, pages.
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"q=web", []string{"web1", "web2"}},
		{"q=d*1", []string{"db1"}},
		{"state=offline,never_seen", []string{"db2", "db3", "new1"}},
		{"label=role=web", []string{"db1", "web1", "web2"}},
		{"sort=lag&order=desc&per_page=2", []string{"web1", "web2"}},
		{"sort=host&per_page=2&page=3", []string{"web1", "web2"}},
		{"sort=state&q=web", []string{"web2", "web1"}},
	} {
		var r hostsResp
		if st := c.do("GET", "/api/hosts?"+tc.query, nil, &r); st != 200 {
			t.Fatalf("%s: status %d", tc.query, st)
		}
		var names []string
		for _, row := range r.Hosts {
			names = append(names, row.Host)
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, names, tc.want)
		}
	}
	var e apiError
	if st := c.do("GET", "/api/hosts?sort=nope", nil, &e); st != 400 || !strings.Contains(e.Message, "sort") {
		t.Errorf("bad sort: %d %+v", st, e)
	}

	// The agent stops: status gone, last_seen stopped → offline at once.
	h.del(fleet.StatusKey("web1"))
	h.put(fleet.LastSeenKey("web1"), mustJSON(t, fleet.LastSeen{Time: seen, State: fleet.LastSeenStopped}))
	var one struct {
		Host hostRow `json:"host"`
	}
	c.do("GET", "/api/hosts/web1", nil, &one)
	if one.Host.State != StateOffline {
		t.Errorf("web1 after stop: %+v", one.Host)
	}
}

// TestFleetSysHeadline: a host whose agent runs the Sys Agent shows its
// latest headline in its row, as the agent writes it into the status key;
// a host without one has none.
func TestFleetSysHeadline(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.put(fleet.StatusKey("web1"), `{"host":"web1","health":"ok","sys":{"topic":"sys","interval":"10s","sent_samples":3,`+
		`"latest":{"time":"2026-12-06T01:02:03Z","rates":true,"cpu_percent":12.5,"load1":0.42,"memory_used_percent":63,`+
		`"disk_busy_percent":7,"busiest_disk":"sda","network_rx_bytes_per_s":1024,"network_tx_bytes_per_s":2048}}}`)
	h.put(fleet.StatusKey("web2"), `{"host":"web2","health":"ok"}`)

	c := h.login("viv")
	var one struct {
		Host hostRow `json:"host"`
	}
	if st := c.do("GET", "/api/hosts/web1", nil, &one); st != 200 {
		t.Fatalf("status %d", st)
	}
	s := one.Host.Sys
	if s == nil || s.CPU == nil || *s.CPU != 12.5 || s.Load1 == nil || *s.Load1 != 0.42 || s.MemoryUsed == nil || *s.MemoryUsed != 63 ||
		s.DiskBusy == nil || *s.DiskBusy != 7 || s.BusiestDisk != "sda" || s.NetworkRx == nil || *s.NetworkRx != 1024 ||
		s.NetworkTx == nil || *s.NetworkTx != 2048 || !s.Rates {
		t.Errorf("web1 sys: %+v", s)
	}
	var raw struct {
		Hosts []map[string]json.RawMessage `json:"hosts"`
	}
	c.do("GET", "/api/hosts", nil, &raw)
	for _, r := range raw.Hosts {
		_, has := r["sys"]
		if host := string(r["host"]); has != (host == `"web1"`) {
			t.Errorf("%s: sys present %v", host, has)
		}
	}
}

// TestEntriesSave: the entries are validated by etcd.ParseEntries (the
// agent's own check), written conditioned on the revision they were
// loaded at, and a concurrent change is a 409 with the current value.
func TestEntriesSave(t *testing.T) {
	h := newHarness(t)
	h.start()
	rev := h.put(fleet.ConfigKey("web1"), `[{"path": "/var/log/a.log", "topic": "t"}]`)
	ed := h.login("ed")

	var host struct {
		Config hostConfig `json:"config"`
	}
	if st := ed.do("GET", "/api/hosts/web1", nil, &host); st != 200 || host.Config.Revision != rev || len(host.Config.Entries) != 1 {
		t.Fatalf("GET: %d %+v", st, host)
	}

	// Invalid: the agent's validation speaks, and nothing is written.
	for _, tc := range []struct{ entries, want string }{
		{`[{"path": "var/log/b.log", "topic": "t"}]`, "path must be absolute"},
		{`[{"path": "/var/log/b.log", "topic": "a b"}]`, "not a valid Kafka topic"},
		{`[{"path": "/b", "topic": "t"}, {"path": "/c", "topic": ""}]`, "topic is empty"},
		{`{"path": "/b"}`, "not a JSON array"},
		{`[{"path": "/b", "topic": "t", "colour": "red"}]`, "unknown field"},
	} {
		var e apiError
		st := ed.do("PUT", "/api/hosts/web1/entries", map[string]any{"revision": rev, "entries": json.RawMessage(tc.entries)}, &e)
		if st != 400 || !strings.Contains(e.Message+strings.Join(e.Problems, ";"), tc.want) {
			t.Errorf("%s: %d %+v, want 400 with %q", tc.entries, st, e, tc.want)
		}
	}
	if _, r := h.get(fleet.ConfigKey("web1")); r != rev {
		t.Fatalf("an invalid save wrote the key (revision %d → %d)", rev, r)
	}

	// Valid, at the loaded revision.
	next := `[{"path": "/var/log/a.log", "topic": "t"}, {"path": "/var/log/b.log", "topic": "u", "read_from": "beginning"}]`
	var saved struct {
		Config hostConfig `json:"config"`
	}
	if st := ed.do("PUT", "/api/hosts/web1/entries", map[string]any{"revision": rev, "entries": json.RawMessage(next)}, &saved); st != 200 {
		t.Fatalf("save: %d", st)
	}
	val, newRev := h.get(fleet.ConfigKey("web1"))
	if newRev != saved.Config.Revision || !strings.Contains(val, `"read_from": "beginning"`) {
		t.Fatalf("saved %q at %d, answer %+v", val, newRev, saved.Config)
	}

	// Someone else saves meanwhile: the stale form gets 409 and the current value.
	other := `[{"path": "/var/log/c.log", "topic": "t"}]`
	h.put(fleet.ConfigKey("web1"), other)
	var conflict apiError
	st := ed.do("PUT", "/api/hosts/web1/entries", map[string]any{"revision": newRev, "entries": json.RawMessage(next)}, &conflict)
	if st != 409 || conflict.Current == nil || conflict.Current.Raw != other || !strings.Contains(conflict.Message, "changed since it was loaded") {
		t.Fatalf("concurrent edit: %d %+v", st, conflict)
	}
	if v, _ := h.get(fleet.ConfigKey("web1")); v != other {
		t.Fatalf("the conflict overwrote the value: %q", v)
	}

	// A new host: revision 0 means the key must not exist yet.
	if st := ed.do("PUT", "/api/hosts/new1/entries", map[string]any{"revision": 0, "entries": json.RawMessage(`[]`)}, nil); st != 200 {
		t.Fatalf("create: %d", st)
	}
	if st := ed.do("PUT", "/api/hosts/new1/entries", map[string]any{"revision": 0, "entries": json.RawMessage(`[]`)}, nil); st != 409 {
		t.Fatalf("create again at revision 0: %d, want 409", st)
	}
	if st := ed.do("PUT", "/api/hosts/_audit/entries", map[string]any{"revision": 0, "entries": json.RawMessage(`[]`)}, nil); st != 400 {
		t.Fatalf("host _audit: %d, want 400", st)
	}

	// Every save is in the audit trail, newest first.
	var audit struct {
		Records []auditRecord `json:"records"`
	}
	if st := ed.do("GET", "/api/audit", nil, &audit); st != 200 || len(audit.Records) != 2 {
		t.Fatalf("audit: %d %+v", st, audit)
	}
	a := audit.Records[1]
	if a.User != "ed" || a.Host != "web1" || a.Action != "edit" || a.BeforeRevision != rev ||
		!strings.Contains(a.Before, "a.log") || !strings.Contains(a.After, "b.log") || a.Time.IsZero() {
		t.Errorf("audit record %+v", a)
	}
	if audit.Records[0].Host != "new1" || audit.Records[0].Before != "" {
		t.Errorf("newest audit record %+v", audit.Records[0])
	}
	var only struct {
		Records []auditRecord `json:"records"`
	}
	ed.do("GET", "/api/audit?host=new1", nil, &only)
	if len(only.Records) != 1 || only.Records[0].Host != "new1" {
		t.Errorf("audit?host=new1: %+v", only.Records)
	}
}

// TestAuditBounded: the trail keeps the newest auditMax records.
func TestAuditBounded(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.srv.auditMax = 3
	ed := h.login("ed")
	rev := int64(0)
	for i := range 5 {
		var saved struct {
			Config hostConfig `json:"config"`
		}
		entries := fmt.Sprintf(`[{"path": "/var/log/%d.log", "topic": "t"}]`, i)
		if st := ed.do("PUT", "/api/hosts/h/entries", map[string]any{"revision": rev, "entries": json.RawMessage(entries)}, &saved); st != 200 {
			t.Fatalf("save %d: %d", i, st)
		}
		rev = saved.Config.Revision
	}
	resp, err := h.cli.Get(context.Background(), fleet.AuditPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 3 {
		t.Fatalf("%d audit records kept, want 3", len(resp.Kvs))
	}
	for i, kv := range resp.Kvs {
		if want := fmt.Sprintf("/var/log/%d.log", i+2); !strings.Contains(string(kv.Value), want) {
			t.Errorf("record %d: %s, want the change to %s", i, kv.Value, want)
		}
	}
}

type bulkPreview struct {
	Hosts []bulkHost `json:"hosts"`
}

type bulkResult struct {
	Results []changeResult `json:"results"`
	Error   string         `json:"error"`
}

// TestBulk: a preview lists before → after; apply writes every host in
// one transaction conditioned on every key, or none when one changed
// since the preview; beyond etcd's transaction size it is chunked.
func TestBulk(t *testing.T) {
	h := newHarness(t)
	h.start()
	for _, host := range []string{"web1", "web2", "web3", "db1"} {
		h.put(fleet.ConfigKey(host), `[{"path": "/var/log/a.log", "topic": "t"}]`)
	}
	h.put(fleet.ConfigKey("web4"), `[{"path": "/var/log/new.log", "topic": "old"}]`)
	ed := h.login("ed")
	req := map[string]any{"filter": map[string]any{"q": "web*"}, "action": "set",
		"entry": map[string]any{"path": "/var/log/new.log", "topic": "new"}}

	preview := func() bulkPreview {
		t.Helper()
		var p bulkPreview
		if st := ed.do("POST", "/api/bulk/preview", req, &p); st != 200 {
			t.Fatalf("preview: %d", st)
		}
		return p
	}
	revisions := func(p bulkPreview) map[string]int64 {
		m := map[string]int64{}
		for _, h := range p.Hosts {
			m[h.Host] = h.Revision
		}
		return m
	}
	p := preview()
	if len(p.Hosts) != 4 {
		t.Fatalf("preview selected %d hosts, want web1..web4: %+v", len(p.Hosts), p.Hosts)
	}
	for _, b := range p.Hosts {
		if !b.Changed || !strings.Contains(b.After, `"topic": "new"`) || strings.Count(b.After, "path") != map[bool]int{true: 1, false: 2}[b.Host == "web4"] {
			t.Errorf("preview %s: %+v", b.Host, b)
		}
	}

	// One key changes after the preview: nothing is applied.
	h.put(fleet.ConfigKey("web2"), `[{"path": "/var/log/b.log", "topic": "t"}]`)
	before := map[string]int64{}
	for _, host := range []string{"web1", "web3", "web4"} {
		_, before[host] = h.get(fleet.ConfigKey(host))
	}
	apply := map[string]any{"revisions": revisions(p)}
	for k, v := range req {
		apply[k] = v
	}
	var res bulkResult
	if st := ed.do("POST", "/api/bulk/apply", apply, &res); st != 409 {
		t.Fatalf("apply after a change: %d %+v, want 409", st, res)
	}
	for _, r := range res.Results {
		want := resultNotTried
		if r.Host == "web2" {
			want = resultConflict
		}
		if r.Result != want {
			t.Errorf("%s: %s, want %s", r.Host, r.Result, want)
		}
	}
	for host, rev := range before {
		if _, r := h.get(fleet.ConfigKey(host)); r != rev {
			t.Errorf("%s was written (revision %d → %d) though web2 changed", host, rev, r)
		}
	}

	// Preview again, apply: all of them, in chunks of two hosts.
	txnHosts = 2
	defer func() { txnHosts = 64 }()
	p = preview()
	apply["revisions"] = revisions(p)
	if st := ed.do("POST", "/api/bulk/apply", apply, &res); st != 200 {
		t.Fatalf("apply: %d %+v", st, res)
	}
	for _, r := range res.Results {
		v, _ := h.get(fleet.ConfigKey(r.Host))
		if r.Result != resultApplied || !strings.Contains(v, `"new"`) {
			t.Errorf("%s: %s, value %s", r.Host, r.Result, v)
		}
	}
	if v, _ := h.get(fleet.ConfigKey("db1")); strings.Contains(v, "new.log") {
		t.Errorf("db1 was not selected but changed: %s", v)
	}

	// Remove it again; a host without it is unchanged.
	h.put(fleet.ConfigKey("web5"), `[{"path": "/var/log/a.log", "topic": "t"}]`)
	req = map[string]any{"filter": map[string]any{"q": "web"}, "action": "remove", "path": "/var/log/new.log"}
	p = preview()
	apply = map[string]any{"filter": req["filter"], "action": "remove", "path": "/var/log/new.log", "revisions": revisions(p)}
	if st := ed.do("POST", "/api/bulk/apply", apply, &res); st != 200 {
		t.Fatalf("remove: %d %+v", st, res)
	}
	for _, r := range res.Results {
		v, _ := h.get(fleet.ConfigKey(r.Host))
		want := resultApplied
		if r.Host == "web5" {
			want = resultUnchanged
		}
		if r.Result != want || strings.Contains(v, "new.log") {
			t.Errorf("remove %s: %s, value %s", r.Host, r.Result, v)
		}
	}

	// A bad entry is refused by the agent's validation before any host.
	var e apiError
	bad := map[string]any{"filter": map[string]any{}, "action": "set", "entry": map[string]any{"path": "relative", "topic": "t"}}
	if st := ed.do("POST", "/api/bulk/preview", bad, &e); st != 400 || !strings.Contains(e.Message, "path must be absolute") {
		t.Errorf("bad entry: %d %+v", st, e)
	}
	// Every applied host has its audit record.
	var audit struct {
		Records []auditRecord `json:"records"`
	}
	ed.do("GET", "/api/audit?limit=1000", nil, &audit)
	if n := len(audit.Records); n != 8 {
		t.Errorf("%d audit records, want 8 (4 set, 4 remove)", n)
	}
}

// TestWriteAllOrNothing: the transaction under a bulk apply writes no
// key when one of them moved since it was read, even when the console's
// cache had not seen that yet; the result says which one.
func TestWriteAllOrNothing(t *testing.T) {
	h := newHarness(t)
	h.start()
	revs := map[string]int64{}
	for _, host := range []string{"a", "b", "c"} {
		revs[host] = h.put(fleet.ConfigKey(host), `[]`)
	}
	if _, err := h.cli.Put(context.Background(), fleet.ConfigKey("b"), `[{"path": "/x", "topic": "t"}]`); err != nil {
		t.Fatal(err)
	}
	var changes []configChange
	for _, host := range []string{"a", "b", "c"} {
		changes = append(changes, configChange{host: host, rev: revs[host], value: []byte(`[{"path": "/new", "topic": "t"}]`)})
	}
	res, err := h.srv.writeConfigs(context.Background(), &session{User: "ed"}, "bulk-set", changes)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": resultNotTried, "b": resultConflict, "c": resultNotTried}
	for _, r := range res {
		if r.Result != want[r.Host] {
			t.Errorf("%s: %s, want %s", r.Host, r.Result, want[r.Host])
		}
		if v, _ := h.get(fleet.ConfigKey(r.Host)); strings.Contains(v, "/new") {
			t.Errorf("%s written: %s", r.Host, v)
		}
	}
	if resp, _ := h.cli.Get(context.Background(), fleet.AuditPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); resp.Count != 0 {
		t.Errorf("%d audit records for a change not made", resp.Count)
	}
}

// TestEtcdLate: the console starts while etcd is down; its fleet routes
// answer 503 saying so, logging in works, and once etcd answers the fleet
// is there without a restart.
func TestEtcdLate(t *testing.T) {
	port, err := testenv.LowPorts(1)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessNoEtcd(t, port)
	h.start()
	c := h.login("viv")
	var e apiError
	if st := c.do("GET", "/api/hosts", nil, &e); st != http.StatusServiceUnavailable || !strings.Contains(e.Message, "etcd") {
		t.Fatalf("before etcd: %d %+v", st, e)
	}
	if h.etcd, err = testenv.StartEtcd(h.dir, port); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.etcd.Close)
	h.put(fleet.ConfigKey("web1"), `[]`)
	var r hostsResp
	if st := c.do("GET", "/api/hosts", nil, &r); st != 200 || r.Total != 1 {
		t.Fatalf("after etcd: %d %+v", st, r)
	}
}

// TestStop: Stop ends Run with an event stream open, and is safe twice
// and before Run.
func TestStop(t *testing.T) {
	h := newHarness(t)
	h.start()
	c := h.login("viv")
	req, _ := http.NewRequest("GET", h.srv.URL()+"/api/events", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	stopped := make(chan struct{})
	go func() { h.srv.Stop(); h.srv.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop hangs with an event stream open")
	}

	cfg := h.srv.cfg
	srv, err := New(cfg, h.cli, h.kafka, h.srv.log)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	srv.Stop()
	if err := srv.Run(context.Background()); err != nil {
		t.Errorf("Run after Stop: %v", err)
	}
}
