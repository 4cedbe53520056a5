package sysagent

import "time"

// SchemaVersion is the record's "schema": it changes only when a field
// changes meaning or goes away (new fields keep it).
const SchemaVersion = 1

// TimeFormat is the record's time: RFC 3339 with milliseconds, UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Record is one sample of the host, sent as one JSON Kafka record. Rate
// fields are pointers: absent, not zero, when there is no earlier reading
// to compute them from (Rates false: the first sample after the Sys Agent
// starts or a collector is added), or for a device that was not there in
// the earlier reading.
type Record struct {
	Schema int    `json:"schema"`
	Host   string `json:"host"`
	Time   string `json:"time"`
	// Seq numbers the samples since the agent started, from 1: a gap is
	// samples dropped while Kafka was down longer than the buffer holds.
	Seq uint64 `json:"seq"`
	// Rates says whether the sample carries rates: false for the first
	// sample, whose counters have nothing to be compared with.
	Rates bool `json:"rates"`
	// RateSeconds is the time between the two readings the rates come from.
	RateSeconds *float64     `json:"rate_seconds,omitempty"`
	CPU         *CPU         `json:"cpu,omitempty"`
	Load        *Load        `json:"load,omitempty"`
	Memory      *Memory      `json:"memory,omitempty"`
	Disk        []Disk       `json:"disk,omitempty"`
	Filesystem  []Filesystem `json:"filesystem,omitempty"`
	Network     []Network    `json:"network,omitempty"`
	// Errors holds, by collector name, why a collector gave nothing this
	// time; the other collectors' parts stand.
	Errors map[string]string `json:"errors,omitempty"`
}

// CPU is the utilisation of all CPUs together over the interval, in % of
// their total time (100 = every CPU busy).
type CPU struct {
	CPUs   int      `json:"cpus"`
	Used   *float64 `json:"used_percent,omitempty"` // everything but idle and iowait
	User   *float64 `json:"user_percent,omitempty"` // user + nice
	System *float64 `json:"system_percent,omitempty"`
	IOWait *float64 `json:"iowait_percent,omitempty"`
	Steal  *float64 `json:"steal_percent,omitempty"`
	IRQ    *float64 `json:"irq_percent,omitempty"` // irq + softirq
	Idle   *float64 `json:"idle_percent,omitempty"`
}

// Load is the kernel's load average.
type Load struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}

// Memory is in bytes. Used is total − available: what the kernel cannot
// give to a new program without swapping.
type Memory struct {
	Total     uint64   `json:"total_bytes"`
	Available uint64   `json:"available_bytes"`
	Used      uint64   `json:"used_bytes"`
	UsedPct   *float64 `json:"used_percent,omitempty"`
	Cached    uint64   `json:"cached_bytes"`
	Buffers   uint64   `json:"buffers_bytes"`
	SwapTotal uint64   `json:"swap_total_bytes"`
	SwapUsed  uint64   `json:"swap_used_bytes"`
}

// Disk is one whole block device's activity over the interval.
type Disk struct {
	Device     string   `json:"device"`
	ReadBytes  *float64 `json:"read_bytes_per_s,omitempty"`
	WriteBytes *float64 `json:"write_bytes_per_s,omitempty"`
	Reads      *float64 `json:"reads_per_s,omitempty"`
	Writes     *float64 `json:"writes_per_s,omitempty"`
	Busy       *float64 `json:"busy_percent,omitempty"` // time with at least one I/O in flight
}

// Filesystem is one mounted local file system, in bytes.
type Filesystem struct {
	MountPoint string   `json:"mountpoint"`
	Device     string   `json:"device"`
	Type       string   `json:"type"`
	Size       uint64   `json:"size_bytes"`
	Used       uint64   `json:"used_bytes"`
	Free       uint64   `json:"free_bytes"` // available to unprivileged users
	UsedPct    *float64 `json:"used_percent,omitempty"`
	InodesPct  *float64 `json:"inodes_used_percent,omitempty"` // absent when the file system has no inode count (btrfs)
}

// Network is one interface's traffic over the interval.
type Network struct {
	Interface string   `json:"interface"`
	RxBytes   *float64 `json:"rx_bytes_per_s,omitempty"`
	TxBytes   *float64 `json:"tx_bytes_per_s,omitempty"`
	RxPackets *float64 `json:"rx_packets_per_s,omitempty"`
	TxPackets *float64 `json:"tx_packets_per_s,omitempty"`
	RxErrors  *float64 `json:"rx_errors_per_s,omitempty"`
	TxErrors  *float64 `json:"tx_errors_per_s,omitempty"`
	RxDrops   *float64 `json:"rx_drops_per_s,omitempty"`
	TxDrops   *float64 `json:"tx_drops_per_s,omitempty"`
}

// formatTime is t as the record carries it.
func formatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }
