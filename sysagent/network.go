package sysagent

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

func init() {
	registerProc("network", func(fs procfs.FS) Collector { return &networkCollector{fs: fs} })
}

// networkCollector reads /proc/net/dev: every interface, loopback
// included (the headline's totals leave it out).
type networkCollector struct {
	fs   procfs.FS
	prev procfs.NetDev
}

func (c *networkCollector) Update(r *Record, now, prev time.Time) error {
	nd, err := c.fs.NetDev()
	if err != nil {
		return fmt.Errorf("read net/dev: %w", err)
	}
	secs := elapsed(now, prev)
	r.Network = make([]Network, 0, len(nd))
	for _, cur := range nd {
		n := Network{Interface: cur.Name}
		if p, ok := c.prev[cur.Name]; ok && secs > 0 {
			n.RxBytes = rate(cur.RxBytes, p.RxBytes, secs)
			n.TxBytes = rate(cur.TxBytes, p.TxBytes, secs)
			n.RxPackets = rate(cur.RxPackets, p.RxPackets, secs)
			n.TxPackets = rate(cur.TxPackets, p.TxPackets, secs)
			n.RxErrors = rate(cur.RxErrors, p.RxErrors, secs)
			n.TxErrors = rate(cur.TxErrors, p.TxErrors, secs)
			n.RxDrops = rate(cur.RxDropped, p.RxDropped, secs)
			n.TxDrops = rate(cur.TxDropped, p.TxDropped, secs)
		}
		r.Network = append(r.Network, n)
	}
	slices.SortFunc(r.Network, func(a, b Network) int { return strings.Compare(a.Interface, b.Interface) })
	c.prev = nd
	return nil
}
