package taillog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/logagent/logagent/utils"
)

// FileID identifies a file independently of its name: rotation renames a
// file, truncation keeps its identity, a new file gets a new inode.
type FileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func (id FileID) String() string { return fmt.Sprintf("%d:%d", id.Dev, id.Ino) }

// FilePos is the committed position in one file: every line that ends at or
// before Offset has been acknowledged by Kafka.
type FilePos struct {
	FileID
	Offset int64 `json:"offset"`
}

// PathPos is what is saved for one configured path: the file it names now
// and the rotated-away files that were still being read.
type PathPos struct {
	Current FilePos   `json:"current"`
	Rotated []FilePos `json:"rotated,omitempty"`
}

// Positions holds the committed offsets of every path and saves them
// atomically to a JSON file. It is safe for concurrent use.
type Positions struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	entries map[string]*PathPos
	dirty   bool
	lastErr error

	// OnFlushError, if set, is called with each failed save (for metrics).
	OnFlushError func(error)
}

type positionsFile struct {
	Version int                 `json:"version"`
	Files   map[string]*PathPos `json:"files"`
}

// LoadPositions reads path if it exists. A corrupt file is an error: the
// caller decides whether to start over (and resend) or stop.
func LoadPositions(path string, log *slog.Logger) (*Positions, error) {
	p := &Positions{path: path, log: log, entries: map[string]*PathPos{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read positions: %w", err)
	}
	var f positionsFile
	if err := json.Unmarshal(data, &f); err != nil {
		// Refuse rather than guess: starting over would resend or skip lines.
		return nil, fmt.Errorf("parse positions %s: %w (move the file aside to start over: files are then read as if seen for the first time)", path, err)
	}
	for k, v := range f.Files {
		if v != nil {
			p.entries[k] = v
		}
	}
	return p, nil
}

// Get returns a copy of what is saved for path.
func (p *Positions) Get(path string) (PathPos, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[path]
	if !ok {
		return PathPos{}, false
	}
	c := *e
	c.Rotated = append([]FilePos(nil), e.Rotated...)
	return c, true
}

// SetCurrent records the committed offset of the file path names now.
func (p *Positions) SetCurrent(path string, pos FilePos) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.entry(path)
	if e.Current != pos {
		e.Current = pos
		p.dirty = true
	}
}

// SetRotated records the committed offset of a rotated-away file of path.
func (p *Positions) SetRotated(path string, pos FilePos) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.entry(path)
	for i := range e.Rotated {
		if e.Rotated[i].FileID == pos.FileID {
			if e.Rotated[i] != pos {
				e.Rotated[i] = pos
				p.dirty = true
			}
			return
		}
	}
	e.Rotated = append(e.Rotated, pos)
	p.dirty = true
}

// DropRotated forgets a rotated-away file once it has been read and acked to its end.
func (p *Positions) DropRotated(path string, id FileID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.entry(path)
	for i := range e.Rotated {
		if e.Rotated[i].FileID == id {
			e.Rotated = append(e.Rotated[:i], e.Rotated[i+1:]...)
			p.dirty = true
			return
		}
	}
}

func (p *Positions) entry(path string) *PathPos {
	e, ok := p.entries[path]
	if !ok {
		e = &PathPos{}
		p.entries[path] = e
		p.dirty = true
	}
	return e
}

// Flush writes the positions if they changed since the last successful
// flush: to a temporary file, fsynced, then renamed over the old one, so
// that a crash leaves either the old or the new file, never a torn one.
func (p *Positions) Flush() error {
	p.mu.Lock()
	if !p.dirty {
		p.mu.Unlock()
		return nil
	}
	f := positionsFile{Version: 1, Files: make(map[string]*PathPos, len(p.entries))}
	for k, v := range p.entries {
		c := *v
		c.Rotated = append([]FilePos(nil), v.Rotated...)
		f.Files[k] = &c
	}
	p.dirty = false
	p.mu.Unlock()

	data, err := json.MarshalIndent(f, "", " ")
	if err == nil {
		err = utils.WriteFileAtomic(p.path, data)
	}
	if err != nil {
		p.mu.Lock()
		p.dirty = true // try again at the next flush
		p.mu.Unlock()
		return fmt.Errorf("save positions: %w", err)
	}
	return nil
}

// Run flushes every interval until ctx is done, then flushes once more.
// A failed flush is logged (once per distinct error) and retried.
func (p *Positions) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.flushLogged()
			return
		case <-t.C:
			p.flushLogged()
		}
	}
}

func (p *Positions) flushLogged() {
	err := p.Flush()
	if err != nil && p.OnFlushError != nil {
		p.OnFlushError(err)
	}
	switch {
	case err != nil && (p.lastErr == nil || p.lastErr.Error() != err.Error()):
		p.log.Error("cannot save positions; shipping goes on, retrying every flush", "file", p.path, "err", err)
	case err == nil && p.lastErr != nil:
		p.log.Info("positions saved again", "file", p.path)
	}
	p.lastErr = err
}
