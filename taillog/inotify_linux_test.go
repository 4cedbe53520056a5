package taillog

import (
	"testing"
	"time"
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
