package fleet

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Status is the document at StatusKey (bounded: Bound) and at the agent's
// /status (whole). Readers decode it tolerantly: unknown fields are
// ignored, so that an agent newer than the console still shows.
type Status struct {
	Host      string            `json:"host"`
	Owner     Owner             `json:"owner"` // which running agent
	Version   string            `json:"version"`
	Labels    map[string]string `json:"labels,omitempty"`
	StartTime time.Time         `json:"start_time"`
	Updated   time.Time         `json:"updated"`
	Health    string            `json:"health"`        // "ok" or why not
	SysConfig ConfigState       `json:"sys_config"`    // the Sys Agent's key
	Sys       *SysStatus        `json:"sys,omitempty"` // the Sys Agent, while it is on
	Config    ConfigState       `json:"config"`
	// FilesTotal files are followed; FileStates counts them by state, and
	// LagBytes is their lag (size − committed offset) together.
	FilesTotal int            `json:"files_total"`
	FileStates map[string]int `json:"file_states"`
	LagBytes   int64          `json:"lag_bytes"`
	// Files: every file at /status; in the etcd key, those in error first,
	// then the most behind, as many as fit in statusBytes (FilesOmitted:
	// the rest).
	Files        []FileStatus `json:"files"`
	FilesOmitted int          `json:"files_omitted,omitempty"`
	// Topics Kafka refuses, with the files waiting on them.
	Topics []TopicStatus `json:"refused_topics,omitempty"`
	// TopicLimits are the topics whose message size limit on the brokers
	// is below [kafka] max_message_bytes, each with what it means.
	TopicLimits []TopicLimit `json:"topic_limits,omitempty"`
}

// ConfigState is what the agent last applied or rejected of a config key
// (collect_config, sys_config).
type ConfigState struct {
	Revision  int64    `json:"config_revision"` // the key's ModRevision it applied
	LastError string   `json:"config_error,omitempty"`
	Problems  []string `json:"config_problems,omitempty"`
}

// FileStatus is one followed file (or an entry that follows none yet).
type FileStatus struct {
	Path string `json:"path"`
	// Entry is the entry's path pattern when Path is one of its matches.
	Entry       string `json:"entry,omitempty"`
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
	Oversized   int64  `json:"oversized_lines"`
	// RecordsSplit counts multiline records ended by max_lines or
	// max_bytes rather than by the next record's first line.
	RecordsSplit int64 `json:"records_split,omitempty"`
	// LostBytes is what files deleted while the agent was stopped held
	// beyond what was read, as far as known (#24).
	LostBytes int64 `json:"lost_bytes,omitempty"`
}

// FileStateError is the state of a file the agent cannot follow.
const FileStateError = "error"

// Lag is how many bytes of the file are not yet acknowledged.
func (s FileStatus) Lag() int64 {
	if s.Size < s.Committed {
		return 0
	}
	return s.Size - s.Committed
}

// FileState is the part of a FileStatus that costs no system call: what
// it follows and how that goes, without counters, offsets or sizes. The
// agent compares it every few seconds to tell whether anything an
// operator looks for changed.
type FileState struct {
	Path      string `json:"path"`
	Entry     string `json:"entry,omitempty"`
	Topic     string `json:"topic"`
	State     string `json:"state"`
	LastError string `json:"last_error,omitempty"`
}

// FileState is the state part of s.
func (s FileStatus) FileState() FileState {
	return FileState{Path: s.Path, Entry: s.Entry, Topic: s.Topic, State: s.State, LastError: s.LastError}
}

// TopicStatus is a topic Kafka refuses: the files of its entries are not
// read further while its lines wait (issue #25).
type TopicStatus struct {
	Topic  string    `json:"topic"`
	State  string    `json:"state"`  // TopicRefused
	Reason string    `json:"reason"` // plain words: "topic x does not exist on the brokers"
	Error  string    `json:"error"`  // Kafka's
	Since  time.Time `json:"refused_since"`
	// WaitingRecords wait in the producer; BufferedBytes is the topic's
	// use of buffer_bytes (at most a quarter of it, or one long line).
	WaitingRecords int      `json:"waiting_records"`
	BufferedBytes  int64    `json:"buffered_bytes"`
	Files          []string `json:"files_waiting"`
}

// TopicRefused is TopicStatus.State of a topic Kafka refuses.
const TopicRefused = "refused"

