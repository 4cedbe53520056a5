package sysagent

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

func init() {
	registerProc("cpu", func(fs procfs.FS) Collector { return &cpuCollector{fs: fs} })
}

// cpuCollector reads the CPU times of /proc/stat.
type cpuCollector struct {
	fs   procfs.FS
	prev procfs.CPUStat
}

func (c *cpuCollector) Update(r *Record, now, prev time.Time) error {
	st, err := c.fs.Stat()
	if err != nil {
		return fmt.Errorf("read stat: %w", err)
	}
	cur := st.CPUTotal
	r.CPU = &CPU{CPUs: len(st.CPU)}
	if !prev.IsZero() {
		// Shares of the time that passed on all CPUs together, as the
		// kernel counted it (guest time is inside user and nice already).
		d := func(f func(procfs.CPUStat) float64) float64 { return max(f(cur)-f(c.prev), 0) }
		user := d(func(s procfs.CPUStat) float64 { return s.User + s.Nice })
		system := d(func(s procfs.CPUStat) float64 { return s.System })
		irq := d(func(s procfs.CPUStat) float64 { return s.IRQ + s.SoftIRQ })
		idle := d(func(s procfs.CPUStat) float64 { return s.Idle })
		iowait := d(func(s procfs.CPUStat) float64 { return s.Iowait })
		steal := d(func(s procfs.CPUStat) float64 { return s.Steal })
		total := user + system + irq + idle + iowait + steal
		r.CPU.Used = percent(total-idle-iowait, total)
		r.CPU.User = percent(user, total)
		r.CPU.System = percent(system, total)
		r.CPU.IRQ = percent(irq, total)
		r.CPU.IOWait = percent(iowait, total)
		r.CPU.Steal = percent(steal, total)
		r.CPU.Idle = percent(idle, total)
	}
	c.prev = cur
	return nil
}
