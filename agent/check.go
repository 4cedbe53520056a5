package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/internal/glob"
	"github.com/logagent/logagent/kafka"
	"github.com/logagent/logagent/taillog"
)

// Check verifies what the agent needs, as `logagent check` does: etcd and
// the host's collect config, Kafka and the topics, and each file. It
// writes one line per finding to w and returns the number of problems.
// A file that does not exist yet is reported but is not a problem: the
// agent waits for it.
func Check(ctx context.Context, cfg *conf.Config, w io.Writer) int {
	problems := 0
	report := func(ok bool, what, format string, args ...any) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			problems++
		}
		fmt.Fprintf(w, "%s %-7s %s\n", mark, what, fmt.Sprintf(format, args...))
	}
	note := func(what, format string, args ...any) {
		fmt.Fprintf(w, "note %-7s %s\n", what, fmt.Sprintf(format, args...))
	}

	host, err := resolveHost(cfg.Agent)
	if err != nil {
		report(false, "host", "%v", err)
		return problems
	}
	report(true, "config", "host %s, data_dir %s", host, cfg.Agent.DataDir)
	if err := checkDataDir(cfg.Agent.DataDir); err != nil {
		report(false, "data", "%v", err)
	} else {
		report(true, "data", "%s is writable", cfg.Agent.DataDir)
	}

	var entries []etcd.Entry
	cli, err := newEtcdClient(cfg.Etcd)
	if err == nil {
		defer cli.Close()
		gctx, cancel := context.WithTimeout(ctx, cfg.Etcd.DialTimeout)
		var resp *clientv3.GetResponse
		resp, err = cli.Get(gctx, etcd.ConfigKey(host))
		cancel()
		switch {
		case err != nil:
		case len(resp.Kvs) == 0:
			report(false, "etcd", "%s: key %s does not exist (nothing to collect)", strings.Join(cfg.Etcd.Endpoints, ","), etcd.ConfigKey(host))
		default:
			var problems []error
			entries, problems, err = etcd.ParseEntries(resp.Kvs[0].Value)
			if err != nil {
				report(false, "etcd", "%s at revision %d: %v", etcd.ConfigKey(host), resp.Kvs[0].ModRevision, err)
				err = nil
				break
			}
			report(true, "etcd", "%s at revision %d: %d entries", etcd.ConfigKey(host), resp.Kvs[0].ModRevision, len(entries))
			for _, p := range problems {
				report(false, "entry", "%v", p)
			}
		}
	}
	if err != nil {
		report(false, "etcd", "%s: %v", strings.Join(cfg.Etcd.Endpoints, ","), err)
	}

	topics := []string{}
	for _, e := range entries {
		if !slices.Contains(topics, e.Topic) {
			topics = append(topics, e.Topic)
		}
		if glob.HasMeta(e.Path) {
			switch files, err := taillog.GlobMatches(e.Path, e.Exclude, cfg.Agent.MaxFilesPerEntry); {
			case err != nil:
				report(false, "file", "%v", err)
			case len(files) == 0:
				note("file", "%s -> %s: no file matches yet; files that appear are read from their beginning", e.Path, e.Topic)
			default:
				report(true, "file", "%s -> %s: %d files match", e.Path, e.Topic, len(files))
			}
			continue
		}
		switch fi, err := os.Stat(e.Path); {
		case os.IsNotExist(err):
			note("file", "%s -> %s: does not exist yet; read from its beginning when it appears", e.Path, e.Topic)
		case err != nil:
			report(false, "file", "%s: %v", e.Path, err)
		case taillog.NotRegular(e.Path, fi) != nil:
			// Never opened: a FIFO would block the check.
			report(false, "file", "%v", taillog.NotRegular(e.Path, fi))
		default:
			f, err := os.Open(e.Path)
			if err != nil {
				report(false, "file", "%s: %v", e.Path, err)
				continue
			}
			f.Close()
			report(true, "file", "%s -> %s: readable, %d bytes", e.Path, e.Topic, fi.Size())
		}
	}

	n, states, err := kafka.Check(cfg.Kafka, topics)
	if err != nil {
		report(false, "kafka", "%v", err)
		return problems
	}
	report(true, "kafka", "%s: %d brokers", strings.Join(cfg.Kafka.Brokers, ","), n)
	for _, st := range states {
		if st.Exists {
			report(true, "topic", "%s: %d partitions", st.Topic, st.Partitions)
		} else {
			note("topic", "%s does not exist: the broker must auto-create it (auto.create.topics.enable) or it must be created", st.Topic)
		}
		switch {
		case st.LimitErr != nil:
			note("limit", "cannot read the message size limit of topic %s (%v): batches it refuses as too large are sent again one record per batch, which is slow; grant DescribeConfigs on it, or keep [kafka] max_message_bytes within it", st.Topic, st.LimitErr)
		case st.LimitProblem != "":
			// Batches are cut to the limit; only lines too long for it are lost.
			if st.LinesSkipped {
				report(false, "limit", "%s", st.LimitProblem)
			} else {
				note("limit", "%s", st.LimitProblem)
			}
		}
	}
	return problems
}

func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	f, err := os.CreateTemp(dir, ".check*")
	if err != nil {
		return fmt.Errorf("data_dir %s is not writable: %w", dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) == nil && st.Bavail*uint64(st.Bsize) < 1<<20 {
		return fmt.Errorf("data_dir %s has less than 1 MiB free", dir)
	}
	return nil
}
