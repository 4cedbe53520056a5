package sysagent

import "github.com/logagent/logagent/fleet"

// Headline is a sample's few figures that tell a host's load at a glance
// (the status key, /metrics): the status document's.
type Headline = fleet.SysHeadline

// headline picks r's headline figures.
func headline(r *Record) *Headline {
	h := &Headline{Time: r.Time, Rates: r.Rates}
	if r.CPU != nil {
		h.CPU = r.CPU.Used
	}
	if r.Load != nil {
		l := r.Load.Load1
		h.Load1 = &l
	}
	if r.Memory != nil {
		h.MemoryUsed = r.Memory.UsedPct
	}
	for _, d := range r.Disk {
		if d.Busy != nil && (h.DiskBusy == nil || *d.Busy > *h.DiskBusy) {
			h.DiskBusy, h.BusiestDisk = d.Busy, d.Device
		}
	}
	var rx, tx float64
	var seen bool
	for _, n := range r.Network {
		if n.Interface == "lo" || n.RxBytes == nil || n.TxBytes == nil {
			continue
		}
		rx += *n.RxBytes
		tx += *n.TxBytes
		seen = true
	}
	if seen {
		h.NetworkRx, h.NetworkTx = round2(rx), round2(tx)
	}
	return h
}
