package main

import (
	"fmt"
	"strings"
)

// target is one row of the targets table (issue #21, item 3): logagent with
// franz-go against its peers in the same run, medians.
type target struct {
	what, measured, verdict string
}

// verdict compares got with its upper bound limit.
func verdict(got, limit float64) string {
	if got <= limit {
		return "met"
	}
	return fmt.Sprintf("missed by %.0f %%", 100*(got/limit-1))
}

// anonTargetKiB is 32 MB (10^6 bytes) in KiB.
const anonTargetKiB = 32e6 / 1024

func (r *report) targets() []target {
	var out []target
	na := func(what, why string) { out = append(out, target{what, "–", "not measured: " + why}) }
	st := map[string]stats{}
	if r.a != nil {
		for id, ss := range r.a.samples {
			st[id] = statsOf(ss)
		}
	}
	have := func(id string) bool { return st[id].ok > 0 }
	fr, k := st["logagent-franz-go"], st["kcat"]
	ratio := func(what string, got, base float64, limit float64, unit string) {
		out = append(out, target{what, fmt.Sprintf("%.2f× (%.2f %s against %.2f)", got/base, got, unit, base), verdict(got/base, limit)})
	}
	if have("logagent-franz-go") && have("kcat") {
		ratio("burst (A) wall ≤ 1.0× kcat", fr.wall.Seconds(), k.wall.Seconds(), 1.0, "s")
		ratio("burst (A) CPU ≤ 1.0× kcat", fr.cpu.Seconds(), k.cpu.Seconds(), 1.0, "CPU-s")
	} else {
		na("burst (A) wall and CPU ≤ 1.0× kcat", "A did not run logagent-franz-go and kcat")
	}
	c := medianCPUC(r.c)
	if c["logagent-franz-go"] > 0 && c["kcat"] > 0 {
		ratio(fmt.Sprintf("%d files × %d lines/s (C) CPU ≤ 1.0× kcat's from a pipe", r.opts.files, r.opts.fileRate),
			c["logagent-franz-go"], c["kcat"], 1.0, "% of a core")
	} else {
		na("many files (C) CPU ≤ 1.0× kcat's", "C did not run logagent-franz-go and kcat")
	}
	var b *resultB
	for _, x := range r.b {
		if x.id == "logagent-franz-go" && x.err == nil {
			b = x
		}
	}
	if b != nil {
		got := b.p99.Seconds() * 1000
		out = append(out, target{fmt.Sprintf("append → acked p99 ≤ 25 ms at %d lines/s (B)", r.opts.latRate),
			fmt.Sprintf("%.1f ms (append → consumed, an upper bound)", got), verdict(got, 25)})
	} else {
		na("append → acked p99 ≤ 25 ms (B)", "B did not run logagent-franz-go")
	}
	if have("logagent-franz-go") {
		out = append(out, target{"anonymous RSS peak ≤ 32 MB on the burst (A)",
			fmt.Sprintf("%.1f MB", float64(fr.anon)*1024/1e6), verdict(float64(fr.anon), anonTargetKiB)})
	}
	na("anonymous RSS peak ≤ 32 MB during a 15 s Kafka outage", "the bench has no outage run")
	if have("logagent-franz-go") && have("kcat") {
		out = append(out, target{"total RSS peak ≤ kcat's on the burst (A)",
			fmt.Sprintf("%.2f× (%s against %s MiB)", float64(fr.rss)/float64(k.rss), mib(fr.rss), mib(k.rss)), verdict(float64(fr.rss), float64(k.rss))})
	}
	if sa, bare := st["logagent-sarama"], st["sarama"]; have("logagent-sarama") && have("sarama") {
		ratio("sarama: burst wall ≤ 1.25× the bare sarama loop", sa.wall.Seconds(), bare.wall.Seconds(), 1.25, "s")
		ratio("sarama: burst CPU ≤ 1.25× the bare sarama loop", sa.cpu.Seconds(), bare.cpu.Seconds(), 1.25, "CPU-s")
	} else {
		na("sarama ≤ 1.25× the bare sarama loop", "A did not run logagent-sarama and the bare sarama loop")
	}
	return out
}

func (r *report) renderTargets(p func(string, ...any)) {
	p("## Targets (issue #21): logagent with franz-go unless named, this run, medians\n\n")
	p("| target | measured | result |\n|---|---|---|\n")
	for _, t := range r.targets() {
		p("| %s | %s | %s |\n", t.what, strings.ReplaceAll(t.measured, "|", "/"), t.verdict)
	}
	p("\n")
}
