// Package fleet holds the plain data the agent writes to etcd and the
// console reads: key names, the status document and the last_seen record.
// It does no I/O. The console imports it, never package agent; the agent's
// own types may move here later, and must keep encoding the same JSON.
package fleet

import (
	"strings"
	"time"
)

// Prefix is where every host's keys live: /logagent/<host>/<name>.
const Prefix = "/logagent/"

// AuditPrefix holds the console's change trail: not a host.
const AuditPrefix = Prefix + "_audit/"

// Key names under a host.
const (
	KeyCollectConfig = "collect_config"
	KeyStatus        = "status"
	KeyLastSeen      = "last_seen"
)

// ConfigKey is the etcd key holding host's collect config.
func ConfigKey(host string) string { return Prefix + host + "/" + KeyCollectConfig }

// StatusKey is where host's agent publishes its status, under a lease.
func StatusKey(host string) string { return Prefix + host + "/" + KeyStatus }

// LastSeenKey is where host's agent records, without a lease, when it was
// last seen running and whether it stopped cleanly.
func LastSeenKey(host string) string { return Prefix + host + "/" + KeyLastSeen }

// SplitKey splits /logagent/<host>/<name> into host and name. ok is false
// for any other key, and for names starting with '_' (the console's own,
// e.g. /logagent/_audit/...), which no agent's host can have.
func SplitKey(key string) (host, name string, ok bool) {
	rest, found := strings.CutPrefix(key, Prefix)
	if !found {
		return "", "", false
	}
	host, name, found = strings.Cut(rest, "/")
	if !found || host == "" || name == "" || strings.HasPrefix(host, "_") || strings.Contains(name, "/") {
		return "", "", false
	}
	return host, name, true
}

// Owner says which running agent publishes a host's status.
type Owner struct {
	Instance  string    `json:"instance"`
	Machine   string    `json:"machine"`
	PID       int       `json:"pid"`
	StartTime time.Time `json:"start_time"`
}

// Status is the document at StatusKey. Readers decode it tolerantly:
// unknown fields are ignored, so that an agent newer than the console
// still shows.
type Status struct {
	Host      string            `json:"host"`
	Owner     Owner             `json:"owner"`
	Version   string            `json:"version"`
	StartTime time.Time         `json:"start_time"`
	Updated   time.Time         `json:"updated"`
	Health    string            `json:"health"` // "ok" or why not
	Config    ConfigState       `json:"config"`
	Files     []FileStatus      `json:"files"`
	Labels    map[string]string `json:"labels,omitempty"`
	Sys       *SysStatus        `json:"sys,omitempty"` // the Sys Agent, while it is on
}

// SysStatus is the Sys Agent's part of a Status (sysagent.Status); the
// console reads only its latest headline.
type SysStatus struct {
	Latest *SysHeadline `json:"latest,omitempty"`
}

// SysHeadline is the latest sample's load at a glance (sysagent.Headline).
// A figure is nil when its collector is off, failed, or has no rate yet.
type SysHeadline struct {
	Time        string   `json:"time"`
	Rates       bool     `json:"rates"`
	CPU         *float64 `json:"cpu_percent,omitempty"`
	Load1       *float64 `json:"load1,omitempty"`
	MemoryUsed  *float64 `json:"memory_used_percent,omitempty"`
	DiskBusy    *float64 `json:"disk_busy_percent,omitempty"`
	BusiestDisk string   `json:"busiest_disk,omitempty"`
	NetworkRx   *float64 `json:"network_rx_bytes_per_s,omitempty"`
	NetworkTx   *float64 `json:"network_tx_bytes_per_s,omitempty"`
}

// ConfigState is the collect config the agent applied.
type ConfigState struct {
	Revision int64    `json:"config_revision"` // the key's ModRevision it applied
	Error    string   `json:"config_error,omitempty"`
	Problems []string `json:"config_problems,omitempty"`
}

// FileStatus is one followed file in a Status.
type FileStatus struct {
	Path        string `json:"path"`
	Topic       string `json:"topic"`
	State       string `json:"state"`
	LastError   string `json:"last_error,omitempty"`
	Committed   int64  `json:"committed_offset"`
	Size        int64  `json:"size"`
	LagBytes    int64  `json:"lag_bytes"`
	LinesRead   int64  `json:"lines_read"`
	LinesAcked  int64  `json:"lines_acked"`
	BytesRead   int64  `json:"bytes_read"`
	Rotations   int64  `json:"rotations"`
	Truncations int64  `json:"truncations"`
}

// FileStateError is the state of a file the agent cannot follow.
const FileStateError = "error"

// LastSeen is the document at LastSeenKey.
type LastSeen struct {
	Time    time.Time `json:"time"`
	State   string    `json:"state"` // LastSeenRunning or LastSeenStopped
	Version string    `json:"version"`
	Owner   Owner     `json:"owner"`
}

// LastSeen states: an agent whose status key is gone and whose last_seen
// says running died or lost etcd after Time.
const (
	LastSeenRunning = "running"
	LastSeenStopped = "stopped"
)
