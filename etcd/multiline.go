package etcd

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/logagent/logagent/internal/glob"
)

// Multiline joins a file's lines into records: a stack trace is one
// record, not one per frame. Exactly one of Start and Continue is given:
// with Start, a line that matches it begins a record and every other line
// joins the record before it; with Continue, a line that matches it joins
// the record before it and every other line begins one.
type Multiline struct {
	Start    string   `json:"start,omitempty"`
	Continue string   `json:"continue,omitempty"`
	MaxLines int      `json:"max_lines,omitempty"` // 0: DefaultMaxLines
	MaxBytes Size     `json:"max_bytes,omitempty"` // 0: DefaultMaxBytes (never above max_line_bytes)
	Timeout  Duration `json:"timeout,omitempty"`   // 0: DefaultTimeout

	re *regexp.Regexp
}

// The limits of a record when the entry gives none.
const (
	DefaultMaxLines = 500
	DefaultMaxBytes = 1 << 20
	DefaultTimeout  = 2 * time.Second
)

// Regexp is the compiled Start or Continue (valid after ParseEntries).
func (m *Multiline) Regexp() *regexp.Regexp { return m.re }

// compile checks the rule and compiles its pattern.
func (m *Multiline) compile() error {
	switch {
	case m.Start == "" && m.Continue == "":
		return errors.New("multiline needs \"start\" (a record's first line) or \"continue\" (its other lines)")
	case m.Start != "" && m.Continue != "":
		return errors.New("multiline takes \"start\" or \"continue\", not both")
	case m.MaxLines < 0:
		return fmt.Errorf("multiline max_lines %d must be positive", m.MaxLines)
	case m.MaxBytes < 0:
		return fmt.Errorf("multiline max_bytes %d must be positive", m.MaxBytes)
	case m.Timeout < 0:
		return fmt.Errorf("multiline timeout %s must be positive", time.Duration(m.Timeout))
	}
	field, expr := "start", m.Start
	if expr == "" {
		field, expr = "continue", m.Continue
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return fmt.Errorf("multiline %s %q is not a valid regular expression: %w", field, expr, err)
	}
	m.re = re
	if m.MaxLines == 0 {
		m.MaxLines = DefaultMaxLines
	}
	if m.MaxBytes == 0 {
		m.MaxBytes = DefaultMaxBytes
	}
	if m.Timeout == 0 {
		m.Timeout = Duration(DefaultTimeout)
	}
	return nil
}

// Size is a byte count, in JSON a number or a string with a binary unit
// ("1MiB", "512KiB").
type Size int64

var sizeRE = regexp.MustCompile(`^(\d+)\s*(|b|kib|mib|gib)$`)

func (s *Size) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*s = Size(n)
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("size %s must be a number of bytes or a string such as \"1MiB\"", b)
	}
	m := sizeRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(str)))
	if m == nil {
		return fmt.Errorf("size %q: write a number of bytes or KiB/MiB/GiB (1024-based), e.g. \"1MiB\"", str)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	shift := map[string]uint{"kib": 10, "mib": 20, "gib": 30}[m[2]]
	if err != nil || n > 1<<40>>shift {
		return fmt.Errorf("size %q is too large", str)
	}
	*s = Size(n << shift)
	return nil
}

// Duration is a time.Duration, in JSON a string such as "2s" or "500ms".
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("duration %s must be a string such as \"2s\"", b)
	}
	v, err := time.ParseDuration(str)
	if err != nil {
		return fmt.Errorf("duration %q: %w", str, err)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// checkGlob reports a malformed glob pattern.
func checkGlob(pattern string) error { return glob.Validate(pattern) }
