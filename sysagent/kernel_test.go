package sysagent

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests read the real kernel under a load they make themselves, and
// check the collectors' figures against what that load must add to the
// kernel's counters. Other processes load the machine too, so each
// figure is checked as at least the test's own share.

// reading is one collector reading of the real kernel.
func reading(t *testing.T, c Collector, now, prev time.Time) *Record {
	t.Helper()
	var r Record
	if err := c.Update(&r, now, prev); err != nil {
		t.Fatal(err)
	}
	return &r
}

func collector(t *testing.T, name string) Collector {
	t.Helper()
	c, err := NewCollector(name, DefaultPaths)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cpuSeconds(t *testing.T) (user, total float64) {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	u := time.Duration(ru.Utime.Nano()).Seconds()
	return u, u + time.Duration(ru.Stime.Nano()).Seconds()
}

// TestCPUUnderLoad: a burner on every CPU for a second; the CPU time the
// collector reports busy (and in user mode) over that second holds at
// least the test process's own.
func TestCPUUnderLoad(t *testing.T) {
	c := collector(t, "cpu")
	start := time.Now()
	reading(t, c, start, time.Time{})
	u0, c0 := cpuSeconds(t)
	var wg sync.WaitGroup
	stop := time.Now().Add(time.Second)
	for range runtime.NumCPU() {
		wg.Go(func() {
			x := 1
			for time.Now().Before(stop) {
				for i := range 100000 {
					x = x*31 + i
				}
			}
			_ = x
		})
	}
	wg.Wait()
	u1, c1 := cpuSeconds(t)
	end := time.Now()
	r := reading(t, c, end, start)
	secs := end.Sub(start).Seconds()
	if r.CPU.Used == nil || r.CPU.User == nil {
		t.Fatalf("no utilisation: %+v", r.CPU)
	}
	busy := *r.CPU.Used / 100 * float64(r.CPU.CPUs) * secs
	user := *r.CPU.User / 100 * float64(r.CPU.CPUs) * secs
	t.Logf("over %.2fs: used %.1f%% of %d CPUs = %.2f CPU-s busy (%.2f user); this process used %.2f (%.2f user)",
		secs, *r.CPU.Used, r.CPU.CPUs, busy, user, c1-c0, u1-u0)
	// Tick-based counters on both sides: a tenth of slack.
	if busy < 0.9*(c1-c0) || user < 0.9*(u1-u0) {
		t.Fatalf("reported %.2f CPU-s busy, %.2f user; the burner alone used %.2f, %.2f user", busy, user, c1-c0, u1-u0)
	}
	if r.CPU.CPUs != runtime.NumCPU() && runtime.NumCPU() < r.CPU.CPUs {
		t.Fatalf("cpus %d, Go sees %d", r.CPU.CPUs, runtime.NumCPU())
	}
}

// diskOf returns the whole disk holding dir, as /sys/block names it.
func diskOf(t *testing.T, dir string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	link, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		t.Skipf("%s is not on a block device (%v)", dir, err)
	}
	if _, err := os.Stat(filepath.Join(link, "partition")); err == nil {
		link = filepath.Dir(link)
	}
	return filepath.Base(link)
}

// TestDiskUnderLoad: 200 MB written and fsynced to a file raise the write
// rate of the disk holding it by at least that much over the interval.
func TestDiskUnderLoad(t *testing.T) {
	dir := t.TempDir()
	disk := diskOf(t, dir)
	c := collector(t, "disk")
	start := time.Now()
	reading(t, c, start, time.Time{})
	const total, chunk = 200 << 20, 4 << 20
	f, err := os.Create(filepath.Join(dir, "load"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Not zeros: a virtual disk may store zeros without writing them.
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(rand.Uint32())
	}
	for n := 0; n < total; n += chunk {
		buf[0]++
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	r := reading(t, c, end, start)
	secs := end.Sub(start).Seconds()
	for _, d := range r.Disk {
		if d.Device != disk {
			continue
		}
		if d.WriteBytes == nil || d.Writes == nil || d.Busy == nil {
			t.Fatalf("%s has no rates: %+v", disk, d)
		}
		written := *d.WriteBytes * secs
		t.Logf("%s over %.2fs: %.0f bytes written (%.0f/s, %.0f writes/s, busy %.1f%%); the test wrote %d",
			disk, secs, written, *d.WriteBytes, *d.Writes, *d.Busy, total)
		// round2 and the clock between the readings: 1% of slack.
		if written < 0.99*total || *d.Writes <= 0 || *d.Busy <= 0 {
			t.Fatalf("%s: %.0f bytes written, want at least %d", disk, written, total)
		}
		return
	}
	t.Fatalf("disk %s (holding %s) is not in %+v", disk, dir, r.Disk)
}

// TestNetworkUnderLoad: 20 MB sent over a loopback TCP connection raise
// lo's received and sent bytes by at least that much.
func TestNetworkUnderLoad(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := collector(t, "network")
	start := time.Now()
	reading(t, c, start, time.Time{})
	const total = 20 << 20
	got := make(chan int64, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer conn.Close()
		n, _ := io.Copy(io.Discard, conn)
		got <- n
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(conn, io.LimitReader(zeros{}, total)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if n := <-got; n != total {
		t.Fatalf("received %d bytes, sent %d", n, total)
	}
	end := time.Now()
	r := reading(t, c, end, start)
	secs := end.Sub(start).Seconds()
	for _, n := range r.Network {
		if n.Interface != "lo" {
			continue
		}
		rx, tx := *n.RxBytes*secs, *n.TxBytes*secs
		t.Logf("lo over %.2fs: %.0f bytes received, %.0f sent, %.0f packets/s; the test sent %d", secs, rx, tx, *n.RxPackets, total)
		if rx < 0.99*total || tx < 0.99*total || *n.RxPackets <= 0 || *n.TxPackets <= 0 {
			t.Fatalf("lo: %.0f received, %.0f sent; want at least %d each", rx, tx, total)
		}
		return
	}
	t.Fatalf("no lo in %+v", r.Network)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestMemoryAndLoadAndFilesystemOfTheKernel: memory total is the kernel's
// (sysinfo), the file system of the test's directory is listed with the
// size statfs gives, and the load averages are the kernel's format.
func TestMemoryAndLoadAndFilesystemOfTheKernel(t *testing.T) {
	now := time.Now()
	r := reading(t, collector(t, "memory"), now, time.Time{})
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	if want := uint64(si.Totalram) * uint64(si.Unit); r.Memory.Total != want || r.Memory.Used == 0 || r.Memory.Used > r.Memory.Total {
		t.Fatalf("memory %+v; sysinfo total %d", r.Memory, want)
	}
	r = reading(t, collector(t, "load"), now, time.Time{})
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	if r.Load == nil || r.Load.Load1 < 0 || !strings.Contains(string(b), " ") {
		t.Fatalf("load %+v, /proc/loadavg %q", r.Load, b)
	}

	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	r = reading(t, collector(t, "filesystem"), now, time.Time{})
	for _, f := range r.Filesystem {
		var fst unix.Statfs_t
		if unix.Statfs(f.MountPoint, &fst) == nil && fst.Fsid == st.Fsid {
			if want := st.Blocks * uint64(st.Frsize); f.Size != want {
				t.Fatalf("%s: size %d, statfs says %d", f.MountPoint, f.Size, want)
			}
			t.Logf("%s holds %s: %+v", f.MountPoint, dir, f)
			return
		}
	}
	t.Skipf("the file system of %s is not a local one the collector lists: %+v", dir, r.Filesystem)
}
