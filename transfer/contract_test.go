package transfer

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/logagent/logagent/fleet"
)

func TestParseRoutes(t *testing.T) {
	tests := []struct {
		name     string
		value    string
		want     []Route
		problems []string // substrings, in order
		err      string
	}{
		{"one", `[{"topic": "web_log", "index": "logs-web"}]`, []Route{{"web_log", "logs-web"}}, nil, ""},
		{"empty", `[]`, nil, nil, ""},
		{"not an array", `{"topic": "web_log", "index": "logs-web"}`, nil, nil, `expected [{"topic": ..., "index": ...}], got a JSON object`},
		{"null", `null`, nil, nil, "not a JSON array of routes: null"},
		{"not JSON", `[{"topic": "web_log",`, nil, nil, "not a JSON array of routes"},
		{"element not an object", `["web_log"]`, nil, nil, "route 1: not an object"},
		{"wrong type", `[{"topic": 5, "index": "x"}]`, nil, nil, `route 1: field "topic" must be a string`},
		{"bad one of two", `[{"topic": "a", "index": "Logs"}, {"topic": "b", "index": "logs-b"}]`,
			[]Route{{"b", "logs-b"}}, []string{`route 1 (topic "a"): invalid index "Logs": index names are lowercase`}, ""},
		{"problems", `[{"topic": "a"}, {"index": "x"}, {"topic": "a b", "index": "x"}, {"topic": "c", "index": "_x"},
			{"topic": "d", "index": "x", "extra": 1}, {"topic": "e", "index": "x*"}, {"topic": "ok", "index": "ok"}, {"topic": "ok", "index": "other"}]`,
			[]Route{{"ok", "ok"}}, []string{`route 1 (topic "a"): "index" is required`, `route 2 (topic ""): "topic" is required`,
				`route 3 (topic "a b"): invalid topic`, `route 4 (topic "c"): invalid index "_x"`, `route 5: json: unknown field "extra"`,
				`route 6 (topic "e"): invalid index "x*"`, `route 8: topic ok is already routed by route 7; ignored`}, ""},
		{"none usable", `[{"topic": "a"}]`, nil, nil, `no usable route among 1: route 1 (topic "a"): "index" is required`},
		{"index too long", fmt.Sprintf(`[{"topic": "a", "index": %q}]`, strings.Repeat("x", 245)), nil, nil, "at most 244"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, problems, err := ParseRoutes([]byte(tc.value))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("routes %v, want %v", got, tc.want)
			}
			if len(problems) != len(tc.problems) {
				t.Fatalf("problems %v, want %d", problems, len(tc.problems))
			}
			for i, p := range problems {
				if !strings.Contains(p.Error(), tc.problems[i]) {
					t.Errorf("problem %d: %q, want %q", i+1, p, tc.problems[i])
				}
			}
		})
	}
}

func TestRouteJSONRoundTrip(t *testing.T) {
	in := []Route{{Topic: "web_log", Index: "logs-web"}}
	data, _ := json.Marshal(in)
	out, _, err := ParseRoutes(data)
	if err != nil || fmt.Sprint(out) != fmt.Sprint(in) {
		t.Fatalf("%s → %v, %v", data, out, err)
	}
	if fleet.TransferStatusKey("t1") != "/logtransfer/t1/status" || fleet.TransferConfigKey != "/logtransfer/config" {
		t.Error("key names changed: they are a contract (the console reads them)")
	}
}
