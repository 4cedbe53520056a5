package taillog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPositionsFlushAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "positions.json")
	p, err := LoadPositions(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("an unchanged store was written")
	}
	p.SetCurrent("/a", FilePos{FileID: FileID{1, 2}, Offset: 30, Gen: 9})
	p.SetRotated("/a", FilePos{FileID: FileID{1, 3}, Offset: 7, Gen: 9})
	p.SetCurrent("/b", FilePos{FileID: FileID{1, 4}, Offset: 0, Gen: 9})
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	q, err := LoadPositions(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := q.Get("/a")
	if a.Current != (FilePos{FileID: FileID{1, 2}, Offset: 30, Gen: 9}) || len(a.Rotated) != 1 || a.Rotated[0].Offset != 7 {
		t.Fatalf("reloaded /a = %+v", a)
	}
	if _, ok := q.Get("/b"); !ok {
		t.Fatal("/b lost")
	}
	// Only the final file is left behind: no temporary files.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d files", len(ents))
	}
	q.DropRotated("/a", FileID{1, 3})
	if a, _ := q.Get("/a"); len(a.Rotated) != 0 {
		t.Fatal("rotated entry not dropped")
	}
}

// Every path comes back under the same bytes: the hand-written encoder
// quotes what JSON must quote. (Paths come from the JSON collect config, so
// they are valid UTF-8.)
func TestPositionsOddPathsRoundTrip(t *testing.T) {
	paths := []string{
		"",
		`/var/log/"quoted".log`,
		`C:\logs\app.log`,
		"/var/log/new\nline.log",
		"/var/log/ctl\x00\x01\t\x1f\x7f.log",
		"/var/log/<html>&amp;.log",
		"/var/log/sep\u2028\u2029.log",
		"/var/log/日本語 é.log",
		"/var/log/\uFFFD.log",
	}
	path := filepath.Join(t.TempDir(), "positions.json")
	p, _ := LoadPositions(path, discard())
	for i, name := range paths {
		p.SetCurrent(name, FilePos{FileID: FileID{1, uint64(i)}, Offset: int64(100 + i), Gen: 9})
		p.SetRotated(name, FilePos{FileID: FileID{2, uint64(i)}, Offset: int64(200 + i), Gen: 9})
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	q, err := LoadPositions(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range paths {
		want := PathPos{FilePos{FileID: FileID{1, uint64(i)}, Offset: int64(100 + i), Gen: 9}, []FilePos{{FileID: FileID{2, uint64(i)}, Offset: int64(200 + i), Gen: 9}}}
		if got, ok := q.Get(name); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: reloaded %+v (found %v), want %+v", name, got, ok, want)
		}
	}
	if len(q.entries) != len(paths) {
		t.Errorf("reloaded %d paths, want %d", len(q.entries), len(paths))
	}
}

// Flush writes by hand what encoding/json would write for the same
// positions (a field added to PathPos or FilePos and not to appendFile
// fails here), and successive flushes through the reused buffer each save
// the positions of their moment: many paths, several rotated files, the
// extreme values, then fewer rotated files and smaller numbers.
func TestPositionsManyEntriesRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions.json")
	p, _ := LoadPositions(path, discard())
	want := map[string]*PathPos{}
	for k := 0; k < 1500; k++ {
		name := fmt.Sprintf("/var/log/app-%d/x.log", k)
		pos := &PathPos{Current: FilePos{FileID: FileID{uint64(k) * 7, math.MaxUint64 - uint64(k)}, Offset: math.MaxInt64 - int64(k), Gen: GenID(math.MaxUint64 - uint64(k))}}
		for r := 0; r < k%4; r++ {
			pos.Rotated = append(pos.Rotated, FilePos{FileID: FileID{uint64(r), uint64(k)}, Offset: int64(r * k), Gen: GenID(r + 1)})
		}
		want[name] = pos
		p.SetCurrent(name, pos.Current)
		for _, r := range pos.Rotated {
			p.SetRotated(name, r)
		}
	}
	check := func() {
		t.Helper()
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		exp, _ := json.Marshal(positionsFile{Version: 1, Files: want})
		var got bytes.Buffer
		if err := json.Compact(&got, data); err != nil {
			t.Fatalf("saved file is not JSON: %v", err)
		}
		if !bytes.Equal(got.Bytes(), exp) {
			t.Fatalf("saved file differs from encoding/json's:\n%.300s\nwant\n%.300s", got.Bytes(), exp)
		}
		q, err := LoadPositions(path, discard())
		if err != nil {
			t.Fatal(err)
		}
		for name, pos := range want {
			if got, ok := q.Get(name); !ok || !reflect.DeepEqual(&got, pos) {
				t.Fatalf("%s: reloaded %+v, want %+v", name, got, *pos)
			}
		}
	}
	check()
	for name, pos := range want {
		for _, r := range pos.Rotated {
			p.DropRotated(name, r.FileID)
		}
		pos.Rotated = nil
		pos.Current = FilePos{FileID: FileID{1, 2}, Offset: 3, Gen: 0x10}
		p.SetCurrent(name, pos.Current)
	}
	check()
}

