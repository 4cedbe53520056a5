package taillog

import (
	"reflect"
	"testing"
)

// The splitter frames bytes into lines without a tailer: terminators
// (\n, \r\n) are not part of a line, a line longer than max_line_bytes goes
// in pieces whose terminator is only acked, and what is not yet a line
// (or a whole piece) waits for the next read.
func TestSplitterFramesLines(t *testing.T) {
	type cut struct {
		Line  string
		Skip  bool
		First bool
	}
	// Each case is reads of a file, each what the reader has: the bytes
	// left over from the read before, then the new ones.
	for _, tt := range []struct {
		name      string
		reads     []string
		completes []int
		want      []cut
	}{
		{"lines", []string{"a\nbb\r\n\nccc"}, []int{7}, []cut{{Line: "a"}, {Line: "bb"}, {Line: ""}}},
		{"oversized", []string{"0123456789\nx\n"}, []int{13}, []cut{{Line: "0123", First: true}, {Line: "4567"}, {Line: "89"}, {Line: "x"}}},
		{"pieces before their end", []string{"0123456789", "89\n"}, []int{8, 3}, []cut{{Line: "0123", First: true}, {Line: "4567"}, {Line: "89"}}},
		{"oversized to its end", []string{"0123456", "4567", "\nz\n"}, []int{4, 4, 3}, []cut{{Line: "0123", First: true}, {Line: "4567"}, {Skip: true}, {Line: "z"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const maxLine = 4
			var s splitter
			var got []cut
			for k, read := range tt.reads {
				data := []byte(read)
				complete := s.complete(data, maxLine)
				if complete != tt.completes[k] {
					t.Fatalf("read %d: complete = %d, want %d", k, complete, tt.completes[k])
				}
				for p := 0; p < complete; {
					line, end, skip, first := s.next(data[:complete], p, maxLine)
					if skip && line != nil {
						t.Fatalf("a skipped line holds %q", line)
					}
					got = append(got, cut{string(line), skip, first})
					p = end
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("lines %+v, want %+v", got, tt.want)
			}
		})
	}
}
