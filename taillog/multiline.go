package taillog

import (
	"bytes"
	"context"
	"regexp"
	"time"
)

// Multiline joins a file's lines into records (#17): a stack trace is one
// record. Exactly one of Start and Continue is set.
type Multiline struct {
	Start    *regexp.Regexp // a line that matches begins a record; the others join it
	Continue *regexp.Regexp // a line that matches joins the record before it; the others begin one
	MaxLines int            // a record ends after this many lines
	MaxBytes int            // ... or before it would grow beyond this (never beyond MaxLineBytes)
	Timeout  time.Duration  // ... or once no line came for this long
}

// same tells whether two rules frame records alike (nil: one per line).
func (r *Multiline) same(o *Multiline) bool {
	if r == nil || o == nil {
		return r == o
	}
	return reString(r.Start) == reString(o.Start) && reString(r.Continue) == reString(o.Continue) &&
		r.MaxLines == o.MaxLines && r.MaxBytes == o.MaxBytes && r.Timeout == o.Timeout
}

func reString(re *regexp.Regexp) string {
	if re == nil {
		return ""
	}
	return re.String()
}

// joiner frames one open file's lines into records. The record being
// assembled is held until a line shows it is complete: its lines are not
// handed on, so the file's committed offset stays at the record's start
// until the whole record is acknowledged, and a restart reads it again
// from its first line.
//
// The held record's bytes stay where read put them while emit works on
// them (from >= 0: data[from:from+n], a record's lines are consecutive in
// the file and in data); they are copied only when the record is still
// held when emit returns (detach). A rule that joins nothing thus copies
// nothing.
type joiner struct {
	rule     *Multiline
	maxBytes int
	// due is set when Timeout passed with no new line: the tailer's
	// reader is poked to send the record.
	due   func()
	timer *time.Timer

	from  int    // where the held record starts in emit's data; -1: in buf
	buf   []byte // the held record's bytes, once held across reads
	n     int    // its length, terminators included
	lines int    // its lines (0: nothing held)
	start int64  // its first line's offset
	last  time.Time
}

func newJoiner(rule *Multiline, maxLineBytes int, due func()) *joiner {
	j := &joiner{rule: rule, maxBytes: min(rule.MaxBytes, maxLineBytes), due: due, from: -1}
	if j.maxBytes <= 0 {
		j.maxBytes = maxLineBytes
	}
	return j
}

// begins tells whether line (without its terminator) begins a record.
func (j *joiner) begins(line []byte) bool {
	if j.rule.Start != nil {
		return j.rule.Start.Match(line)
	}
	return !j.rule.Continue.Match(line)
}

// push adds the line data[p:end] (its terminator included), at file offset
// off and read at read. If it completes the held record, that record is
// returned (ok), with its bytes as in the file (for the fingerprint of
// its end, checkOf, taken only for a batch's last record); split says the
// record ended at max_lines or max_bytes rather than at a line that begins
// the next one.
func (j *joiner) push(data []byte, p, end int, off int64, read time.Time) (rec Line, raw []byte, ok, split bool) {
	size := end - p
	if j.lines > 0 {
		begins := j.begins(trimEOL(data[p:end]))
		if begins || j.lines >= j.rule.MaxLines || j.n+size > j.maxBytes {
			split = !begins
			rec, raw = j.take(data)
			ok = true
		}
	}
	switch {
	case j.lines == 0:
		j.start, j.from = off, p
	case j.from < 0:
		j.buf = append(j.buf, data[p:end]...)
	}
	j.n += size
	j.lines++
	j.last = read
	return rec, raw, ok, split
}

// take returns the held record as a line, with its bytes as in the file,
// and forgets it. data is emit's data (nil outside emit: the record is in
// buf then).
func (j *joiner) take(data []byte) (Line, []byte) {
	raw := j.buf
	if j.from >= 0 {
		raw = data[j.from : j.from+j.n]
	}
	l := Line{Offset: j.start, Data: joinLines(raw), next: j.start + int64(j.n)}
	j.from, j.buf, j.n, j.lines = -1, nil, 0, 0
	return l, raw
}

