package etcd

import (
	"reflect"
	"strings"
	"testing"
)

// TestParseEntriesValid: values whose every entry is good.
func TestParseEntriesValid(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []Entry
	}{
		{"empty list", `[]`, nil},
		{"empty list with spaces", " [ ]\n", nil},
		{"one entry", `[{"path": "/var/log/nginx/access.log", "topic": "web_log"}]`,
			[]Entry{{Path: "/var/log/nginx/access.log", Topic: "web_log"}}},
		{"read_from beginning and end, order kept",
			`[{"path": "/b.log", "topic": "t1", "read_from": "beginning"},
			  {"path": "/a.log", "topic": "t2", "read_from": "end"},
			  {"path": "/c.log", "topic": "t3"}]`,
			[]Entry{
				{Path: "/b.log", Topic: "t1", ReadFrom: "beginning"},
				{Path: "/a.log", Topic: "t2", ReadFrom: "end"},
				{Path: "/c.log", Topic: "t3"},
			}},
		{"path is cleaned", `[{"path": "/var//log/./app/../nginx/access.log/", "topic": "web"}]`,
			[]Entry{{Path: "/var/log/nginx/access.log", Topic: "web"}}},
		{"topic with every allowed character", `[{"path": "/x.log", "topic": "Web.log_2-x"}]`,
			[]Entry{{Path: "/x.log", Topic: "Web.log_2-x"}}},
		{"topic of 249 characters", `[{"path": "/x.log", "topic": "` + strings.Repeat("t", 249) + `"}]`,
			[]Entry{{Path: "/x.log", Topic: strings.Repeat("t", 249)}}},
		{"same topic for two files", `[{"path": "/a.log", "topic": "t"}, {"path": "/b.log", "topic": "t"}]`,
			[]Entry{{Path: "/a.log", Topic: "t"}, {Path: "/b.log", Topic: "t"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems, err := ParseEntries([]byte(tt.value))
			if err != nil {
				t.Fatalf("ParseEntries: unexpected error %v", err)
			}
			if len(problems) != 0 {
				t.Errorf("problems = %v, want none", problems)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("entries = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseEntriesRejected: values of which nothing may be used. The
// source keeps the last good config for them, so none may come back as an
// (empty) list of entries.
func TestParseEntriesRejected(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []string // words the error must contain
	}{
		{"empty value", ``, []string{"not a JSON array"}},
		{"blank value", "  \n", []string{"not a JSON array"}},
		{"malformed JSON", `[{"path": "/a.log", "topic": "t"`, []string{"not a JSON array"}},
		{"trailing comma", `[{"path": "/a.log", "topic": "t"},]`, []string{"not a JSON array"}},
		{"trailing garbage", `[{"path": "/a.log", "topic": "t"}] x`, []string{"not a JSON array"}},
		{"object", `{"path": "/a.log", "topic": "t"}`, []string{"not a JSON array", `expected [{"path"`, "got a JSON object"}},
		{"string", `"/a.log"`, []string{"not a JSON array", "got a JSON string"}},
		{"number", `42`, []string{"not a JSON array"}},
		{"boolean", `true`, []string{"not a JSON array"}},
		// null would otherwise decode as an empty list and stop every file.
		{"null", `null`, []string{"not a JSON array"}},
		{"element is a number", `[{"path": "/a.log", "topic": "t"}, 1]`, []string{"entry 2", "not an object"}},
		{"element is a string", `["/a.log"]`, []string{"entry 1", "not an object"}},
		{"element is an array", `[[]]`, []string{"entry 1", "not an object"}},
		{"element is null", `[null]`, []string{"entry 1", "not an object"}},
		{"path is a number", `[{"path": "/a.log", "topic": "t"}, {"path": 1, "topic": "t"}]`,
			[]string{"entry 2", `"path"`, "string"}},
		{"topic is a number", `[{"path": "/a.log", "topic": 5}]`, []string{"entry 1", `"topic"`, "string"}},
		{"read_from is a boolean", `[{"path": "/a.log", "topic": "t", "read_from": true}]`,
			[]string{"entry 1", `"read_from"`, "string"}},
		{"path is an object", `[{"path": {"p": "/a.log"}, "topic": "t"}]`, []string{"entry 1", `"path"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems, err := ParseEntries([]byte(tt.value))
			if err == nil {
				t.Fatalf("ParseEntries(%q) = %+v, %v, nil; want an error", tt.value, got, problems)
			}
			if got != nil || problems != nil {
				t.Errorf("on error, entries = %+v and problems = %v, want both nil", got, problems)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseEntriesSkipsBadEntries: an entry wrong on its own is left out
// and reported; the entries around it stand.
func TestParseEntriesSkipsBadEntries(t *testing.T) {
	good1 := Entry{Path: "/var/log/first.log", Topic: "first"}
	good2 := Entry{Path: "/var/log/last.log", Topic: "last", ReadFrom: "beginning"}
	wrap := func(bad string) string {
		return `[{"path": "/var/log/first.log", "topic": "first"}, ` + bad +
			`, {"path": "/var/log/last.log", "topic": "last", "read_from": "beginning"}]`
	}
	tests := []struct {
		name string
		bad  string
		want []string // words the one problem must contain
	}{
		{"empty path", `{"path": "", "topic": "t"}`, []string{"entry 2", "path", "empty"}},
		{"blank path", `{"path": "   ", "topic": "t"}`, []string{"entry 2", "path", "empty"}},
		{"missing path", `{"topic": "t"}`, []string{"entry 2", "path", "empty"}},
		{"relative path", `{"path": "var/log/x.log", "topic": "t"}`, []string{"entry 2", "var/log/x.log", "absolute"}},
		{"dot-relative path", `{"path": "./x.log", "topic": "t"}`, []string{"entry 2", "absolute"}},
		{"empty topic", `{"path": "/x.log", "topic": ""}`, []string{"entry 2", "/x.log", "topic", "empty"}},
		{"missing topic", `{"path": "/x.log"}`, []string{"entry 2", "topic", "empty"}},
		{"topic with a space", `{"path": "/x.log", "topic": "web log"}`, []string{"entry 2", "web log", "topic"}},
		{"topic with a slash", `{"path": "/x.log", "topic": "web/log"}`, []string{"entry 2", "web/log", "topic"}},
		{"topic with non-ASCII", `{"path": "/x.log", "topic": "jöurnal"}`, []string{"entry 2", "topic"}},
		{"topic dot", `{"path": "/x.log", "topic": "."}`, []string{"entry 2", "topic"}},
		{"topic dot dot", `{"path": "/x.log", "topic": ".."}`, []string{"entry 2", "topic"}},
		{"topic of 250 characters", `{"path": "/x.log", "topic": "` + strings.Repeat("t", 250) + `"}`,
			[]string{"entry 2", "topic", "249"}},
		{"bad read_from", `{"path": "/x.log", "topic": "t", "read_from": "start"}`,
			[]string{"entry 2", "read_from", "start", "beginning", "end"}},
		{"read_from in capitals", `{"path": "/x.log", "topic": "t", "read_from": "END"}`,
			[]string{"entry 2", "read_from", "END"}},
		{"unknown field", `{"path": "/x.log", "topic": "t", "tpoic": "u"}`, []string{"entry 2", "unknown field", "tpoic"}},
		{"duplicate of the first", `{"path": "/var/log/first.log", "topic": "other"}`,
			[]string{"entry 2", "/var/log/first.log", "already listed", "entry 1"}},
		{"duplicate after Clean", `{"path": "/var/log/../log/./first.log", "topic": "other"}`,
			[]string{"entry 2", "/var/log/first.log", "already listed", "entry 1"}},
		{"duplicate with a double slash", `{"path": "/var//log/first.log", "topic": "first"}`,
			[]string{"entry 2", "/var/log/first.log", "already listed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems, err := ParseEntries([]byte(wrap(tt.bad)))
			if err != nil {
				t.Fatalf("ParseEntries: unexpected error %v (one bad entry must not reject the value)", err)
			}
			if want := []Entry{good1, good2}; !reflect.DeepEqual(got, want) {
				t.Errorf("entries = %+v, want %+v", got, want)
			}
			if len(problems) != 1 {
				t.Fatalf("problems = %v, want exactly one", problems)
			}
			for _, w := range tt.want {
				if !strings.Contains(problems[0].Error(), w) {
					t.Errorf("problem %q does not contain %q", problems[0], w)
				}
			}
		})
	}
}

// TestParseEntriesDuplicates: the first of several entries for one path
// wins, whatever its spelling; each later one is reported.
func TestParseEntriesDuplicates(t *testing.T) {
	value := `[
		{"path": "/a/../a/x.log", "topic": "first"},
		{"path": "/a/x.log", "topic": "second"},
		{"path": "/a/y.log", "topic": "y"},
		{"path": "/a//x.log", "topic": "third", "read_from": "beginning"}
	]`
	got, problems, err := ParseEntries([]byte(value))
	if err != nil {
		t.Fatalf("ParseEntries: %v", err)
	}
	want := []Entry{{Path: "/a/x.log", Topic: "first"}, {Path: "/a/y.log", Topic: "y"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries = %+v, want %+v", got, want)
	}
	if len(problems) != 2 {
		t.Fatalf("problems = %v, want two", problems)
	}
	for i, w := range []string{"entry 2", "entry 4"} {
		if p := problems[i].Error(); !strings.Contains(p, w) || !strings.Contains(p, "/a/x.log") || !strings.Contains(p, "entry 1") {
			t.Errorf("problem %d = %q, want it to name %s, /a/x.log and entry 1", i, p, w)
		}
	}
}

// TestParseEntriesSkipsAreNotDuplicates: a skipped entry does not claim
// its path, so a later good entry for the same path is kept.
func TestParseEntriesSkipsAreNotDuplicates(t *testing.T) {
	value := `[{"path": "/a.log", "topic": "bad topic"}, {"path": "/a.log", "topic": "good"}]`
	got, problems, err := ParseEntries([]byte(value))
	if err != nil {
		t.Fatalf("ParseEntries: %v", err)
	}
	if want := []Entry{{Path: "/a.log", Topic: "good"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("entries = %+v, want %+v", got, want)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "entry 1") {
		t.Errorf("problems = %v, want one about entry 1", problems)
	}
}

// TestParseEntriesAllBad: a non-empty list of which no entry can be used
// is rejected whole (the last good config stays), naming each problem;
// only [] means "no files".
func TestParseEntriesAllBad(t *testing.T) {
	_, _, err := ParseEntries([]byte(`[{"pth": "/x.log", "topic": "t"}, {"path": "/x.log", "topic": ""}]`))
	if err == nil {
		t.Fatal("ParseEntries accepted a list without one usable entry")
	}
	for _, want := range []string{"no usable entry (2 given)", `unknown field "pth"`, "topic is empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	got, problems, err := ParseEntries([]byte(`[]`))
	if err != nil || len(got) != 0 || len(problems) != 0 {
		t.Errorf("[]: %v, %v, %v; want no entries and no error", got, problems, err)
	}
}
