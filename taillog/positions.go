package taillog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
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
	// Gen is the id of the file generation the offset is in (the records'
	// file header). Zero in positions saved before ids existed.
	Gen GenID `json:"file,omitempty"`
	// Check is a fingerprint of bytes that were read just before Offset
	// (at most lookBack of them, ending at or a little before it): at
	// start, a file at the saved identity whose bytes there differ was
	// rewritten while the agent was stopped (#24). Zero: none taken.
	Check Check `json:"check,omitzero"`
	// Size is how far the file was known to reach (read, or its size at
	// a stop): what is lost if it is gone at the next start.
	Size int64 `json:"size,omitempty"`
}

// GenID identifies one generation of a file: the content a file holds from
// the moment the agent first sees it (a device + inode new to it) or sees
// it truncated, until it is truncated again. Every line's identity is
// host + GenID + offset.
//
// It is a random 64-bit value rather than something derived from the file:
// a truncated file keeps its inode and its birth time (statx), and a new
// file may get a freed inode back, yet each needs a new id; birth time is
// not kept by every file system either. Kept with the position, it is the
// same after a restart; at 2^64, ids drawn at random do not collide in
// practice.
type GenID uint64

// newGenID draws a new generation id (never 0, which means none).
func newGenID() GenID {
	for {
		if g := GenID(rand.Uint64()); g != 0 {
			return g
		}
	}
}

// GenIDLen is the length of a GenID in hex.
const GenIDLen = 16

// AppendHex appends g as GenIDLen lowercase hex digits.
func (g GenID) AppendHex(b []byte) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, digits[(g>>shift)&0xf])
	}
	return b
}

func (g GenID) String() string { return string(g.AppendHex(nil)) }

// MarshalText writes g in hex: a JSON number of 64 bits is not read
// exactly by every JSON tool.
func (g GenID) MarshalText() ([]byte, error) { return g.AppendHex(nil), nil }

// UnmarshalText reads the hex MarshalText writes.
func (g *GenID) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 16, 64)
	if err != nil {
		return fmt.Errorf("file id %q: %w", b, err)
	}
	*g = GenID(v)
	return nil
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

	// encoded counts the flushes that encoded the positions; saved is the
	// count of the last one written (p.mu): for Sync.
	encoded, saved uint64

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
	if n := p.assignGens(); n > 0 {
		// Saved at once: a line sent under an id must find the same id
		// after a crash.
		log.Info("positions saved before file ids existed: files get an id", "files", n)
		if err := p.Flush(); err != nil {
			log.Error("cannot save the new file ids; retrying every flush", "err", err)
		}
	}
	return p, nil
}

// assignGens gives a generation id to every saved file without one (a
// positions file written before ids existed) and returns how many.
func (p *Positions) assignGens() int {
	n := 0
	assign := func(pos *FilePos) {
		if pos.Gen == 0 && pos.FileID != (FileID{}) {
			pos.Gen = newGenID()
			n++
		}
	}
	for _, e := range p.entries {
		assign(&e.Current)
		for i := range e.Rotated {
			assign(&e.Rotated[i])
		}
	}
	if n > 0 {
		p.dirty = true
	}
	return n
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
	p.encoded++
	seq := p.encoded
	p.mu.Unlock()

	if err := utils.WriteFileAtomic(p.path, p.buf); err != nil {
		p.mu.Lock()
		p.dirty = true // try again at the next flush
		p.mu.Unlock()
		return fmt.Errorf("save positions: %w", err)
	}
	p.mu.Lock()
	p.saved = seq
	p.mu.Unlock()
	return nil
}

// Sync returns once every change made before it was called is saved: it
// flushes, unless a flush that began since has saved them. Many callers at
// once (tailers starting together) share a few writes.
func (p *Positions) Sync() error {
	p.mu.Lock()
	want := p.encoded + 1 // a flush that encodes after this call
	p.mu.Unlock()
	p.flushMu.Lock()
	p.mu.Lock()
	done := p.saved >= want
	p.mu.Unlock()
	p.flushMu.Unlock()
	if done {
		return nil
	}
	return p.Flush()
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
	if pos.Gen != 0 {
		buf = append(buf, `,"file":"`...)
		buf = append(pos.Gen.AppendHex(buf), '"')
	}
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
