// Package sysagent samples the host's CPU, load, memory, disks, file
// systems and network interfaces (the Sys Agent) and turns each sample into
// one JSON record. Every collector is a file of its own behind Collector,
// registered by name, as in node_exporter; each reads /proc and /sys
// through github.com/prometheus/procfs.
package sysagent

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/prometheus/procfs"
)

// Collector fills its part of a record from one reading of the kernel's
// counters. It keeps the previous reading to turn counters into rates:
// prev is zero on the collector's first call.
type Collector interface {
	Update(r *Record, now, prev time.Time) error
}

// Paths are where proc and sys are mounted ("/proc", "/sys" on a host; a
// captured tree in tests).
type Paths struct {
	Proc string
	Sys  string
}

// DefaultPaths are the host's.
var DefaultPaths = Paths{Proc: "/proc", Sys: "/sys"}

// factories holds every collector by name.
var factories = map[string]func(Paths) (Collector, error){}

func register(name string, f func(Paths) (Collector, error)) { factories[name] = f }

// registerProc registers a collector that reads /proc only.
func registerProc(name string, f func(procfs.FS) Collector) {
	register(name, func(p Paths) (Collector, error) {
		fs, err := procfs.NewFS(p.Proc)
		if err != nil {
			return nil, err
		}
		return f(fs), nil
	})
}

// Names returns the names of every collector, sorted.
func Names() []string { return slices.Sorted(maps.Keys(factories)) }

// NewCollector returns the collector called name.
func NewCollector(name string, p Paths) (Collector, error) {
	f, ok := factories[name]
	if !ok {
		return nil, fmt.Errorf("unknown collector %q (known: %v)", name, Names())
	}
	c, err := f(p)
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", name, err)
	}
	return c, nil
}

// rate is the per-second change of a counter between two readings; nil
// (absent in the record) when there is no earlier reading or the counter
// went back (a reset: a device re-created, a counter wrapped).
func rate(cur, prev uint64, secs float64) *float64 {
	if secs <= 0 || cur < prev {
		return nil
	}
	return round2(float64(cur-prev) / secs)
}

// percent is 100·part/whole, nil when whole is 0.
func percent(part, whole float64) *float64 {
	if whole <= 0 {
		return nil
	}
	return round2(100 * part / whole)
}

// round2 keeps two decimals: records stay short, no figure needs more.
func round2(v float64) *float64 {
	r := math.Round(v*100) / 100
	return &r
}

// elapsed is the seconds between two readings, 0 without an earlier one.
func elapsed(now, prev time.Time) float64 {
	if prev.IsZero() {
		return 0
	}
	return now.Sub(prev).Seconds()
}
