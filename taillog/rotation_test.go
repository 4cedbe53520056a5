package taillog

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Rotation discovery works on a directory listing alone, without a
// tailer: which files are rotations of a path, which of them were missed
// (oldest first), and which entry is a given file.
func TestRotationDiscoveryOverAListing(t *testing.T) {
	dir := t.TempDir()
	base := "app.log"
	t0 := time.Now().Add(-time.Hour)
	// name → minutes after t0 it was last written (-1: a directory).
	files := map[string]int{
		"app.log":          50, // the path itself
		"app.log.1":        40,
		"app.log.2":        30,
		"app.log-20250101": 10,
		"app-20250102.log": 20,
		"app.log.3.gz":     5,  // compressed: never read
		"app-audit.log":    5,  // a sibling, not a rotation
		"other.log.1":      5,  // another path's rotation
		"app.log.4":        -1, // not a regular file
	}
	for name, min := range files {
		p := filepath.Join(dir, name)
		if min < 0 {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		write(t, p, name+"\n")
		at := t0.Add(time.Duration(min) * time.Minute)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := func(rs []rotatedFile) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.name)
		}
		return out
	}

	rotated := rotatedFiles(dir, base, ents)
	// In the listing's order (os.ReadDir sorts by name).
	if got, want := names(rotated), []string{"app-20250102.log", "app.log-20250101", "app.log.1", "app.log.2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("rotatedFiles = %q, want %q", got, want)
	}

	// Written since t0+15m, and app.log.2 already known: the others,
	// oldest first.
	idOf := func(name string) FileID {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return fileID(fi)
	}
	known := idOf("app.log.2")
	missed := missedRotations(rotated, t0.Add(15*time.Minute), func(id FileID) bool { return id == known })
	if got, want := names(missed), []string{"app-20250102.log", "app.log.1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("missedRotations = %q, want %q", got, want)
	}

	name, fi, ok := fileByID(dir, ents, idOf("app.log-20250101"), nil)
	if !ok || name != filepath.Join(dir, "app.log-20250101") || fileID(fi) != idOf("app.log-20250101") {
		t.Fatalf("fileByID = %q, %v, want app.log-20250101", name, ok)
	}
	// Among rotations only, the path itself is not found.
	rotation := func(n string) bool { return rotatedName(n, base) }
	if name, _, ok := fileByID(dir, ents, idOf("app.log"), rotation); ok {
		t.Fatalf("fileByID among rotations found %q, the path itself", name)
	}
}
