package sysagent

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

func init() {
	registerProc("memory", func(fs procfs.FS) Collector { return &memoryCollector{fs: fs} })
}

// memoryCollector reads /proc/meminfo.
type memoryCollector struct{ fs procfs.FS }

func (c *memoryCollector) Update(r *Record, _, _ time.Time) error {
	mi, err := c.fs.Meminfo()
	if err != nil {
		return fmt.Errorf("read meminfo: %w", err)
	}
	v := func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	}
	if mi.MemTotalBytes == nil {
		return errors.New("meminfo has no MemTotal")
	}
	m := &Memory{Total: v(mi.MemTotalBytes), Cached: v(mi.CachedBytes), Buffers: v(mi.BuffersBytes),
		SwapTotal: v(mi.SwapTotalBytes)}
	if mi.MemAvailableBytes != nil {
		m.Available = *mi.MemAvailableBytes
	} else {
		// Kernels before 3.14 have no MemAvailable: free + page cache is
		// the estimate tools used then.
		m.Available = v(mi.MemFreeBytes) + m.Buffers + m.Cached
	}
	m.Available = min(m.Available, m.Total)
	m.Used = m.Total - m.Available
	m.UsedPct = percent(float64(m.Used), float64(m.Total))
	if free := v(mi.SwapFreeBytes); free <= m.SwapTotal {
		m.SwapUsed = m.SwapTotal - free
	}
	r.Memory = m
	return nil
}
