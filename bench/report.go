package main

import (
	"cmp"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

type report struct {
	opts      options
	env       *env
	started   time.Time
	loadStart string
	total     time.Duration
	a         *resultA
	b         []*resultB
	c         []*resultC
	r         []*resultR
	s         *resultS
}

func median[T int64 | time.Duration | float64](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func depVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "?"
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return "?"
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
func mib(kib int64) string        { return fmt.Sprintf("%.0f", float64(kib)/1024) }
func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// oneLine keeps an error message to its first line for a table cell.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "|", "/")
}

func (r *report) render() string {
	var b strings.Builder
	e := r.env
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# logagent benchmark: measured against peers\n\n")
	host, _ := os.Hostname()
	p("- date: %s; host %s: %s, %d CPUs; %s %s/%s\n", r.started.Format("2006-01-02 15:04 MST"), host, cpuModel(),
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if e.kafka.inProcess {
		p("- broker: in-process kfake (franz-go pkg/kfake %s), 1 broker, %d partition(s) per topic, on %s. "+
			"Its CPU is the bench process's (\"bench-side CPU\"), not the contenders'.\n",
			depVersion("github.com/twmb/franz-go/pkg/kfake"), e.opts.partitions, e.kafka.list())
	} else {
		p("- broker: real Kafka at %s, %d partition(s) per topic, the broker's default replication factor\n",
			e.kafka.list(), e.opts.partitions)
	}
	if e.agentBin != "" {
		buf := "default"
		if n := e.bufferLimit.Load(); n > 0 {
			buf = fmt.Sprintf("%g MiB", float64(n)/(1<<20))
		}
		p("- logagent: %s (%s); ini: the defaults of conf/config.ini (buffer_bytes %s), with lz4, required_acks=all, "+
			"idempotent, linger 5ms spelled out%s; etcd embedded\n", firstLine(e.agentBin, "-version"), e.agentBuilt, buf, iniNote())
	}
	p("- clients: sarama %s, franz-go %s", depVersion("github.com/IBM/sarama"), depVersion("github.com/twmb/franz-go"))
	if v := grepLine("Version", "kcat", "-V"); v != "" {
		p("; kcat: %s", v)
	}
	if v := firstLine("rsyslogd", "-v"); v != "" && rsyslogAvailable() == nil {
		v, _, _ = strings.Cut(v, " compiled with")
		p("; %s with omkafka", strings.Join(strings.Fields(v), " "))
	}
	if e.otelcolAvailable() == nil {
		p("; %s (filelog, file_storage, kafka; bench/otelcol-builder.yaml)", firstLine(e.opts.otelcol, "--version"))
	}
	p("\n- command: `go run ./bench %s`; whole run took %s; 1-min load average at start %s, at end %s\n\n",
		strings.Join(os.Args[1:], " "), r.total.Round(time.Second), r.loadStart, loadAvg())

	if r.a != nil {
		r.renderA(p)
	}
	if len(r.b) > 0 {
		r.renderB(p)
	}
	if len(r.c) > 0 {
		r.renderC(p)
	}
	if len(r.r) > 0 {
		r.renderR(p)
	}
	if r.a != nil || len(r.b) > 0 || len(r.c) > 0 {
		r.renderTargets(p)
	}
	if r.s != nil {
		r.renderS(p)
	}
	return b.String()
}

type stats struct {
	ok                      int
	wall, cpu, bench, other time.Duration
	rss, anon               int64
	walls                   []string
	errs                    []string
}

func statsOf(ss []sample) stats {
	var st stats
	var walls, cpus, benches, others []time.Duration
	var rss, anon []int64
	for _, s := range ss {
		if s.err != nil {
			st.walls = append(st.walls, "fail")
			st.errs = append(st.errs, s.err.Error())
			continue
		}
		st.ok++
		walls, cpus, benches, rss = append(walls, s.wall), append(cpus, s.cpu), append(benches, s.benchCPU), append(rss, s.rssKiB)
		others, anon = append(others, s.otherCPU), append(anon, s.anonKiB)
		st.walls = append(st.walls, secs(s.wall))
	}
	st.wall, st.cpu, st.bench, st.rss, st.other = median(walls), median(cpus), median(benches), median(rss), median(others)
	st.anon = median(anon)
	return st
}

func (r *report) renderA(p func(string, ...any)) {
	a := r.a
	n := r.opts.lines
	p("## A. Throughput: %d lines already in a file, lz4, acks=all\n\n", n)
	other := "noise from unrelated work"
	if !r.env.kafka.inProcess {
		other = "the Kafka broker, if it runs on this machine, plus any unrelated work"
	}
	if a.bytes > 0 {
		p("%.1f MiB, %.1f bytes per line with its newline. Median of %d interleaved runs per contender (the order rotates each run), "+
			"each to its own fresh topic. Wall: process start until every line is acknowledged (kcat and the bare loops: "+
			"until they exit after their last ack; logagent: until `logagent_file_lines_acked_total` reaches %d, polled every 25 ms; "+
			"rsyslog: until the topic's end offset reaches %d, polled every 25 ms). CPU: user+sys from the child's rusage. "+
			"Peak RSS: the child's VmHWM, sampled every 10 ms (rusage maxrss would include the bench's own RSS: "+
			"Go starts children with vfork); anon: the peak of its RssAnon, i.e. without the pages of its mapped binary and libraries. Bench-side CPU: the bench process meanwhile (kfake, embedded etcd, the pollers). "+
			"Other procs CPU: the rest of the machine meanwhile (/proc/stat): %s.\n\n", float64(a.bytes)/(1<<20), float64(a.bytes)/float64(n), r.opts.runs, n, n, other)
	}
	p("| contender | wall s | lines/s | MiB/s | CPU s | peak RSS MiB | anon MiB | wall ÷ kcat | CPU ÷ kcat | bench-side CPU s | other procs CPU s | runs: wall s |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	st := map[string]stats{}
	for _, c := range a.contender {
		st[c.id] = statsOf(a.samples[c.id])
	}
	k, haveK := st["kcat"]
	haveK = haveK && k.ok > 0
	for _, c := range a.contender {
		if c.unavailable != nil {
			p("| %s | n/a: %s | | | | | | | | | | |\n", c.name, oneLine(c.unavailable))
			continue
		}
		s := st[c.id]
		if s.ok == 0 {
			msg := "did not run"
			if len(s.errs) > 0 {
				msg = "failed: " + oneLine(fmt.Errorf("%s", s.errs[0]))
			}
			p("| %s | %s | | | | | | | | | | %s |\n", c.name, msg, strings.Join(s.walls, ", "))
			continue
		}
		rw, rc := "", ""
		if haveK {
			rw = fmt.Sprintf("%.2f×", s.wall.Seconds()/k.wall.Seconds())
			rc = fmt.Sprintf("%.2f×", s.cpu.Seconds()/k.cpu.Seconds())
		}
		p("| %s | %s | %.0f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.name, secs(s.wall), float64(n)/s.wall.Seconds(),
			float64(a.bytes)/(1<<20)/s.wall.Seconds(), secs(s.cpu), mib(s.rss), mib(s.anon), rw, rc, secs(s.bench), secs(s.other),
			strings.Join(s.walls, ", "))
	}
	p("\n")
	if rs, ok := st["rsyslog"]; ok && rs.ok > 0 {
		for _, id := range []string{"logagent-sarama", "logagent-franz-go"} {
			if s, ok := st[id]; ok && s.ok > 0 {
				p("- %s vs rsyslog: wall %.2f×, CPU %.2f×, RSS %.2f×\n", id, s.wall.Seconds()/rs.wall.Seconds(),
					s.cpu.Seconds()/rs.cpu.Seconds(), float64(s.rss)/float64(rs.rss))
			}
		}
	}
	if la, ok := st["logagent-franz-go"]; ok && la.ok > 0 {
		for _, id := range []string{"otelcol", "otelcol-persistent"} {
			if s, ok := st[id]; ok && s.ok > 0 {
				p("- %s vs logagent-franz-go: wall %.2f×, CPU %.2f×, RSS %.2f×, anonymous RSS %.2f×\n", id, s.wall.Seconds()/la.wall.Seconds(),
					s.cpu.Seconds()/la.cpu.Seconds(), float64(s.rss)/float64(la.rss), float64(s.anon)/float64(la.anon))
			}
		}
	}
	for _, id := range []string{"logagent-sarama", "logagent-franz-go"} {
		bare := strings.TrimPrefix(id, "logagent-")
		if s, ok := st[id]; ok && s.ok > 0 {
			if bs, ok := st[bare]; ok && bs.ok > 0 {
				p("- %s vs bare %s loop: wall %.2f×, CPU %.2f×\n", id, bare, s.wall.Seconds()/bs.wall.Seconds(), s.cpu.Seconds()/bs.cpu.Seconds())
			}
		}
	}
	p("\nWhat each sends: kcat and rsyslog (librdkafka 2.0: linger 5 ms, idempotence off) and the bare loops send the line as " +
		"the record value only; logagent adds three headers per record (host, path, offset), so it sends more bytes and does " +
		"per-line bookkeeping (ack tracking, positions). The bare loops use logagent's producer settings: lz4, acks=all, " +
		"idempotent (sarama then allows one request in flight), linger 5 ms.")
	for _, c := range a.contender {
		if isOtelcol(c.id) && slices.ContainsFunc(a.samples[c.id], func(s sample) bool { return s.quoted }) {
			p(" %s: the filelog receiver makes each line a string body, which the kafka exporter's raw encoding sends "+
				"JSON-quoted (`\"...\"`, inner quotes escaped): every record is a few bytes longer than the line and is not the line's bytes.", c.id)
			break
		}
	}
	p("\n")
	var fails []string
	for _, c := range a.contender {
		if c.unavailable != nil {
			fails = append(fails, fmt.Sprintf("- %s: not run: %v", c.id, c.unavailable))
		}
		for i, s := range a.samples[c.id] {
			if s.err != nil {
				fails = append(fails, fmt.Sprintf("- %s run %d: %s", c.id, i+1, strings.ReplaceAll(s.err.Error(), "\n", "\n      ")))
			} else if s.records > int64(n) {
				fails = append(fails, fmt.Sprintf("- %s run %d: %d records for %d lines (duplicates)", c.id, i+1, s.records, n))
			}
		}
	}
	if len(fails) > 0 {
		p("\nProblems:\n\n%s\n", strings.Join(fails, "\n"))
	}
	p("\n")
}

func (r *report) renderB(p func(string, ...any)) {
	p("## B. Latency: a file written at %d lines/s for %s, followed by logagent or the collector\n\n", r.opts.latRate, r.opts.latDur)
	p("Each line carries the time of the write() that appended it; a franz-go consumer in the bench takes the time " +
		"each fetch returns. consume − write is an upper bound of append → acked (it adds the consumer's fetch).\n\n")
	p("| contender | lines written | consumed | p50 | p99 | p99.9 | max | CPU (%% of a core) | peak RSS MiB | anon MiB | Go heap in use / from OS MiB (end) | out of order | result |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, x := range r.b {
		res := "ok"
		if x.err != nil {
			res = "failed: " + oneLine(x.err)
		} else if x.dups > 0 {
			res = fmt.Sprintf("ok, %d duplicates", x.dups)
		}
		if x.quoted {
			res += "; values JSON-quoted"
		}
		heap := "–"
		if !isOtelcol(x.id) {
			heap = mib(x.end.heap>>10) + " / " + mib(x.end.sys>>10)
		}
		p("| %s | %d | %d | %s | %s | %s | %s | %.1f | %s | %s | %s | %d | %s |\n", x.id, x.written, x.received, ms(x.p50), ms(x.p99),
			ms(x.p999), ms(x.max), x.cpuPct, mib(x.rssKiB), mib(x.anonKiB), heap, x.reordered, res)
	}
	p("\nOut of order: lines consumed after a later line of the same file (one partition, so Kafka keeps the order it was sent in).\n")
	p("\n")
}

func (r *report) renderC(p func(string, ...any)) {
	o := r.opts
	p("## C. Many files: %d files × %d lines/s each, after a %s warm-up, over %s\n\n", o.files, o.fileRate, o.warmup, o.window)
	p("logagent: one etcd entry per file; the files in a few directories, shared topics. Each file is written one line at a time, at a moment of its own within each interval (1 ms slots), as files of unrelated processes are. "+
		"Peers: the same lines at the same pace, each 1 ms slot's lines in one write to a pipe that kcat -P or the bare client loop (as in A) reads and produces to one topic; "+
		"they follow no files, so their CPU is what producing alone costs at this rate. CPU from /proc/PID/stat "+
		"(utime+stime delta over the window); context switches: those of all the process's threads over the window, per second (/proc/PID/task/*/status), "+
		"a measure of its wake-ups that varies less from run to run than its CPU. RSS: peak VmRSS (and RssAnon, without the mapped binary's pages) sampled every 250 ms. Delivered: records in Kafka after the writers stop. "+
		"Each contender ran %d time(s), the contenders interleaved: the CPU is the median of the runs that succeeded (all of them listed), "+
		"the other columns are those of the median run.\n\n", o.cRuns)
	p("The collector follows the same files through one include glob (`dir*/app*.log`) and sends every line to one topic; it does not tell when it follows them all (its first poll finds them).\n\n")
	p("| contender | files (dirs, topics) | start → all followed | lines/s written | CPU (%% of a core) | runs: CPU %% | context switches/s | peak RSS MiB | anon MiB | Go heap in use / from OS MiB (end) | goroutines | delivered / written | result |\n")
	p("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|\n")
	medians := medianCPUC(r.c)
	for _, id := range contendersC {
		var ok []*resultC
		var runs []string
		var failed []string
		for _, x := range r.c {
			if x.id != id {
				continue
			}
			if x.err != nil {
				failed = append(failed, oneLine(x.err))
				runs = append(runs, "failed")
				continue
			}
			ok = append(ok, x)
			runs = append(runs, fmt.Sprintf("%.1f", x.cpuPct))
		}
		if len(runs) == 0 {
			continue
		}
		name := contenderNameC(id)
		res := "ok"
		if len(failed) > 0 {
			res = fmt.Sprintf("%d failed: %s", len(failed), failed[0])
		}
		if len(ok) == 0 {
			p("| %s | | | | | %s | | | | | | %s |\n", name, strings.Join(runs, ", "), res)
			continue
		}
		slices.SortFunc(ok, func(a, b *resultC) int { return cmp.Compare(a.cpuPct, b.cpuPct) })
		x := ok[len(ok)/2]
		cpu := medians[id]
		switch {
		case strings.HasPrefix(id, "logagent-"):
			p("| %s | %d (%d, %d) | %s s | %.0f | %.1f | %s | %.0f | %s | %s | %s / %s | %d | %d / %d | %s |\n", name, x.files, x.dirs, x.topics,
				secs(x.startup), x.rate, cpu, strings.Join(runs, ", "), x.switches, mib(x.rssKiB), mib(x.anonKiB), mib(x.end.heap>>10), mib(x.end.sys>>10), x.end.gorout,
				x.delivered, x.written, res)
		case isOtelcol(id):
			p("| %s | %d (%d, %d) | – | %.0f | %.1f | %s | %.0f | %s | %s | – | – | %d / %d | %s |\n", name, x.files, x.dirs, x.topics,
				x.rate, cpu, strings.Join(runs, ", "), x.switches, mib(x.rssKiB), mib(x.anonKiB), x.delivered, x.written, res)
		default:
			p("| %s | pipe (–, 1) | | %.0f | %.1f | %s | %.0f | %s | %s | | | %d / %d | %s |\n", name,
				x.rate, cpu, strings.Join(runs, ", "), x.switches, mib(x.rssKiB), mib(x.anonKiB), x.delivered, x.written, res)
		}
	}
	p("\n")
	var ratios []string
	for _, client := range []string{"sarama", "franz-go"} {
		agent, bare := medians["logagent-"+client], medians[client]
		if agent > 0 && bare > 0 {
			ratios = append(ratios, fmt.Sprintf("logagent with %s takes %.1f× the CPU of the bare %s loop (%.1f against %.1f %% of a core)",
				client, agent/bare, client, agent, bare))
		}
		if k := medians["kcat"]; agent > 0 && k > 0 {
			ratios = append(ratios, fmt.Sprintf("logagent with %s takes %.1f× kcat's", client, agent/k))
		}
	}
	if o, k := medians["otelcol"], medians["kcat"]; o > 0 && k > 0 {
		ratios = append(ratios, fmt.Sprintf("otelcol takes %.1f× kcat's", o/k))
	}
	if o, a := medians["otelcol"], medians["logagent-franz-go"]; o > 0 && a > 0 {
		ratios = append(ratios, fmt.Sprintf("logagent with franz-go takes %.2f× otelcol's", a/o))
	}
	if len(ratios) > 0 {
		p("Same run, CPU medians: %s.\n\n", strings.Join(ratios, "; "))
	}
}

// medianCPUC is each contender's median CPU (%% of a core) over its
// successful runs of workload C.
func medianCPUC(rs []*resultC) map[string]float64 {
	cpus := map[string][]float64{}
	for _, x := range rs {
		if x.err == nil {
			cpus[x.id] = append(cpus[x.id], x.cpuPct)
		}
	}
	out := map[string]float64{}
	for id, v := range cpus {
		out[id] = median(v)
	}
	return out
}

func contenderNameC(id string) string {
	switch id {
	case "logagent-sarama":
		return "logagent, sarama"
	case "logagent-franz-go":
		return "logagent, franz-go"
	case "kcat":
		return "kcat -P (librdkafka)"
	case "otelcol":
		return "otelcol filelog→kafka"
	default:
		return "bare " + id + " loop"
	}
}

// iniNote names the BENCH_INI overrides, if any.
func iniNote() string {
	if v := strings.TrimSpace(os.Getenv("BENCH_INI")); v != "" {
		return "; BENCH_INI overrides: " + v
	}
	return ""
}
