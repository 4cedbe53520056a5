package console

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/fleet"
)

// BenchmarkFleet10000 is the console with 10,000 simulated agents on one
// etcd: each host has a collect_config and a status key under a lease, as
// real agents write them. It reports (not asserts) the first page and a
// filtered page of GET /api/hosts, a bulk add to every host (applied: the
// prefix watch saw every key change) and the console's heap.
//
//	go test -run '^$' -bench Fleet10000 -benchtime 20x ./console/
func BenchmarkFleet10000(b *testing.B) {
	const hosts = 10000
	h := newHarness(b)
	ctx := context.Background()
	lease, err := h.cli.Grant(ctx, 600)
	if err != nil {
		b.Fatal(err)
	}
	var ops []clientv3.Op
	var last int64
	flush := func() {
		resp, err := h.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			b.Fatal(err)
		}
		last, ops = resp.Header.Revision, ops[:0]
	}
	now := time.Now().UTC()
	for i := range hosts {
		host := fmt.Sprintf("web-%05d", i)
		st := fleet.Status{Host: host, Version: "v1.0.0", StartTime: now.Add(-time.Hour), Updated: now, Health: "ok",
			Config: fleet.ConfigState{Revision: 1}, Labels: map[string]string{"dc": []string{"sh", "bj"}[i%2]},
			Files: []fleet.FileStatus{{Path: "/var/log/nginx/access.log", Topic: "web_log", State: "running", LagBytes: int64(i)},
				{Path: "/var/log/app/app.log", Topic: "app_log", State: "running"}}}
		data, _ := json.Marshal(st)
		ops = append(ops, clientv3.OpPut(fleet.ConfigKey(host), `[{"path": "/var/log/nginx/access.log", "topic": "web_log"}]`),
			clientv3.OpPut(fleet.StatusKey(host), string(data), clientv3.WithLease(lease.ID)))
		if len(ops) == 128 {
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
	h.start()
	h.waitRev(last)
	// The console's memory is its copy of every host's keys: the heap one
	// more copy takes (etcd runs in this process too: the whole heap would
	// count it).
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	c2 := newCache(h.cli, h.srv.log)
	if err := c2.load(ctx); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	runtime.KeepAlive(c2)
	heap := (float64(ms1.HeapInuse) - float64(ms0.HeapInuse)) / (1 << 20)

	ed := h.login("ed")
	page := func(query string) time.Duration {
		var r hostsResp
		t0 := time.Now()
		if st := ed.do("GET", "/api/hosts?"+query, nil, &r); st != 200 || r.Total == 0 {
			b.Fatalf("%s: %d total %d", query, st, r.Total)
		}
		return time.Since(t0)
	}
	var first, filtered time.Duration
	b.ResetTimer()
	for range b.N {
		first += page("sort=state&per_page=50")
		filtered += page("q=web-0*1&label=dc=bj&sort=lag&order=desc")
	}
	b.StopTimer()
	b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "ms-first-page")
	b.ReportMetric(float64(filtered.Milliseconds())/float64(b.N), "ms-filtered-page")

	// A bulk add to all 10,000, applied when a watch saw every key change.
	req := map[string]any{"filter": map[string]any{}, "action": "set", "entry": map[string]any{"path": "/var/log/new.log", "topic": "new_log"}}
	var p bulkPreview
	if st := ed.do("POST", "/api/bulk/preview", req, &p); st != 200 || len(p.Hosts) != hosts {
		b.Fatalf("preview: %d, %d hosts", st, len(p.Hosts))
	}
	revs := map[string]int64{}
	for _, x := range p.Hosts {
		revs[x.Host] = x.Revision
	}
	req["revisions"] = revs
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan struct{})
	wch := h.cli.Watch(wctx, fleet.Prefix, clientv3.WithPrefix())
	go func() {
		n := 0
		for resp := range wch {
			for _, ev := range resp.Events {
				if _, name, ok := fleet.SplitKey(string(ev.Kv.Key)); ok && name == fleet.KeyCollectConfig {
					n++
				}
			}
			if n >= hosts {
				close(seen)
				return
			}
		}
	}()
	t0 := time.Now()
	var res bulkResult
	if st := ed.do("POST", "/api/bulk/apply", req, &res); st != 200 {
		b.Fatalf("apply: %d %+v", st, res.Error)
	}
	select {
	case <-seen:
	case <-time.After(time.Minute):
		b.Fatal("the watch did not see every host's change")
	}
	b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms-bulk-add-10k")
	b.ReportMetric(heap, "MiB-fleet-cache")
}
