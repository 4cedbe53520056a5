package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
	"github.com/logagent/logagent/internal/glob"
	"github.com/logagent/logagent/kafka"
	"github.com/logagent/logagent/taillog"
)

// Check verifies what the agent needs, as `logagent check` does: etcd and
// the host's collect config, Kafka and the topics, each file, and the
// metrics address. It writes one line per finding to w and returns the
// number of problems. Levels: FAIL is what would keep the agent from
// starting or a line from being shipped (the agent would log an error);
// note is what works now but is worth knowing (a file or key that does not
// exist yet: the agent waits for it).
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
	warn := func(what, format string, args ...any) {
		fmt.Fprintf(w, "WARN %-7s %s\n", what, fmt.Sprintf(format, args...))
	}

	host, err := resolveHost(cfg.Agent)
	if err != nil {
		report(false, "host", "%v", err)
		return problems
	}
	report(true, "config", "host %s, data_dir %s", host, cfg.Agent.DataDir)
	checkHTTPAddr(cfg.Agent.HTTPAddr, report, note)
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
		resp, err = cli.Get(gctx, fleet.ConfigKey(host))
		cancel()
		switch {
		case err != nil:
		case len(resp.Kvs) == 0:
			note("etcd", "%s: key %s does not exist: nothing to collect until it is put", strings.Join(cfg.Etcd.Endpoints, ","), fleet.ConfigKey(host))
		default:
			var problems []error
			entries, problems, err = etcd.ParseEntries(resp.Kvs[0].Value)
			if err != nil {
				report(false, "etcd", "%s at revision %d: %v", fleet.ConfigKey(host), resp.Kvs[0].ModRevision, err)
				err = nil
				break
			}
			report(true, "etcd", "%s at revision %d: %d entries", fleet.ConfigKey(host), resp.Kvs[0].ModRevision, len(entries))
			for _, p := range problems {
				report(false, "entry", "%v", p)
			}
		}
		if err == nil {
			for _, f := range etcdUpkeep(ctx, cli, cfg.Etcd.Endpoints[0], cfg.Etcd.DialTimeout) {
				warn("etcd", "%s", f)
			}
			for _, ts := range runningRefused(ctx, cli, host, cfg.Etcd.DialTimeout) {
				report(false, "topic", "%s (the running agent says, since %s); files waiting: %s", ts.Reason,
					ts.Since.UTC().Format(time.RFC3339), strings.Join(ts.Files, ", "))
			}
		}
	}
	if err != nil {
		if why := dialReason(cfg.Etcd.Endpoints, time.Second); why != "" {
			report(false, "etcd", "%s (is etcd running? check [etcd] endpoints)", why)
		} else {
			report(false, "etcd", "%v", explainEtcd(cfg.Etcd, err))
		}
	}

	if os.Geteuid() == 0 && len(entries) > 0 && !serviceUserExists() {
		note("file", "ran as root, which reads every file; user %s (the service's) does not exist here, so what it may read was not checked", serviceUser)
	}

	allow, err := taillog.NewAllowList(cfg.Agent.AllowPaths)
	if err != nil {
		report(false, "config", "%v", err)
	}
	topics := []string{}
	files := map[string][]string{} // per topic
	for _, e := range entries {
		if !slices.Contains(topics, e.Topic) {
			topics = append(topics, e.Topic)
		}
		files[e.Topic] = append(files[e.Topic], e.Path)
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
		if err := allow.Check(e.Path); err != nil {
			report(false, "file", "%v; add it to [agent] allow_paths if it is to be read", err)
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
			if why := unreadableByService(e.Path); why != "" {
				report(false, "file", "%s -> %s: readable as %s, but %s", e.Path, e.Topic, currentUser(), why)
				continue
			}
			report(true, "file", "%s -> %s: readable, %d bytes", e.Path, e.Topic, fi.Size())
		}
	}

	n, states, err := kafka.Check(cfg.Kafka, topics)
	if err != nil {
		if why := dialReason(cfg.Kafka.Brokers, time.Second); why != "" {
			report(false, "kafka", "%s (is Kafka running? check [kafka] brokers)", why)
		} else {
			report(false, "kafka", "%v", err)
		}
		return problems
	}
	report(true, "kafka", "%s: %d brokers", strings.Join(cfg.Kafka.Brokers, ","), n)
	for _, st := range states {
		if st.Exists {
			report(true, "topic", "%s: %d partitions", st.Topic, st.Partitions)
		} else {
			note("topic", "topic %s does not exist on the brokers: the broker must create it on first use (auto.create.topics.enable) or it must be created; until then %s wait",
				st.Topic, strings.Join(files[st.Topic], ", "))
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

// runningRefused is the refused topics in the running agent's status key
// (none when the agent does not run or its status cannot be read).
func runningRefused(ctx context.Context, cli *clientv3.Client, host string, timeout time.Duration) []fleet.TopicStatus {
	gctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := cli.Get(gctx, fleet.StatusKey(host))
	if err != nil || len(resp.Kvs) == 0 {
		return nil
	}
	var st struct {
		Topics []fleet.TopicStatus `json:"refused_topics"`
	}
	if json.Unmarshal(resp.Kvs[0].Value, &st) != nil {
		return nil
	}
	return st.Topics
}

// checkHTTPAddr reports whether the agent could listen on http_addr: a
// taken port fails its start.
func checkHTTPAddr(addr string, report func(bool, string, string, ...any), note func(string, string, ...any)) {
	if addr == "" {
		note("http", "[agent] http_addr is empty: no /metrics, /readyz or /status")
		return
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		report(false, "http", "[agent] http_addr %s: %v (another program, or a logagent already running here, holds it)", addr, err)
		return
	}
	l.Close()
	report(true, "http", "%s is free for /metrics, /readyz and /status", addr)
}

// etcdDefaultQuota is etcd's backend quota when it does not say its own
// (servers before 3.6): 2 GiB.
const etcdDefaultQuota = 2 << 30

// compactionSeenAfter is how many revisions an etcd must have before its
// revision 1 still being readable means it compacts nothing.
var compactionSeenAfter int64 = 10000

// etcdUpkeep says what will hurt the etcd the fleet shares (every agent's
// config path goes through it): a history never compacted, a database
// near its quota (past it etcd refuses every write, collect configs too).
func etcdUpkeep(ctx context.Context, cli *clientv3.Client, endpoint string, timeout time.Duration) []string {
	gctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := cli.Status(gctx, endpoint)
	if err != nil {
		return nil
	}
	_, err = cli.Get(gctx, fleet.ConfigKey("_"), clientv3.WithRev(1), clientv3.WithCountOnly())
	compacted := errors.Is(err, rpctypes.ErrCompacted)
	return upkeepFindings(st.DbSize, st.DbSizeQuota, st.Header.Revision, compacted)
}

func upkeepFindings(dbSize, quota, revision int64, compacted bool) []string {
	var out []string
	if !compacted && revision > compactionSeenAfter {
		out = append(out, fmt.Sprintf("etcd keeps its whole history (revision 1 of %d is still readable): it compacts nothing, and its database grows with every status write until its quota stops all writes; run etcd with --auto-compaction-mode=periodic --auto-compaction-retention=1h (see the README, Operating it)", revision))
	}
	q, said := quota, ""
	if q <= 0 {
		q, said = etcdDefaultQuota, " (etcd's default; it does not say its own)"
	}
	if dbSize > q*8/10 {
		out = append(out, fmt.Sprintf("etcd's database is %d MB of its %d MB quota%s: past it etcd refuses every write, collect configs too; compact and defragment (etcdctl defrag), or raise --quota-backend-bytes", dbSize>>20, q>>20, said))
	}
	return out
}
