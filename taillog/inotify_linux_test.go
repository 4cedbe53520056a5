package taillog

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The queue is read every 5 ms while few files are written (a busy file
// whose rate dips waits for it), every 25 ms once many are.
func TestNextPace(t *testing.T) {
	for _, c := range []struct {
		cur    time.Duration
		events int
		want   time.Duration
	}{
		{notifyPace, 1, notifyPace},
		{notifyPace, manyEvents - 1, notifyPace},
		{notifyPace, manyEvents, slowPace},
		{slowPace, 250, slowPace},
		{slowPace, fewEvents, slowPace}, // between the two: as it was
		{slowPace, fewEvents - 1, notifyPace},
	} {
		if got := nextPace(c.cur, c.events); got != c.want {
			t.Errorf("nextPace(%s, %d) = %s, want %s", c.cur, c.events, got, c.want)
		}
	}
}

// A write event is decoded and dispatched to its file's tailer without an
// allocation: a thousand files written ten times a second are ten
// thousand events a second (each cost a name string and a joined path).
func TestWriteEventCostsNoAllocation(t *testing.T) {
	// A path longer than 32 bytes: shorter temporaries live on the stack.
	const dir, wd = "/var/log/containers/web-7d9f8b6c5-x2k4z", 7
	in := &inotify{dirs: map[string]int32{dir: wd}, wds: map[int32]string{wd: dir}}
	wt := &watcher{dirs: map[string]map[*pacer]struct{}{}, names: map[string]map[string]*pacer{}}
	tl := newPacer(dir+"/web.log", 0, nil)
	wt.add(tl)

	// One IN_MODIFY event for web.log, its name NUL-padded as the kernel does.
	name := []byte("web.log\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	raw := make([]byte, eventSize+len(name))
	ev := (*unix.InotifyEvent)(unsafe.Pointer(&raw[0]))
	ev.Wd, ev.Mask, ev.Len = wd, unix.IN_MODIFY, uint32(len(name))
	copy(raw[eventSize:], name)

	evs := make([]fsEvent, 0, 4)
	allocs := testing.AllocsPerRun(200, func() {
		evs = in.decode(raw, evs[:0])
		for _, e := range evs {
			wt.dispatch(e, time.Now())
		}
	})
	if len(evs) != 1 || evs[0].path() != dir+"/web.log" || evs[0].pathChanged {
		t.Fatalf("decoded %+v, want one write to %s/web.log", evs, dir)
	}
	if tl.writes.Load() == 0 {
		t.Fatal("the write did not reach the file's tailer")
	}
	if allocs != 0 {
		t.Fatalf("a write event cost %.0f allocations, want 0", allocs)
	}
}

// inotify's descriptor is waited on with poll(2) only while run waits, not
// kept in Go's network poller: the poller watches its descriptors all the
// time, so each event queued while run paced itself woke a thread for
// nothing (1,000 files written at moments of their own: thousands of
// wake-ups a second, a quarter of the agent's CPU). Events still arrive,
// and close ends a run that waits.
func TestInotifyIsNotInGoPoller(t *testing.T) {
	in, err := newInotify()
	if err != nil {
		t.Skip("no inotify:", err)
	}
	dir := t.TempDir()
	if err := in.add(dir); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	ran := make(chan error, 1)
	go func() {
		ran <- in.run(make(chan struct{}), func(evs []fsEvent) {
			for _, ev := range evs {
				got <- ev.path()
			}
		})
	}()
	write(t, dir+"/a.log", "x\n")
	select {
	case p := <-got:
		if p != dir+"/a.log" {
			t.Fatalf("event for %s, want %s/a.log", p, dir)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for a write")
	}

	// Go's poller is one epoll instance: /proc lists what it watches.
	for _, fd := range epollWatched(t) {
		if fd == in.fd {
			t.Fatalf("inotify's descriptor %d is in Go's epoll set", fd)
		}
	}

	in.close()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not end run")
	}
}

// epollWatched lists the descriptors every epoll instance of the process
// watches (its "tfd:" lines in /proc/self/fdinfo); it fails the test if
// there is no epoll instance, so that the check above cannot pass blind.
func epollWatched(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	var fds []int
	instances := 0
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || target != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		instances++
		for _, line := range strings.Split(string(info), "\n") {
			var fd int
			if _, err := fmt.Sscanf(line, "tfd: %d", &fd); err == nil {
				fds = append(fds, fd)
			}
		}
	}
	if instances == 0 {
		t.Fatal("no epoll instance found")
	}
	return fds
}

// A directory watched for a glob alone is watched for its names, not its
// files' writes (#17: /var/log/journal under /var/log/** is written all the
// time, and every write would wake the agent); with a followed file in it,
// for the writes too, and for names only again once that file's tailer is
// gone.
func TestGlobDirectoryWatchedForNamesOnly(t *testing.T) {
	dir := t.TempDir()
	wt := newWatcher(testLogger(t))
	defer wt.close()
	if wt.w == nil {
		t.Skip("no inotify")
	}
	changed := make(chan string, 100)
	wt.mu.Lock()
	wt.dirChanged = func(d string) { changed <- d }
	wt.mu.Unlock()
	wt.watchScan(dir)
	if m := watchMask(t, wt.w, dir); m&unix.IN_MODIFY != 0 || m&unix.IN_CREATE == 0 {
		t.Errorf("a glob's directory is watched with mask %#x, want its names only", m)
	}
	fh, err := os.Create(dir + "/new.log")
	if err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if d := <-changed; d != dir {
		t.Fatalf("change reported for %s", d)
	}
	tl := newPacer(dir+"/new.log", 0, nil)
	wt.add(tl)
	if m := watchMask(t, wt.w, dir); m&unix.IN_MODIFY == 0 {
		t.Errorf("a followed file's directory is watched with mask %#x, without writes", m)
	}
	wt.remove(tl)
	if m := watchMask(t, wt.w, dir); m&unix.IN_MODIFY != 0 || m&unix.IN_CREATE == 0 {
		t.Errorf("once its tailer is gone, the glob's directory is watched with mask %#x", m)
	}
}

// watchMask is the mask the kernel holds for in's watch of dir (fdinfo).
func watchMask(t *testing.T, in *inotify, dir string) uint32 {
	t.Helper()
	in.mu.Lock()
	wd, ok := in.dirs[dir]
	in.mu.Unlock()
	if !ok {
		t.Fatalf("%s is not watched", dir)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", in.fd))
	if err != nil {
		t.Skip("no fdinfo:", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, fmt.Sprintf("inotify wd:%x ", wd)) {
			continue
		}
		for _, kv := range strings.Fields(l) {
			if m, ok := strings.CutPrefix(kv, "mask:"); ok {
				var mask uint32
				fmt.Sscanf(m, "%x", &mask)
				return mask
			}
		}
	}
	t.Fatalf("watch %d of %s not in fdinfo:\n%s", wd, dir, data)
	return 0
}
