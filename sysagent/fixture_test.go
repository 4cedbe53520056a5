package sysagent

import (
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/logagent/logagent/etcd"
)

// fixture copies the captured tree testdata/t0 (proc and sys) into a
// temporary directory; advance overlays testdata/t1, the same host's
// counters 10 s later.
func fixture(t *testing.T) (p Paths, advance func()) {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, "testdata/t0", dir)
	return Paths{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys")},
		func() { copyTree(t, "testdata/t1", dir) }
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

var t0 = time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)

// sampleTwice samples the fixture with the collector called name at t0
// and, after advance, at t0+10s; it returns each sample's part as JSON.
func sampleTwice(t *testing.T, name string, setup func(Collector), part func(*Record) any) (first, second string) {
	t.Helper()
	p, advance := fixture(t)
	c, err := NewCollector(name, p)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(c)
	}
	get := func(now, prev time.Time) string {
		var r Record
		if err := c.Update(&r, now, prev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := json.Marshal(part(&r))
		return string(b)
	}
	first = get(t0, time.Time{})
	advance()
	second = get(t0.Add(10*time.Second), t0)
	return first, second
}

func check(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

func TestCPUFixture(t *testing.T) {
	first, second := sampleTwice(t, "cpu", nil, func(r *Record) any { return r.CPU })
	check(t, "first sample (no rates)", first, `{"cpus":2}`)
	// 2000 ticks passed on 2 CPUs: user+nice 700, system 200, irq+softirq
	// 50, idle 900, iowait 100, steal 50.
	check(t, "second sample", second, `{"cpus":2,"used_percent":50,"user_percent":35,"system_percent":10,"iowait_percent":5,"steal_percent":2.5,"irq_percent":2.5,"idle_percent":45}`)
}

func TestLoadFixture(t *testing.T) {
	first, second := sampleTwice(t, "load", nil, func(r *Record) any { return r.Load })
	check(t, "first", first, `{"load1":0.5,"load5":0.4,"load15":0.3}`)
	check(t, "second", second, `{"load1":1.5,"load5":0.6,"load15":0.35}`)
}

func TestMemoryFixture(t *testing.T) {
	first, _ := sampleTwice(t, "memory", nil, func(r *Record) any { return r.Memory })
	check(t, "memory", first, `{"total_bytes":16777216000,"available_bytes":8388608000,"used_bytes":8388608000,"used_percent":50,"cached_bytes":4194304000,"buffers_bytes":1048576,"swap_total_bytes":2097152000,"swap_used_bytes":1048576000}`)
}

func TestDiskFixture(t *testing.T) {
	first, second := sampleTwice(t, "disk", nil, func(r *Record) any { return r.Disk })
	// loop0 and zram0 are not disks; sda1 is a partition of sda.
	check(t, "first", first, `[{"device":"sda"},{"device":"nvme0n1"}]`)
	// sda: 20480 sectors read and 40960 written, 100 reads, 200 writes,
	// 2500 ms busy in 10 s.
	check(t, "second", second, `[{"device":"sda","read_bytes_per_s":1048576,"write_bytes_per_s":2097152,"reads_per_s":10,"writes_per_s":20,"busy_percent":25},`+
		`{"device":"nvme0n1","read_bytes_per_s":0,"write_bytes_per_s":0,"reads_per_s":0,"writes_per_s":0,"busy_percent":0}]`)
}

func TestNetworkFixture(t *testing.T) {
	first, second := sampleTwice(t, "network", nil, func(r *Record) any { return r.Network })
	check(t, "first", first, `[{"interface":"eth0"},{"interface":"lo"}]`)
	// wlan0 appeared: no rates for it yet.
	check(t, "second", second, `[{"interface":"eth0","rx_bytes_per_s":100000,"tx_bytes_per_s":50000,"rx_packets_per_s":100,"tx_packets_per_s":50,"rx_errors_per_s":1,"tx_errors_per_s":0,"rx_drops_per_s":2,"tx_drops_per_s":1},`+
		`{"interface":"lo","rx_bytes_per_s":1000,"tx_bytes_per_s":1000,"rx_packets_per_s":10,"tx_packets_per_s":10,"rx_errors_per_s":0,"tx_errors_per_s":0,"rx_drops_per_s":0,"tx_drops_per_s":0},`+
		`{"interface":"wlan0"}]`)
}

func TestFilesystemFixture(t *testing.T) {
	var statted []string
	fake := func(path string, st *unix.Statfs_t) error {
		statted = append(statted, path)
		switch path {
		case "/":
			*st = unix.Statfs_t{Bsize: 4096, Frsize: 4096, Blocks: 1000, Bfree: 400, Bavail: 300, Files: 100, Ffree: 75}
		case "/data":
			*st = unix.Statfs_t{Bsize: 4096, Frsize: 1024, Blocks: 2000, Bfree: 2000, Bavail: 2000}
		default:
			return unix.ENOENT
		}
		return nil
	}
	first, _ := sampleTwice(t, "filesystem", func(c Collector) { c.(*filesystemCollector).statfs = fake },
		func(r *Record) any { return r.Filesystem })
	// proc, tmpfs, cgroup2, nfs4 and fuse.sshfs are left out; /mnt/bind is
	// / again. xfs with no inode count has no inode figure.
	check(t, "filesystems", first, `[{"mountpoint":"/","device":"/dev/sda1","type":"ext4","size_bytes":4096000,"used_bytes":2457600,"free_bytes":1228800,"used_percent":66.67,"inodes_used_percent":25},`+
		`{"mountpoint":"/data","device":"/dev/nvme0n1p1","type":"xfs","size_bytes":2048000,"used_bytes":0,"free_bytes":2048000,"used_percent":0}]`)
	if want := []string{"/", "/data", "/", "/data"}; !slices.Equal(statted, want) {
		t.Errorf("statfs called on %q, want %q (no pseudo, network or duplicate mount)", statted, want)
	}
}

// TestSamplerFixture: the first sample says it has no rates and carries
// none; the next has them, with the time between the readings; a failing
// collector leaves its part out and says why, the others stand.
func TestSamplerFixture(t *testing.T) {
	p, advance := fixture(t)
	s := NewSampler("web-1", p, etcd.SysCollectors)
	r := s.Sample(t0)
	b, _ := json.Marshal(r)
	t.Logf("first: %s", b)
	if r.Rates || r.RateSeconds != nil || r.CPU.Used != nil || r.Disk[0].WriteBytes != nil || r.Schema != 1 || r.Host != "web-1" || r.Time != "2026-12-06T06:00:00.000Z" {
		t.Fatalf("first sample: %s", b)
	}
	advance()
	os.Remove(filepath.Join(p.Proc, "loadavg"))
	r = s.Sample(t0.Add(10*time.Second + 500*time.Millisecond))
	b, _ = json.Marshal(r)
	t.Logf("second: %s", b)
	if !r.Rates || *r.RateSeconds != 10.5 || r.CPU.Used == nil || r.Load != nil || r.Errors["load"] == "" || r.Memory == nil {
		t.Fatalf("second sample: %s", b)
	}
	h := headline(r)
	hb, _ := json.Marshal(h)
	// Network totals leave lo out; wlan0 has no rate yet.
	check(t, "headline", string(hb), `{"time":"2026-12-06T06:00:10.500Z","rates":true,"cpu_percent":50,"memory_used_percent":50,"disk_busy_percent":23.81,"busiest_disk":"sda","network_rx_bytes_per_s":95238.1,"network_tx_bytes_per_s":47619.05}`)
}

// The collectors registered are the contract's.
func TestNamesAreTheContracts(t *testing.T) {
	if got, want := Names(), slices.Sorted(slices.Values(etcd.SysCollectors)); !slices.Equal(got, want) {
		t.Fatalf("collectors %v, contract %v", got, want)
	}
}

// TestCollectorErrorsAreLoggedOnce: a collector failing at every sample
// logs when it starts failing and when it works again, not at every
// sample; each record carries the error.
func TestCollectorErrorsAreLoggedOnce(t *testing.T) {
	p, _ := fixture(t)
	var logs strings.Builder
	a := New("web-1", p, nil, Hooks{}, slog.New(slog.NewTextHandler(&logs, nil)))
	a.limit = 10
	s := NewSampler("web-1", p, []string{"load"})
	loadavg := filepath.Join(p.Proc, "loadavg")
	saved, err := os.ReadFile(loadavg)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(loadavg)
	for i := range 3 {
		a.take(s, "t", t0.Add(time.Duration(i)*time.Second))
	}
	os.WriteFile(loadavg, saved, 0o644)
	a.take(s, "t", t0.Add(3*time.Second))
	if n := strings.Count(logs.String(), "sys collector failed"); n != 1 {
		t.Errorf("logged the failure %d times over 3 failing samples, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "sys collector works again") {
		t.Errorf("not logged when it works again:\n%s", logs.String())
	}
	for i, q := range a.queue[:3] {
		if !strings.Contains(string(q.value), `"errors":{"load":`) {
			t.Errorf("record %d lacks the error: %s", i, q.value)
		}
	}
}
