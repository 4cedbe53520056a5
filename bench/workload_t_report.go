package main

import (
	"fmt"
	"strings"
	"time"
)

// renderT is workload T's section of the report: the throughput table,
// then the latency table.
func renderT(x *resultT, runs int) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## T. Transfer: Kafka → OpenSearch %s (one node from scripts/opensearch.sh, 512 MiB heap, 1 shard, 0 replicas)\n\n", x.osVersion)
	if x.err != nil && len(x.bare) == 0 {
		p("failed: %s\n\n", oneLine(x.err))
		return b.String()
	}
	p("%d access-log documents (lines of %d bytes on average; the agent's headers host, path, offset, file) in one Kafka partition (lz4). "+
		"**logagent transfer**: the binary as a process with the defaults of conf/transfer.ini (5 MiB bulks, one at a time), "+
		"a consumer group of its own per run, timed from its first record consumed to its last offset committed. "+
		"**Bare bulk loop**: a child process posting the same documents (same ids, fields and bytes) in 5 MiB `_bulk` bodies, "+
		"one after the other, encoded before the clock starts, asking for and checking only each answer's `errors` flag (`filter_path=errors`; "+
		"the transfer asks for each document's status and error). "+
		"Each run writes a fresh daily index. A warm-up of the bare loop with the same documents comes first; then %d runs each, interleaved (order alternating), medians. "+
		"CPU: /proc/PID/stat (transfer, OpenSearch) or rusage (bare loop) over the timed span.\n\n", x.docs, x.lineBytes, runs)
	p("| contender | docs/s (median) | runs | CPU s per million docs | OpenSearch CPU s per million docs | peak RSS MiB | result |\n")
	p("|---|---:|---|---:|---:|---:|---|\n")
	row := func(name string, ss []tSample) float64 {
		var rates []float64
		var cpus, oscpus []float64
		var runs []string
		var rss int64
		var errs []string
		for _, s := range ss {
			if s.err != nil {
				runs = append(runs, "failed")
				errs = append(errs, oneLine(s.err))
				continue
			}
			rates = append(rates, s.rate(x.docs))
			cpus = append(cpus, s.cpu.Seconds()/float64(x.docs)*1e6)
			oscpus = append(oscpus, s.osCPU.Seconds()/float64(x.docs)*1e6)
			runs = append(runs, fmt.Sprintf("%.0f", s.rate(x.docs)))
			rss = max(rss, s.rssKiB)
		}
		res := "ok"
		if len(errs) > 0 {
			res = fmt.Sprintf("%d failed: %s", len(errs), errs[0])
		}
		m := median(rates)
		p("| %s | %.0f | %s | %.2f | %.2f | %s | %s |\n", name, m, strings.Join(runs, ", "), median(cpus), median(oscpus), mib(rss), res)
		return m
	}
	bare := row("bare bulk loop", x.bare)
	tr := row("**logagent transfer**", x.tr)
	p("\n")
	if bare > 0 && tr > 0 {
		verdict := "meets"
		if tr/bare < 0.8 {
			verdict = "misses"
		}
		var starts []time.Duration
		for _, s := range x.tr {
			if s.err == nil {
				starts = append(starts, s.start)
			}
		}
		p("The transfer indexes at %.2f× the bare loop's rate (goal ≥ 0.8×: %s). Before its clock starts, the transfer takes %s s "+
			"(median) from its start to its first record consumed (etcd, the index template, the group join). "+
			"One document compared in both indices: %s.\n\n", tr/bare, verdict, secs(median(starts)), x.same)
	}
	l := x.lat
	if l == nil {
		if x.err != nil {
			p("Latency not measured: %s\n\n", oneLine(x.err))
		}
		return b.String()
	}
	p("### Append → searchable at %d lines/s for %s\n\n", l.rate, l.dur)
	p("logagent (franz-go, defaults) follows a file written at a steady rate; each line carries the time of the write() that appended it. "+
		"`logagent transfer` (defaults) indexes the topic; the bench searches the index every %s for offsets above the last one found "+
		"and takes the answer's arrival time − the line's write time (so a figure is late by up to %s + one search). "+
		"A document is searchable after the next refresh (index refresh_interval %s). "+
		"In the same run, a Kafka consumer in the bench measures append → in Kafka, and a GET by id every 100 ms (realtime: it sees a document "+
		"as soon as its bulk is answered, before any refresh; polled every 5 ms) measures append → indexed.\n\n", l.poll, l.poll, l.refreshInterval)
	p("| lines written | found | p50 | p99 | max | append → Kafka p50 / p99 | append → indexed p50 / p99 (samples) | transfer: bulks, mean bulk | CPU %% of a core: transfer / agent / OpenSearch | result |\n")
	p("|---:|---:|---:|---:|---:|---|---|---|---|---|\n")
	res := "ok"
	if l.err != nil {
		res = "failed: " + oneLine(l.err)
	} else if l.dups > 0 {
		res = fmt.Sprintf("ok, %d duplicates", l.dups)
	}
	p("| %d | %d | %s | %s | %s | %s / %s | %s / %s (%d) | %d, %s | %.1f / %.1f / %.1f | %s |\n\n", l.written, l.seen, ms(l.p50), ms(l.p99), ms(l.max),
		ms(l.kp50), ms(l.kp99), ms(l.ip50), ms(l.ip99), l.indexedSamples, l.bulks, ms(l.bulkMean), l.trCPU, l.agentCPU, l.osCPU, res)
	return b.String()
}
