package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSeqCountTalliesLostDuplicatedAndReordered(t *testing.T) {
	var c seqCount
	for _, seq := range []int64{1, 2, 4, 3, 3, 6, 2} {
		c.add(seq)
	}
	if c.dups != 2 || c.reordered != 1 || c.lost(6) != 1 || c.max != 6 {
		t.Fatalf("dups %d reordered %d lost %d max %d, want 2 1 1 6", c.dups, c.reordered, c.lost(6), c.max)
	}
}

func TestBareValueUnquotesTheCollectorsRawString(t *testing.T) {
	line := `10.1.2.3 - - "GET /a?q=\x HTTP/1.1" 200`
	quoted, _ := json.Marshal(line)
	got, q := bareValue(quoted)
	if string(got) != line || !q {
		t.Fatalf("bareValue(%s) = %q, %v; want the line, true", quoted, got, q)
	}
	for _, v := range []string{line, `"GET / HTTP/1.1" 200 "-"`, `"`} {
		if got, q := bareValue([]byte(v)); string(got) != v || q {
			t.Errorf("bareValue(%q) = %q, %v; want it unchanged, false", v, got, q)
		}
	}
	ts, seq, ok := parseLat(mustJSON(t, string(latLine(nil, 42, 7))[:len(latLine(nil, 42, 7))-1]))
	if !ok || ts != 42 || seq != 7 {
		t.Fatalf("parseLat of a quoted line = %d, %d, %v; want 42, 7, true", ts, seq, ok)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOtelcolConfigSendsLinesWithLz4AndAllAcks(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		b, err := otelcolConfig("/st", []string{"/f.log"}, []string{"127.0.0.1:1"}, "t", persistent)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Receivers struct {
				Filelog struct {
					Include []string `json:"include"`
					StartAt string   `json:"start_at"`
					Storage string   `json:"storage"`
				} `json:"filelog"`
			} `json:"receivers"`
			Exporters struct {
				Kafka struct {
					Logs struct {
						Topic, Encoding string
					} `json:"logs"`
					Producer struct {
						Compression  string `json:"compression"`
						RequiredAcks int    `json:"required_acks"`
						Linger       string `json:"linger"`
					} `json:"producer"`
					Queue struct {
						Storage string `json:"storage"`
						Block   bool   `json:"block_on_overflow"`
					} `json:"sending_queue"`
				} `json:"kafka"`
			} `json:"exporters"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		f, k := cfg.Receivers.Filelog, cfg.Exporters.Kafka
		if f.StartAt != "beginning" || f.Storage != "file_storage" || len(f.Include) != 1 {
			t.Errorf("filelog %+v", f)
		}
		if k.Logs.Topic != "t" || k.Logs.Encoding != "raw" || k.Producer.Compression != "lz4" || k.Producer.RequiredAcks != -1 || k.Producer.Linger != "5ms" {
			t.Errorf("kafka %+v", k)
		}
		if persistent != (k.Queue.Storage == "file_storage") || !k.Queue.Block {
			t.Errorf("persistent %v: sending_queue %+v", persistent, k.Queue)
		}
	}
}

func TestRotatingFileRenamesAwayAndCreatesAnew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w, err := createRotating(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("one\n")) //nolint:errcheck
	if err := w.rotate(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("two\n")) //nolint:errcheck
	w.Close()
	for p, want := range map[string]string{path + ".1": "one\n", path: "two\n"} {
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
}

func TestTargetsSayMetOrByHowMuchMissed(t *testing.T) {
	s := func(wall, cpu float64, rssMiB, anonKiB int64) []sample {
		return []sample{{wall: time.Duration(wall * float64(time.Second)), cpu: time.Duration(cpu * float64(time.Second)),
			rssKiB: rssMiB << 10, anonKiB: anonKiB}}
	}
	r := &report{opts: options{latRate: 10000, files: 1000, fileRate: 10}, a: &resultA{samples: map[string][]sample{
		"kcat":              s(1, 1, 40, 30000),
		"logagent-franz-go": s(0.9, 1.1, 46, 30000),
		"sarama":            s(2, 2, 40, 20000),
		"logagent-sarama":   s(2.6, 2.4, 50, 30000),
	}},
		b: []*resultB{{id: "logagent-franz-go", p99: 30 * time.Millisecond}},
		c: []*resultC{{id: "logagent-franz-go", cpuPct: 4}, {id: "kcat", cpuPct: 5}},
	}
	got := map[string]string{}
	for _, x := range r.targets() {
		got[x.what] = x.verdict
	}
	want := map[string]string{
		"burst (A) wall ≤ 1.0× kcat":                                "met",
		"burst (A) CPU ≤ 1.0× kcat":                                 "missed by 10 %",
		"1000 files × 10 lines/s (C) CPU ≤ 1.0× kcat's from a pipe": "met",
		"append → acked p99 ≤ 25 ms at 10000 lines/s (B)":           "missed by 20 %",
		"anonymous RSS peak ≤ 32 MB on the burst (A)":               "met",
		"total RSS peak ≤ kcat's on the burst (A)":                  "missed by 15 %",
		"sarama: burst wall ≤ 1.25× the bare sarama loop":           "missed by 4 %",
		"sarama: burst CPU ≤ 1.25× the bare sarama loop":            "met",
		"anonymous RSS peak ≤ 32 MB during a 15 s Kafka outage":     "not measured: the bench has no outage run",
	}
	for what, v := range want {
		if got[what] != v {
			t.Errorf("%s: %q, want %q", what, got[what], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rows %v, want %d", got, len(want))
	}
}
