package taillog

import (
	"os"
	"path/filepath"
	"testing"
)

// A generation created right after the previous one was opened must not
// look older than that open (adoptMissed skips files written before it):
// time.Now runs ahead of the clock the kernel stamps files with, by up to a
// tick, which lost whole rotated generations (TestGlobRotatedCopiesReadOnce,
// about one run in ten).
func TestFsNowIsNotAfterTheMtimeOfAFileWrittenLater(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	for i := range 2000 {
		opened := fsNow()
		if err := os.WriteFile(name, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.ModTime().Before(opened) {
			t.Fatalf("write %d: mtime %s is before the open %s, taken earlier (by %s)",
				i, fi.ModTime().Format("15:04:05.000000000"), opened.Format("15:04:05.000000000"), opened.Sub(fi.ModTime()))
		}
	}
}
