package taillog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
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
	// Check is a fingerprint of bytes that were read just before Offset
	// (at most lookBack of them, ending at or a little before it): at
	// start, a file at the saved identity whose bytes there differ was
	// rewritten while the agent was stopped (#24). Zero: none taken.
	Check Check `json:"check,omitzero"`
	// Size is how far the file was known to reach (read, or its size at
	// a stop): what is lost if it is gone at the next start.
	Size int64 `json:"size,omitempty"`
}

// Check fingerprints the Len bytes of a file that end at offset At.
type Check struct {
	At  int64  `json:"at"`
	Len int    `json:"len"`
	Sum uint64 `json:"sum"`
}

// checkOf fingerprints the last bytes of b (at most lookBack), which ends
// at file offset end.
func checkOf(b []byte, end int64) Check {
	b = b[max(0, len(b)-lookBack):]
	return Check{At: end, Len: len(b), Sum: sum64(b)}
}

// sum64 is FNV-1a, 64 bits.
func sum64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
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
	entries map[string]*posEntry
	order   []*posEntry // the entries, sorted by path unless a path was added since
	sorted  bool
	dirty   bool
	lastErr error

	// flushMu keeps flushes in order and guards buf, the encoded file,
	// reused from one flush to the next.
	flushMu sync.Mutex
	buf     []byte

	// OnFlushError, if set, is called with each failed save (for metrics).
	OnFlushError func(error)
}

// posEntry is what is saved for one path, with the path's JSON key encoded
// once rather than at every flush.
type posEntry struct {
	PathPos
	path string
	key  []byte // the path, quoted
}

func newPosEntry(path string) *posEntry {
	e := &posEntry{path: path}
	// Paths come from the JSON collect config: valid UTF-8, which a JSON
	// string carries exactly.
	e.key, _ = json.Marshal(path) // a string always encodes
	return e
}

// positionsFile is the file's schema. LoadPositions decodes it with
// encoding/json; Flush writes the same JSON by hand (appendFile).
type positionsFile struct {
	Version int                 `json:"version"`
	Files   map[string]*PathPos `json:"files"`
}

// LoadPositions reads path if it exists. A corrupt file is an error: the
// caller decides whether to start over (and resend) or stop.
func LoadPositions(path string, log *slog.Logger) (*Positions, error) {
	p := &Positions{path: path, log: log, entries: map[string]*posEntry{}}
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
			p.entry(k).PathPos = *v
		}
	}
	p.dirty = false
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
	c := e.PathPos
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

func (p *Positions) entry(path string) *posEntry {
	e, ok := p.entries[path]
	if !ok {
		e = newPosEntry(path)
		p.entries[path] = e
		p.order = append(p.order, e)
		p.sorted = false
		p.dirty = true
	}
	return e
}

// Flush writes the positions if they changed since the last successful
// flush: to a temporary file, fsynced, then renamed over the old one, so
// that a crash leaves either the old or the new file, never a torn one.
func (p *Positions) Flush() error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	if !p.dirty {
		p.mu.Unlock()
		return nil
	}
	p.buf = p.appendFile(p.buf[:0])
	p.dirty = false
	p.mu.Unlock()

	if err := utils.WriteFileAtomic(p.path, p.buf); err != nil {
		p.mu.Lock()
		p.dirty = true // try again at the next flush
		p.mu.Unlock()
		return fmt.Errorf("save positions: %w", err)
	}
	return nil
}

// appendFile appends the positions file to buf, one path per line; p.mu
// must be held. It writes by hand the bytes json.Marshal would write for a
// positionsFile, newlines aside (a test compares them): with 1,000 paths,
// copying them into a positionsFile and encoding/json's reflection and
// indentation were most of a flush's CPU.
func (p *Positions) appendFile(buf []byte) []byte {
	if !p.sorted {
		slices.SortFunc(p.order, func(a, b *posEntry) int { return strings.Compare(a.path, b.path) })
		p.sorted = true
	}
	buf = append(buf, `{"version":1,"files":{`...)
	for i, e := range p.order {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
		buf = append(buf, e.key...)
		buf = append(buf, `:{"current":`...)
		buf = appendFilePos(buf, e.Current)
		if len(e.Rotated) > 0 {
			buf = append(buf, `,"rotated":[`...)
			for i, r := range e.Rotated {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendFilePos(buf, r)
			}
			buf = append(buf, ']')
		}
		buf = append(buf, '}')
	}
	if len(p.order) > 0 {
		buf = append(buf, '\n')
	}
	return append(buf, "}}\n"...)
}

func appendFilePos(buf []byte, pos FilePos) []byte {
	buf = append(buf, `{"dev":`...)
	buf = strconv.AppendUint(buf, pos.Dev, 10)
	buf = append(buf, `,"ino":`...)
	buf = strconv.AppendUint(buf, pos.Ino, 10)
	buf = append(buf, `,"offset":`...)
	buf = strconv.AppendInt(buf, pos.Offset, 10)
	if pos.Check != (Check{}) {
		buf = append(buf, `,"check":{"at":`...)
		buf = strconv.AppendInt(buf, pos.Check.At, 10)
		buf = append(buf, `,"len":`...)
		buf = strconv.AppendInt(buf, int64(pos.Check.Len), 10)
		buf = append(buf, `,"sum":`...)
		buf = strconv.AppendUint(buf, pos.Check.Sum, 10)
		buf = append(buf, '}')
	}
	if pos.Size != 0 {
		buf = append(buf, `,"size":`...)
		buf = strconv.AppendInt(buf, pos.Size, 10)
	}
	return append(buf, '}')
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
