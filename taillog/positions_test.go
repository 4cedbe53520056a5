package taillog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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
	p.SetCurrent("/a", FilePos{FileID{1, 2}, 30})
	p.SetRotated("/a", FilePos{FileID{1, 3}, 7})
	p.SetCurrent("/b", FilePos{FileID{1, 4}, 0})
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	q, err := LoadPositions(path, discard())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := q.Get("/a")
	if a.Current != (FilePos{FileID{1, 2}, 30}) || len(a.Rotated) != 1 || a.Rotated[0].Offset != 7 {
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
		p.SetCurrent("/a", FilePos{FileID{1, 2}, 3})
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
	p.SetCurrent("/a", FilePos{FileID{1, 2}, 3})
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
	p.SetCurrent("/a", FilePos{FileID{1, 2}, 42})
	cancel()
	<-done
	q, _ := LoadPositions(path, discard())
	if a, _ := q.Get("/a"); a.Current.Offset != 42 {
		t.Fatalf("offset after stop = %d", a.Current.Offset)
	}
}
