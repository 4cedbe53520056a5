// Package fleet is the contract the agent, the console and the transfer
// share: the etcd key names, the documents the agent writes there (status,
// last_seen) and the rules every JSON list in etcd is parsed by. It is
// plain data and pure functions: no I/O, and nothing of ours imported, so
// the console and the transfer read what the agent writes without
// importing the daemon.
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
	KeySysConfig     = "sys_config"
	KeyStatus        = "status"
	KeyLastSeen      = "last_seen"
)

// ConfigKey is the etcd key holding host's collect config.
func ConfigKey(host string) string { return Prefix + host + "/" + KeyCollectConfig }

// SysConfigKey is the etcd key holding host's Sys Agent config.
func SysConfigKey(host string) string { return Prefix + host + "/" + KeySysConfig }

// StatusKey is where host's agent publishes its status, under a lease.
func StatusKey(host string) string { return Prefix + host + "/" + KeyStatus }

// LastSeenKey is where host's agent records, without a lease, when it was
// last seen running and whether it stopped cleanly: the leased status key
// vanishes with the agent, and "stopped" would look like "never deployed".
func LastSeenKey(host string) string { return Prefix + host + "/" + KeyLastSeen }

// TransferConfigKey lists the topics the transfer indexes.
const TransferConfigKey = "/logtransfer/config"

// TransferStatusKey is where a transfer publishes its status (leased).
func TransferStatusKey(instance string) string { return "/logtransfer/" + instance + "/status" }

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

// Owner says which running agent publishes a host's status: two agents
// configured with one host would ship the same files twice, so the second
// refuses to run. Instance is kept in the agent's data_dir: the agent that
// restarts after a crash, whose leased key has not expired yet, is the same
// instance and takes its key over at once.
type Owner struct {
	Instance  string    `json:"instance"`
	Machine   string    `json:"machine"`
	PID       int       `json:"pid"`
	StartTime time.Time `json:"start_time"`
}

// LastSeen is the document at LastSeenKey.
type LastSeen struct {
	Time    time.Time `json:"time"`
	State   string    `json:"state"` // LastSeenRunning or LastSeenStopped
	Version string    `json:"version"`
	Owner   Owner     `json:"owner"`
}

// LastSeen states: an agent whose status key is gone and whose last_seen
// says running died or lost etcd (its lease expired) after Time.
const (
	LastSeenRunning = "running"
	LastSeenStopped = "stopped"
)