// held tells whether a record is held; due whether its timeout passed.
func (j *joiner) held() bool { return j != nil && j.lines > 0 }

func (j *joiner) expired(now time.Time) bool {
	return j.lines > 0 && j.rule.Timeout > 0 && now.Sub(j.last) >= j.rule.Timeout
}

// detach copies the held record out of data, which emit's caller
// reuses, and has its timeout counted from now: once per read, not per
// line.
func (j *joiner) detach(data []byte) {
	if j.lines == 0 {
		return
	}
	if j.from >= 0 {
		j.buf = append(make([]byte, 0, j.n+j.n/2), data[j.from:j.from+j.n]...)
		j.from = -1
	}
	if j.rule.Timeout > 0 {
		if j.timer == nil {
			j.timer = time.AfterFunc(j.rule.Timeout, j.due)
		} else {
			j.timer.Reset(j.rule.Timeout)
		}
	}
}

// stop ends the timer: the file is closed.
func (j *joiner) stop() {
	if j.timer != nil {
		j.timer.Stop()
	}
}

// trimEOL is line without its terminator (\n or \r\n).
func trimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	return line
}

// joinLines is a record's value: its lines joined with \n, without their
// terminators (\r\n included). Without \r it is raw itself, less its end.
func joinLines(raw []byte) []byte {
	raw = trimEOL(raw)
	if bytes.IndexByte(raw, '\r') < 0 {
		return raw
	}
	return bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
}

// joiner is f's record framer, made at its first use; nil without a
// multiline rule.
func (t *Tailer) joiner(f *openFile) *joiner {
	if f.ml == nil && t.entry.Multiline != nil {
		f.ml = newJoiner(t.entry.Multiline, t.deps.opts.MaxLineBytes, func() {
			t.pace.recordDue.Store(true)
			t.pace.poke(false)
		})
	}
	return f.ml
}

// frame passes the line l, data[p:end], through j (emit, with a multiline
// rule): a record it completes is added to the batch with add, and last is
// then the bytes it ends with in the file. A piece of an oversized line
// ends the held record and goes on alone, as without a rule.
func (t *Tailer) frame(j *joiner, data []byte, p, end int, l Line, add func(Line, int) bool, last *[]byte, read time.Time) bool {
	if l.Skip || data[end-1] != '\n' {
		if j.held() {
			rec, raw := j.take(data)
			if !add(rec, len(rec.Data)) {
				return false
			}
			*last = raw
		}
		if !add(l, end-p) {
			return false
		}
		*last = data[max(0, end-lookBack):end]
		return true
	}
	rec, raw, ok, split := j.push(data, p, end, l.Offset, read)
	if !ok {
		return true
	}
	if split {
		t.stats.recordsSplit.Add(1)
	}
	if !add(rec, len(rec.Data)) {
		return false
	}
	*last = raw
	return true
}

// flushRecord sends the record f holds, completed by pending, an
// unfinished last line (nil: none): the file will not grow again, or the
// record's timeout passed.
func (t *Tailer) flushRecord(ctx context.Context, f *openFile, pending []byte) {
	j := f.ml
	if j == nil {
		return
	}
	var lines []Line
	var last []byte
	if len(pending) > 0 {
		rec, raw, ok, split := j.push(pending, 0, len(pending), f.rd.off-int64(len(pending)), f.rd.pendingRead)
		if ok {
			lines, last = append(lines, rec), raw
		}
		if split {
			t.stats.recordsSplit.Add(1)
		}
	}
	if j.held() {
		rec, raw := j.take(pending)
		lines, last = append(lines, rec), raw
	}
	if len(lines) > 0 {
		t.sendOwn(ctx, f, lines, checkOf(last, lines[len(lines)-1].next), j.last)
	}
}

// sendExpired sends f's held record once no line came for its timeout:
// the last record of a quiet file is not held until the next write.
func (t *Tailer) sendExpired(ctx context.Context, f *openFile) {
	if f.ml != nil && f.ml.expired(time.Now()) {
		t.flushRecord(ctx, f, nil)
	}
}
