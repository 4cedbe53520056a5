package taillog

import (
	"bytes"
	"io"
	"os"
)

// A file's first bytes identify its content beyond its inode, as Filebeat's
// and the OpenTelemetry Collector's fingerprints do: a copy of a file (the
// path.1 that logrotate's copytruncate leaves each time) has another inode
// but begins with the same bytes. Each generation of a path the tailer
// holds keeps its first headBytes bytes (what is there at open, then what
// reading adds); generations it is done with (truncated, or rotated and
// closed) are remembered, the last keptHeads of them. A rotated file that
// was never opened and begins like one of these is a copy of content
// already read, not a missed rotation, and is not read again.
const (
	headBytes = 1 << 10
	keptHeads = 8
)

// readHead reads the first bytes of f up to n (at most headBytes): the
// head of a generation opened at offset n, which is not read from 0.
func readHead(f *os.File, n int64) []byte {
	b := make([]byte, min(n, headBytes))
	k, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return nil // not known: nothing is taken for a copy of it
	}
	return b[:k]
}

// keepHead adds to f's head what data, read at file offset at, holds of the
// file's first headBytes bytes. Reader goroutine.
func (t *Tailer) keepHead(f *openFile, data []byte, at int64) {
	n := int64(len(f.head))
	if n >= headBytes || at > n || at+int64(len(data)) <= n {
		return
	}
	add := data[n-at : min(int64(len(data)), headBytes-at)]
	t.headMu.Lock()
	f.head = append(f.head, add...)
	t.headMu.Unlock()
}

// retireHead remembers the head of a generation the tailer is done with:
// f was truncated (a new generation starts in it) or closed.
func (t *Tailer) retireHead(f *openFile) {
	t.headMu.Lock()
	defer t.headMu.Unlock()
	if len(f.head) > 0 {
		if len(t.heads) == keptHeads {
			t.heads = append(t.heads[:0], t.heads[1:]...)
		}
		t.heads = append(t.heads, f.head)
	}
	f.head = nil
}

// knownHead reports whether a file beginning with head is a copy of a
// generation the tailer read or reads: one of the two begins with the
// other (a copy may hold more than was read, or less, if reading went on
// after the copy was made).
func (t *Tailer) knownHead(head []byte) bool {
	if len(head) == 0 {
		return false
	}
	same := func(h []byte) bool {
		n := min(len(h), len(head))
		return n > 0 && bytes.Equal(h[:n], head[:n])
	}
	files := t.snapshot()
	t.headMu.Lock()
	defer t.headMu.Unlock()
	for _, f := range files {
		if same(f.head) {
			return true
		}
	}
	for _, h := range t.heads {
		if same(h) {
			return true
		}
	}
	return false
}
