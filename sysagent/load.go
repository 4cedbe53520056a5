package sysagent

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

func init() {
	registerProc("load", func(fs procfs.FS) Collector { return &loadCollector{fs: fs} })
}

// loadCollector reads /proc/loadavg.
type loadCollector struct{ fs procfs.FS }

func (c *loadCollector) Update(r *Record, _, _ time.Time) error {
	l, err := c.fs.LoadAvg()
	if err != nil {
		return fmt.Errorf("read loadavg: %w", err)
	}
	r.Load = &Load{Load1: l.Load1, Load5: l.Load5, Load15: l.Load15}
	return nil
}
