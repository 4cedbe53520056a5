package sysagent

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/prometheus/procfs/blockdevice"
)

func init() { register("disk", newDisk) }

// sectorBytes is the unit of /proc/diskstats' sector counts, whatever the
// device's own sector size.
const sectorBytes = 512

// skipDisk matches the block devices that are not disks: loop devices,
// RAM disks (ram, zram) and floppies.
var skipDisk = regexp.MustCompile(`^(loop|ram|zram|fd)\d+$`)

// diskCollector reads /proc/diskstats for the whole disks /sys/block
// lists. Partitions are left out (/sys/block has none): a disk's figures
// hold its partitions', and a partition's own would count its I/O twice.
type diskCollector struct {
	fs   blockdevice.FS
	prev map[string]blockdevice.IOStats
}

func newDisk(p Paths) (Collector, error) {
	fs, err := blockdevice.NewFS(p.Proc, p.Sys)
	if err != nil {
		return nil, err
	}
	return &diskCollector{fs: fs}, nil
}

func (c *diskCollector) Update(r *Record, now, prev time.Time) error {
	devs, err := c.fs.SysBlockDevices()
	if err != nil {
		return fmt.Errorf("list block devices: %w", err)
	}
	stats, err := c.fs.ProcDiskstats()
	if err != nil {
		return fmt.Errorf("read diskstats: %w", err)
	}
	secs := elapsed(now, prev)
	cur := make(map[string]blockdevice.IOStats, len(devs))
	r.Disk = []Disk{}
	for _, s := range stats {
		name := s.DeviceName
		if skipDisk.MatchString(name) || !slices.Contains(devs, name) {
			continue
		}
		cur[name] = s.IOStats
		d := Disk{Device: name}
		if p, ok := c.prev[name]; ok && secs > 0 {
			d.ReadBytes = rate(s.ReadSectors*sectorBytes, p.ReadSectors*sectorBytes, secs)
			d.WriteBytes = rate(s.WriteSectors*sectorBytes, p.WriteSectors*sectorBytes, secs)
			d.Reads = rate(s.ReadIOs, p.ReadIOs, secs)
			d.Writes = rate(s.WriteIOs, p.WriteIOs, secs)
			// io_ticks counts milliseconds with an I/O in flight.
			if s.IOsTotalTicks >= p.IOsTotalTicks {
				d.Busy = round2(min(100, float64(s.IOsTotalTicks-p.IOsTotalTicks)/(secs*1000)*100))
			}
		}
		r.Disk = append(r.Disk, d)
	}
	c.prev = cur
	return nil
}
