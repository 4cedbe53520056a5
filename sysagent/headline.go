package sysagent

// Headline is a sample's few figures that tell a host's load at a glance
// (the status key, /metrics). A figure is absent when its collector is
// off, failed, or has no rate yet.
type Headline struct {
	Time        string   `json:"time"`
	Rates       bool     `json:"rates"` // false: the first sample, no rate figures yet
	CPU         *float64 `json:"cpu_percent,omitempty"`
	Load1       *float64 `json:"load1,omitempty"`
	MemoryUsed  *float64 `json:"memory_used_percent,omitempty"`
	DiskBusy    *float64 `json:"disk_busy_percent,omitempty"` // the busiest disk's
	BusiestDisk string   `json:"busiest_disk,omitempty"`
	// Network totals over every interface but loopback.
	NetworkRx *float64 `json:"network_rx_bytes_per_s,omitempty"`
	NetworkTx *float64 `json:"network_tx_bytes_per_s,omitempty"`
}

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
