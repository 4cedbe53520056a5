package taillog

import (
	"sort"

	"github.com/logagent/logagent/fleet"
)

// FileState is the part of a tailer's Status that costs no system call.
type FileState = fleet.FileState

// States returns the state and last error of every tailer, sorted by path.
// Unlike Status it neither stats the files nor looks up their positions:
// the status publisher takes it every few seconds, for a thousand files,
// to tell whether anything an operator looks for changed.
func (m *Manager) States() []FileState {
	ts := m.list()
	out := make([]FileState, 0, len(ts))
	for _, t := range ts {
		t.stats.mu.Lock()
		out = append(out, FileState{Path: t.entry.Path, Entry: t.entry.Glob, Topic: t.entry.Topic, State: t.stats.state, LastError: t.stats.lastError})
		t.stats.mu.Unlock()
	}
	for _, s := range m.globs.status() {
		out = append(out, s.FileState())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
