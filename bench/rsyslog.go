package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// rsyslogAvailable reports why rsyslog imfile → omkafka cannot run here.
func rsyslogAvailable() error {
	if _, err := tool("rsyslogd"); err != nil {
		return err
	}
	mods, _ := filepath.Glob("/usr/lib/*/rsyslog/omkafka.so")
	more, _ := filepath.Glob("/usr/lib/rsyslog/omkafka.so")
	if len(mods)+len(more) == 0 {
		return errors.New("rsyslog's omkafka module not installed (Debian package rsyslog-kafka; run scripts/bench-deps.sh)")
	}
	return nil
}

// rsyslogConf reads file from its beginning (no state file in a fresh
// work directory, freshStartTail off) and sends each line as it is (the
// template is the bare message, no syslog header, no newline) with lz4 and
// acks=all, librdkafka's other defaults as kcat has them.
func rsyslogConf(work, file, brokers, topic string) string {
	var bs []string
	for _, b := range strings.Split(brokers, ",") {
		bs = append(bs, fmt.Sprintf("%q", b))
	}
	return fmt.Sprintf(`# written by go run ./bench
global(workDirectory=%q)
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="bench_raw" type="string" string="%%msg%%")
ruleset(name="bench_kafka") {
  action(type="omkafka" broker=[%s] topic=%q template="bench_raw"
         confParam=["compression.codec=lz4", "request.required.acks=-1"])
}
input(type="imfile" file=%q tag="bench:" ruleset="bench_kafka" freshStartTail="off" readMode="0")
`, work, strings.Join(bs, ", "), topic, file)
}

func (e *env) runRsyslog(ctx context.Context, dir, topic string) sample {
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return sample{err: err}
	}
	conf := filepath.Join(dir, "rsyslog.conf")
	file := filepath.Join(e.dir, "a", "access.log")
	if err := os.WriteFile(conf, []byte(rsyslogConf(work, file, e.kafka.list(), topic)), 0o644); err != nil {
		return sample{err: err}
	}
	p, err := startProc(filepath.Join(dir, "rsyslogd.log"), nil, "rsyslogd", "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	if err != nil {
		return sample{err: err}
	}
	return e.finishAtOffset(ctx, p, topic)
}

// finishAtOffset waits until topic holds workload A's lines, then stops p
// (a daemon: it does not exit by itself) with SIGTERM. Its wall time ends
// when the lines were seen in Kafka.
func (e *env) finishAtOffset(ctx context.Context, p *proc, topic string) sample {
	var s sample
	at, _, werr := e.kafka.waitEndOffset(ctx, topic, int64(e.opts.lines), 25*time.Millisecond, p.done)
	s.wall = at.Sub(p.start)
	serr := p.stop(20 * time.Second)
	s.cpu, s.rssKiB = p.usage()
	s.anonKiB = p.anonKiB.Load()
	name := filepath.Base(p.name)
	switch {
	case werr != nil:
		s.err = fmt.Errorf("%v; %s output:\n%s", werr, name, p.logTail(15))
	case serr != nil && !isSignalExit(serr):
		s.err = fmt.Errorf("%s exit: %v; output:\n%s", name, serr, p.logTail(15))
	}
	return s
}

// isSignalExit: a process that ends on our SIGTERM without a handler.
func isSignalExit(err error) bool {
	return err != nil && strings.Contains(err.Error(), "signal: terminated")
}
