package taillog

import (
	"time"

	"golang.org/x/sys/unix"
)

// fsNow is the time a file written now can carry as its mtime, at the
// earliest: the kernel stamps files from its coarse clock, which lags
// time.Now by up to a clock tick (10 ms at HZ=100). A file written after
// fsNow was read never has an mtime before it.
func fsNow() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &ts); err != nil {
		return time.Now().Add(-fsClockLag)
	}
	return time.Unix(ts.Unix())
}
