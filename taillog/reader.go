package taillog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"
)

// reader is where the reading of one open file stands (reader goroutine
// only): the offset of the next byte, the unfinished line read so far, the
// bytes last read (to see a truncation), and the framing of the bytes into
// lines.
type reader struct {
	off     int64  // offset of the next byte to read
	pending []byte // bytes of an unfinished line, starting at off-len(pending)
	// pendingRead is when pending's last bytes were read: its record's
	// timestamp if it is sent unfinished (flushPending).
	pendingRead time.Time
	// last holds the bytes just before off (up to lookBack): each read
	// starts with them, and if the file no longer has them there it was
	// truncated, and perhaps written past off again.
	last    [lookBack]byte
	lastLen int
	lines   splitter
}

// lookBack is how many of the bytes last read each read reads again.
const lookBack = 32

// remember notes the end of what was just read, data ending at off.
func (r *reader) remember(data []byte) {
	r.lastLen = copy(r.last[:], data[max(0, len(data)-len(r.last)):])
}

// lastGone confirms what a read of f suggested: the bytes last read are no
// longer where they were. ReadAt reads on after a short read, to the
// file's end; it runs only when a read found them gone.
func (r *reader) lastGone(f *os.File) bool {
	var b [lookBack]byte
	n, err := f.ReadAt(b[:r.lastLen], r.off-int64(r.lastLen))
	if err != nil && !errors.Is(err, io.EOF) {
		return false // not known (an I/O error): the next read tells
	}
	return n < r.lastLen || !bytes.Equal(b[:n], r.last[:r.lastLen])
}

// restart has the file read again from 0: it was truncated.
func (r *reader) restart() {
	r.off = 0
	r.pending = nil
	r.lines.splitting = false
	r.lastLen = 0
}

// takePending hands over the unfinished last line, in memory of its own,
// and the offset it starts at.
func (r *reader) takePending() ([]byte, int64) {
	data := append([]byte(nil), r.pending...)
	r.pending = nil
	return data, r.off - int64(len(data))
}

// splitter frames bytes into lines: a line ends at '\n', and its
// terminator (\n or \r\n) is not part of it; a line longer than maxLine is
// cut into pieces of maxLine bytes, and the terminator after its last
// piece is a line of its own, only acked (Skip). A multiline rule frames
// these lines into records (joiner).
type splitter struct {
	splitting bool // the pieces of an oversized line are being cut
}

// complete is how much of data is lines: up to its last newline, and whole
// maxLine pieces of an oversized line after it.
func (s *splitter) complete(data []byte, maxLine int) int {
	complete := bytes.LastIndexByte(data, '\n') + 1
	if rest := len(data) - complete; rest >= maxLine {
		complete += rest / maxLine * maxLine
	}
	return complete
}

// next cuts the line that starts at data[p], data being complete lines
// (complete): line is its bytes (nil for a Skip), end where the next one
// starts; first reports the first piece of an oversized line.
func (s *splitter) next(data []byte, p, maxLine int) (line []byte, end int, skip, first bool) {
	i := bytes.IndexByte(data[p:], '\n')
	if i < 0 || i > maxLine {
		// An oversized line: a piece of maxLine bytes, the rest follows.
		first = !s.splitting
		s.splitting = true
		return data[p : p+maxLine], p + maxLine, false, first
	}
	line = data[p : p+i]
	if i > 0 && line[i-1] == '\r' {
		line = line[:i-1]
	}
	if s.splitting && len(line) == 0 {
		// The terminator of an oversized line whose pieces are all
		// sent: no record of its own, only its offset.
		line, skip = nil, true
	}
	s.splitting = false
	return line, p + i + 1, skip, false
}
