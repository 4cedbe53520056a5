package etcd

import (
	"strings"
	"testing"
	"time"
)

// TestParseEntriesMultilineAndExclude: the fields of #17 are read, their
// defaults filled in, and a bad one (a regex that does not compile, a bad
// size or pattern) is a problem naming the entry, numbered from 1, while
// the other entries apply.
func TestParseEntriesMultilineAndExclude(t *testing.T) {
	value := `[
	  {"path": "/var/log/app/*.log", "topic": "app", "exclude": ["*.gz", "/var/log/app/debug-*.log"],
	   "multiline": {"start": "^\\d{4}-\\d{2}-\\d{2}[ T]", "max_lines": 50, "max_bytes": "1MiB", "timeout": "500ms"}},
	  {"path": "/var/log/java.log", "topic": "java", "multiline": {"continue": "^\\s"}},
	  {"path": "/var/log/bad.log", "topic": "t", "multiline": {"start": "^(unclosed"}},
	  {"path": "/var/log/both.log", "topic": "t", "multiline": {"start": "^a", "continue": "^b"}},
	  {"path": "/var/log/none.log", "topic": "t", "multiline": {}},
	  {"path": "/var/log/size.log", "topic": "t", "multiline": {"start": "^a", "max_bytes": "1MB"}},
	  {"path": "/var/log/[x.log", "topic": "t"},
	  {"path": "/var/log/a**.log", "topic": "t"},
	  {"path": "/var/log/ex.log", "topic": "t", "exclude": ["[z"]}
	]`
	got, problems, err := ParseEntries([]byte(value))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("entries = %+v, want 2", got)
	}
	ml := got[0].Multiline
	if ml.Regexp() == nil || !ml.Regexp().MatchString("2026-12-06 10:00:00 INFO x") || ml.MaxLines != 50 ||
		ml.MaxBytes != 1<<20 || time.Duration(ml.Timeout) != 500*time.Millisecond {
		t.Errorf("multiline = %+v", ml)
	}
	if len(got[0].Exclude) != 2 {
		t.Errorf("exclude = %v", got[0].Exclude)
	}
	d := got[1].Multiline
	if d.Continue != `^\s` || d.MaxLines != DefaultMaxLines || d.MaxBytes != DefaultMaxBytes || time.Duration(d.Timeout) != DefaultTimeout {
		t.Errorf("defaults = %+v", d)
	}
	want := []string{
		`entry 3 ("/var/log/bad.log"): multiline start "^(unclosed" is not a valid regular expression`,
		`entry 4 ("/var/log/both.log"): multiline takes "start" or "continue", not both`,
		`entry 5 ("/var/log/none.log"): multiline needs "start"`,
		`entry 6: `,
		`entry 7 ("/var/log/[x.log"): path: malformed pattern`,
		`entry 8 ("/var/log/a**.log"): path: ** must be a whole path element`,
		`entry 9 ("/var/log/ex.log"): exclude "[z" is not a valid pattern`,
	}
	if len(problems) != len(want) {
		t.Fatalf("problems = %v", problems)
	}
	for i, w := range want {
		if !strings.Contains(problems[i].Error(), w) {
			t.Errorf("problem %d = %q, want it to contain %q", i+1, problems[i], w)
		}
	}
	if !strings.Contains(problems[3].Error(), "KiB/MiB/GiB") {
		t.Errorf("size problem = %q", problems[3])
	}
}
