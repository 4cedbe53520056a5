package sysagent

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

func init() { register("load", newLoad) }

// loadCollector reads /proc/loadavg.
type loadCollector struct{ fs procfs.FS }

func newLoad(p Paths) (Collector, error) {
	fs, err := procfs.NewFS(p.Proc)
	if err != nil {
		return nil, err
	}
	return &loadCollector{fs: fs}, nil
}

func (c *loadCollector) Update(r *Record, _, _ time.Time) error {
	l, err := c.fs.LoadAvg()
	if err != nil {
		return fmt.Errorf("read loadavg: %w", err)
	}
	r.Load = &Load{Load1: l.Load1, Load5: l.Load5, Load15: l.Load15}
	return nil
}