// TopicLimit is a topic whose message size limit on the brokers is below
// [kafka] max_message_bytes.
type TopicLimit struct {
	Topic           string `json:"topic"`
	MaxMessageBytes int    `json:"max_message_bytes"`
	Problem         string `json:"problem"` // in plain words, with what to do
}

// SysStatus is the Sys Agent's part of a Status.
type SysStatus struct {
	Topic    string       `json:"topic"`
	Interval string       `json:"interval"`
	Buffered int          `json:"buffered_samples"`
	Sent     int64        `json:"sent_samples"`
	Dropped  int64        `json:"dropped_samples"`
	LastSeq  uint64       `json:"last_seq"` // the latest sample's seq
	Latest   *SysHeadline `json:"latest,omitempty"`
}

// SysHeadline is a sample's few figures that tell a host's load at a
// glance (the status key, /metrics). A figure is absent when its collector
// is off, failed, or has no rate yet.
type SysHeadline struct {
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

// SetFiles sets the files of the status, with their counts and total lag.
func (st *Status) SetFiles(files []FileStatus) {
	st.Files, st.FilesTotal, st.FileStates, st.LagBytes = files, len(files), map[string]int{}, 0
	for _, f := range files {
		st.FileStates[f.State]++
		st.LagBytes += f.LagBytes
	}
}

// Bounds of the status in etcd: its size (with room left for the write
// time and files_omitted), the files and topics listed, the length of each
// error text.
const (
	statusBytes    = 3800
	statusMaxFiles = 20
	statusTopics   = 3
	statusErrText  = 120
)

// Bound keeps what an operator looks at first, within a few KB: the files
// in error, then the most behind; the first refused topics and limits,
// each naming a few of its files; errors cut short. Whatever the number of
// files, a fleet's statuses then fit etcd's request limit and its history.
func (st *Status) Bound() {
	files := slices.Clone(st.Files)
	slices.SortStableFunc(files, func(x, y FileStatus) int {
		if ex, ey := x.State == FileStateError, y.State == FileStateError; ex != ey {
			if ex {
				return -1
			}
			return 1
		}
		return cmp.Compare(y.LagBytes, x.LagBytes)
	})
	files = files[:min(len(files), statusMaxFiles)]
	for i := range files {
		files[i].Path = cut(files[i].Path, statusErrText)
		files[i].LastError = cut(files[i].LastError, statusErrText)
	}
	st.Files = nil
	defer func() {
		// As many files as the size leaves room for, the rest counted.
		base, _ := json.Marshal(st)
		size, n := len(base), 0
		for _, f := range files {
			b, _ := json.Marshal(f)
			if size+len(b)+1 > statusBytes {
				break
			}
			size += len(b) + 1
			n++
		}
		st.Files, st.FilesOmitted = files[:n], st.FilesTotal-n
	}()
	if len(st.Topics) > statusTopics {
		st.Topics = st.Topics[:statusTopics]
	}
	st.Topics = slices.Clone(st.Topics)
	for i := range st.Topics {
		t := &st.Topics[i]
		t.Error = "" // Kafka's own words; Reason says it plainly
		t.Reason = cut(t.Reason, statusErrText)
		if len(t.Files) > statusTopics {
			t.Files = append(slices.Clone(t.Files[:statusTopics]), fmt.Sprintf("(and %d more)", len(t.Files)-statusTopics))
		}
	}
	if len(st.TopicLimits) > statusTopics {
		st.TopicLimits = st.TopicLimits[:statusTopics]
	}
	st.TopicLimits = slices.Clone(st.TopicLimits)
	for i := range st.TopicLimits {
		st.TopicLimits[i].Problem = cut(st.TopicLimits[i].Problem, statusErrText)
	}
	st.Health = cut(st.Health, statusErrText)
	st.Config.LastError = cut(st.Config.LastError, statusErrText)
	if len(st.Config.Problems) > statusTopics {
		st.Config.Problems = append(slices.Clone(st.Config.Problems[:statusTopics]), fmt.Sprintf("(and %d more)", len(st.Config.Problems)-statusTopics))
	}
	for i := range st.Config.Problems {
		st.Config.Problems[i] = cut(st.Config.Problems[i], statusErrText)
	}
}

// Stamp sets the time the status is written (the publisher stamps a
// status only when it writes it, so that an unchanged one compares equal).
func (st *Status) Stamp(t time.Time) { st.Updated = t }

// CutText is what the status in etcd keeps of a text (an error, a path):
// its first statusErrText bytes.
func CutText(s string) string { return cut(s, statusErrText) }

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
