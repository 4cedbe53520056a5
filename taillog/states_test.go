package taillog

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// States has each tailer's state and error, sorted by path, as Status
// has them.
func TestStatesAreStatusWithoutCounters(t *testing.T) {
	f := newFixture(t, testOpts())
	p := func(name string) string { return filepath.Join(f.dir, name) }
	if err := os.Mkdir(p("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, p("c.log"), "")
	// Given out of order: the manager keeps its tailers in a map.
	f.m.Reconcile([]Entry{{Path: p("e.log"), Topic: "te"}, {Path: p("d"), Topic: "td"},
		{Path: p("c.log"), Topic: "tc"}, {Path: p("b.log"), Topic: "tb"}, {Path: p("a.log"), Topic: "ta"}})
	want := []FileState{
		{Path: p("a.log"), Topic: "ta", State: StateWaiting},
		{Path: p("b.log"), Topic: "tb", State: StateWaiting},
		{Path: p("c.log"), Topic: "tc", State: StateRunning},
		{Path: p("d"), Topic: "td", State: StateError, LastError: p("d") + " is a directory, not a regular file"},
		{Path: p("e.log"), Topic: "te", State: StateWaiting},
	}
	deadline := time.Now().Add(10 * time.Second)
	for got := f.m.States(); !reflect.DeepEqual(got, want); got = f.m.States() {
		if time.Now().After(deadline) {
			t.Fatalf("States() = %+v,\nwant %+v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Settled: Status says the same, besides its counters.
	var fromStatus []FileState
	for _, s := range f.m.Status() {
		fromStatus = append(fromStatus, s.FileState())
	}
	if got := f.m.States(); !reflect.DeepEqual(got, fromStatus) {
		t.Fatalf("States() = %+v, Status() has %+v", got, fromStatus)
	}
}
