//go:build !linux

package taillog

import "time"

// fsNow is the time a file written now can carry as its mtime, at the
// earliest (see the Linux version): without the kernel's coarse clock, a
// tick's lag is allowed for.
func fsNow() time.Time { return time.Now().Add(-fsClockLag) }