// Concurrent flushes and updates (the race detector watches the reused
// buffer); the last flush saves the last positions.
func TestPositionsConcurrentFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions.json")
	p, _ := LoadPositions(path, discard())
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= 50; i++ {
				p.SetCurrent(fmt.Sprintf("/g%d", g), FilePos{FileID: FileID{1, uint64(g)}, Offset: int64(i), Gen: 9})
				if err := p.Flush(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	q, err := LoadPositions(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	for g := 0; g < 4; g++ {
		if pos, _ := q.Get(fmt.Sprintf("/g%d", g)); pos.Current.Offset != 50 {
			t.Errorf("/g%d saved at %d, want 50", g, pos.Current.Offset)
		}
	}
}

// A file written by earlier versions (indented by json.MarshalIndent, and
// without file ids) loads; its files get ids, saved at once, so that a
// restart before the next flush finds the same ones.
func TestPositionsLoadsIndentedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions.json")
	os.WriteFile(path, []byte(`{
 "version": 1,
 "files": {
  "/a": {
   "current": {
    "dev": 1,
    "ino": 2,
    "offset": 30
   },
   "rotated": [
    {
     "dev": 1,
     "ino": 3,
     "offset": 7
    }
   ]
  }
 }
}`), 0o644)
	p, err := LoadPositions(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := p.Get("/a")
	if got.Current.Gen == 0 || len(got.Rotated) != 1 || got.Rotated[0].Gen == 0 || got.Current.Gen == got.Rotated[0].Gen {
		t.Fatalf("loaded %+v: want a distinct file id for each file", got)
	}
	want := PathPos{FilePos{FileID: FileID{1, 2}, Offset: 30, Gen: got.Current.Gen}, []FilePos{{FileID: FileID{1, 3}, Offset: 7, Gen: got.Rotated[0].Gen}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded %+v, want %+v", got, want)
	}
	// Saved by the load itself, not only at the next flush.
	q, err := LoadPositions(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := q.Get("/a"); !reflect.DeepEqual(again, want) {
		t.Fatalf("loaded again %+v, want %+v", again, want)
	}
}

func TestPositionsCorruptFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions.json")
	os.WriteFile(path, []byte(`{"files": {`), 0o644)
	if _, err := LoadPositions(path, discard()); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

// A failed save keeps the old file intact, is retried, and succeeds once
// the directory is writable again.
func TestPositionsFlushFailureIsRetried(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores directory permissions; use a path whose parent is a file.
		dir := t.TempDir()
		blocker := filepath.Join(dir, "d")
		p, err := LoadPositions(filepath.Join(blocker, "positions.json"), discard())
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(blocker, nil, 0o644)
		p.SetCurrent("/a", FilePos{FileID: FileID{1, 2}, Offset: 3, Gen: 9})
		if err := p.Flush(); err == nil {
			t.Fatal("flush into a non-directory succeeded")
		}
		os.Remove(blocker)
		os.Mkdir(blocker, 0o755)
		if err := p.Flush(); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if _, err := LoadPositions(filepath.Join(blocker, "positions.json"), discard()); err != nil {
			t.Fatal(err)
		}
		return
	}
	dir := t.TempDir()
	p, _ := LoadPositions(filepath.Join(dir, "positions.json"), discard())
	p.SetCurrent("/a", FilePos{FileID: FileID{1, 2}, Offset: 3, Gen: 9})
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if err := p.Flush(); err == nil {
		t.Fatal("flush into a read-only directory succeeded")
	}
	os.Chmod(dir, 0o700)
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestPositionsRunFlushesOnStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions.json")
	p, _ := LoadPositions(path, discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, time.Hour); close(done) }()
	p.SetCurrent("/a", FilePos{FileID: FileID{1, 2}, Offset: 42, Gen: 9})
	cancel()
	<-done
	q, _ := LoadPositions(path, discard())
	if a, _ := q.Get("/a"); a.Current.Offset != 42 {
		t.Fatalf("offset after stop = %d", a.Current.Offset)
	}
}

// Encoding a thousand positions, flushed every second, allocates nothing
// once the paths are known (copying them into a map for json.MarshalIndent
// was 2,112 allocations and about 1 ms a flush).
func TestPositionsEncodeAllocatesNothing(t *testing.T) {
	p, _ := LoadPositions(filepath.Join(t.TempDir(), "positions.json"), discard())
	for i := range 1000 {
		p.SetCurrent(fmt.Sprintf("/var/log/app-%04d.log", i), FilePos{FileID: FileID{1, uint64(i)}, Offset: int64(i) * 100, Gen: 9})
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	buf := p.buf
	allocs := testing.AllocsPerRun(20, func() {
		p.mu.Lock()
		buf = p.appendFile(buf[:0])
		p.mu.Unlock()
	})
	if allocs != 0 {
		t.Fatalf("encoding 1,000 positions cost %.0f allocations, want 0", allocs)
	}
	if !json.Valid(buf) {
		t.Fatalf("not JSON: %.200s", buf)
	}
}

// Sync returns once what was set before it is on disk, also while other
// positions change all the time (acks) and other callers sync at once.
func TestPositionsSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions.json")
	p, _ := LoadPositions(path, discard())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p.SetCurrent("/busy", FilePos{FileID: FileID{1, 1}, Offset: i, Gen: 1})
		}
	}()
	var syncs sync.WaitGroup
	for g := 0; g < 4; g++ {
		syncs.Add(1)
		go func() {
			defer syncs.Done()
			for i := 1; i <= 20; i++ {
				name := fmt.Sprintf("/g%d", g)
				p.SetCurrent(name, FilePos{FileID: FileID{2, uint64(g)}, Offset: 0, Gen: GenID(i)})
				if err := p.Sync(); err != nil {
					t.Error(err)
					return
				}
				q, err := LoadPositions(path, discard())
				if err != nil {
					t.Error(err)
					return
				}
				if got, _ := q.Get(name); got.Current.Gen != GenID(i) {
					t.Errorf("%s: saved file id %d after Sync, want %d", name, got.Current.Gen, i)
					return
				}
			}
		}()
	}
	syncs.Wait()
	close(stop)
	wg.Wait()
}
