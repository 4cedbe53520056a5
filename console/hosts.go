package console

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/etcd"
	"github.com/logagent/logagent/fleet"
)

// Host states on the fleet page.
const (
	StateHealthy   = "healthy"
	StateDegraded  = "degraded"
	StateOffline   = "offline"
	StateNeverSeen = "never_seen"
)

// hostRow is one line of the fleet page.
type hostRow struct {
	Host   string `json:"host"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"` // why degraded or offline
	// Since is when an offline agent was last seen.
	Since         *time.Time        `json:"since,omitempty"`
	Version       string            `json:"version,omitempty"`
	StartTime     *time.Time        `json:"start_time,omitempty"`
	UptimeSeconds int64             `json:"uptime_seconds,omitempty"`
	Files         int               `json:"files"`
	FilesInError  int               `json:"files_in_error"`
	LagBytes      int64             `json:"lag_bytes"`
	Labels        map[string]string `json:"labels,omitempty"`
	// AppliedRevision is the collect_config revision the agent runs
	// with; ConfigRevision the key's current one. ConfigStale: a running
	// agent has not applied the latest config.
	AppliedRevision int64 `json:"applied_revision,omitempty"`
	ConfigRevision  int64 `json:"config_revision"`
	ConfigStale     bool  `json:"config_stale"`
	// Sys is the Sys Agent's latest headline; absent while it is off.
	Sys *fleet.SysHeadline `json:"sys,omitempty"`
}

// row derives a host's line from its keys.
func row(host string, d hostData, now time.Time) hostRow {
	r := hostRow{Host: host, ConfigRevision: d.configRev}
	switch {
	case d.hasStatus && d.status == nil:
		r.State, r.Reason = StateDegraded, d.statusErr
	case d.hasStatus:
		st := d.status
		r.Version, r.Labels = st.Version, st.Labels
		if st.Sys != nil {
			r.Sys = st.Sys.Latest
		}
		if !st.StartTime.IsZero() {
			t := st.StartTime
			r.StartTime = &t
			r.UptimeSeconds = int64(now.Sub(t).Seconds())
		}
		r.AppliedRevision = st.Config.Revision
		r.ConfigStale = d.hasConfig && st.Config.Revision != d.configRev
		var reasons []string
		if st.Health != "ok" {
			reasons = append(reasons, cmp.Or(st.Health, "the status has no health"))
		}
		if st.Config.LastError != "" {
			reasons = append(reasons, "collect_config: "+st.Config.LastError)
		}
		for _, f := range st.Files {
			r.Files++
			r.LagBytes += f.LagBytes
			if f.State == fleet.FileStateError {
				r.FilesInError++
				reasons = append(reasons, f.Path+": "+f.LastError)
			}
		}
		r.State = StateHealthy
		if len(reasons) > 0 {
			r.State, r.Reason = StateDegraded, strings.Join(reasons, "; ")
		}
	case d.lastSeen != nil:
		ls := d.lastSeen
		t := ls.Time
		r.State, r.Since, r.Version = StateOffline, &t, ls.Version
		if ls.State == fleet.LastSeenStopped {
			r.Reason = "stopped at " + t.UTC().Format(time.RFC3339)
		} else {
			r.Reason = "lost contact after " + t.UTC().Format(time.RFC3339)
		}
	default:
		r.State = StateNeverSeen
		if d.hasLastSeen {
			r.Reason = "last_seen is not a last_seen record"
		}
	}
	return r
}

// filter selects hosts, on the fleet page and for bulk changes.
type filter struct {
	Query  string   `json:"q"`      // part of the host name; '*' matches any run of characters
	States []string `json:"states"` // any of these; none = all
	Labels []string `json:"labels"` // each k=v must match
}

func (f filter) match(r hostRow) bool {
	if f.Query != "" && !matchName(f.Query, r.Host) {
		return false
	}
	if len(f.States) > 0 && !slices.Contains(f.States, r.State) {
		return false
	}
	for _, l := range f.Labels {
		k, v, _ := strings.Cut(l, "=")
		if got, ok := r.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// matchName: a query without '*' is a substring; with, a pattern on the
// whole name.
func matchName(q, name string) bool {
	if !strings.Contains(q, "*") {
		return strings.Contains(name, q)
	}
	parts := strings.Split(q, "*")
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(name, p)
		}
		j := strings.Index(name, p)
		if j < 0 {
			return false
		}
		name = name[j+len(p):]
	}
	return true
}

func filterFromQuery(r *http.Request) filter {
	q := r.URL.Query()
	f := filter{Query: q.Get("q"), Labels: q["label"]}
	for _, s := range q["state"] {
		for _, p := range strings.Split(s, ",") {
			if p != "" {
				f.States = append(f.States, p)
			}
		}
	}
	return f
}

// rows returns the rows of every host f selects, sorted by name.
func (s *Server) rows(f filter) ([]hostRow, int64) {
	hosts, rev := s.cache.snapshot()
	now := s.now()
	out := make([]hostRow, 0, len(hosts))
	for h, d := range hosts {
		if r := row(h, d, now); f.match(r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b hostRow) int { return strings.Compare(a.Host, b.Host) })
	return out, rev
}

// stateOrder puts the hosts that need a look first.
var stateOrder = map[string]int{StateDegraded: 0, StateOffline: 1, StateNeverSeen: 2, StateHealthy: 3}

var sorts = map[string]func(a, b hostRow) int{
	"host":    func(a, b hostRow) int { return strings.Compare(a.Host, b.Host) },
	"state":   func(a, b hostRow) int { return cmp.Compare(stateOrder[a.State], stateOrder[b.State]) },
	"version": func(a, b hostRow) int { return strings.Compare(a.Version, b.Version) },
	"uptime":  func(a, b hostRow) int { return cmp.Compare(a.UptimeSeconds, b.UptimeSeconds) },
	"files":   func(a, b hostRow) int { return cmp.Compare(a.Files, b.Files) },
	"errors":  func(a, b hostRow) int { return cmp.Compare(a.FilesInError, b.FilesInError) },
	"lag":     func(a, b hostRow) int { return cmp.Compare(a.LagBytes, b.LagBytes) },
	"config":  func(a, b hostRow) int { return cmp.Compare(b2i(a.ConfigStale), b2i(b.ConfigStale)) },
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// apiHosts: GET /api/hosts?q=web*&state=degraded,offline&label=role=web&sort=lag&order=desc&page=1&per_page=50
func (s *Server) apiHosts(w http.ResponseWriter, r *http.Request, _ *session) {
	q := r.URL.Query()
	f := filterFromQuery(r)
	by := cmp.Or(q.Get("sort"), "host")
	less, ok := sorts[by]
	if !ok {
		writeError(w, errorf(http.StatusBadRequest, "sort %q: want one of host, state, version, uptime, files, errors, lag, config", by))
		return
	}
	page, perPage, err := pageParams(q.Get("page"), q.Get("per_page"))
	if err != nil {
		writeError(w, err)
		return
	}

	rows, rev := s.rows(f)
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.State]++
	}
	slices.SortStableFunc(rows, less)
	if q.Get("order") == "desc" {
		slices.Reverse(rows)
	}
	total := len(rows)
	from := min((page-1)*perPage, total)
	rows = rows[from:min(from+perPage, total)]

	writeJSON(w, http.StatusOK, map[string]any{"hosts": rows, "total": total, "page": page, "per_page": perPage,
		"states": counts, "revision": rev})
}

func pageParams(page, perPage string) (int, int, *apiError) {
	p, n := 1, 50
	var err error
	if page != "" {
		if p, err = strconv.Atoi(page); err != nil || p < 1 {
			return 0, 0, errorf(http.StatusBadRequest, "page %q: want a number from 1", page)
		}
	}
	if perPage != "" {
		if n, err = strconv.Atoi(perPage); err != nil || n < 1 || n > 1000 {
			return 0, 0, errorf(http.StatusBadRequest, "per_page %q: want a number from 1 to 1000", perPage)
		}
	}
	return p, n, nil
}

// hostConfig is a host's collect_config as the console shows it.
type hostConfig struct {
	Raw      string       `json:"raw"`      // the key's value as stored ("" when absent)
	Revision int64        `json:"revision"` // its ModRevision: a save is conditioned on it (0: absent)
	Entries  []etcd.Entry `json:"entries"`
	Problems []string     `json:"problems,omitempty"` // entries the agent ignores
	Error    string       `json:"error,omitempty"`    // the value is not usable at all
}

func newHostConfig(value []byte, rev int64) *hostConfig {
	hc := &hostConfig{Raw: string(value), Revision: rev, Entries: []etcd.Entry{}}
	if rev == 0 {
		return hc
	}
	entries, problems, err := etcd.ParseEntries(value)
	if err != nil {
		hc.Error = err.Error()
		return hc
	}
	if entries != nil {
		hc.Entries = entries
	}
	hc.Problems = errorStrings(problems)
	return hc
}

func errorStrings(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// apiHost: GET /api/hosts/{host} → its row, collect config and files.
func (s *Server) apiHost(w http.ResponseWriter, r *http.Request, _ *session) {
	host := r.PathValue("host")
	d, ok := s.cache.host(host)
	if !ok {
		writeError(w, errorf(http.StatusNotFound, "host %q has no collect_config, status or last_seen key in etcd", host))
		return
	}
	out := map[string]any{"host": row(host, d, s.now()), "config": newHostConfig(d.config, d.configRev),
		"files": []fleet.FileStatus{}}
	if d.status != nil {
		out["files"] = d.status.Files
		out["status"] = d.status
	}
	writeJSON(w, http.StatusOK, out)
}

// apiPutEntries: PUT /api/hosts/{host}/entries {"revision": N, "entries": [...]}
// writes the host's collect_config if it is still at revision N (0: the
// key must not exist yet). The entries are checked by etcd.ParseEntries,
// the agent's own validation; an entry the agent would ignore is refused
// too. A concurrent change answers 409 with the current value.
func (s *Server) apiPutEntries(w http.ResponseWriter, r *http.Request, u *session) {
	host := r.PathValue("host")
	var req struct {
		Revision *int64          `json:"revision"`
		Entries  json.RawMessage `json:"entries"`
	}
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Revision == nil {
		writeError(w, errorf(http.StatusBadRequest, "revision is required: the collect_config revision the entries were loaded at (0 for a new key)"))
		return
	}
	if !hostRE.MatchString(host) {
		writeError(w, errorf(http.StatusBadRequest, "invalid host %q", host))
		return
	}
	value, aerr := validEntries(req.Entries)
	if aerr != nil {
		writeError(w, aerr)
		return
	}

	conflict := func(cur []byte, curRev int64) {
		e := errorf(http.StatusConflict, "the collect_config of %s changed since it was loaded (revision %d, now %d): nothing was saved; reload, or merge your change into the current value",
			host, *req.Revision, curRev)
		e.Current = newHostConfig(cur, curRev)
		writeError(w, e)
	}
	// The value before, for the audit record: the write below is
	// conditioned on the same revision.
	before, err := s.cli.Get(r.Context(), fleet.ConfigKey(host))
	if err != nil {
		writeError(w, fmt.Errorf("read %s: %w", fleet.ConfigKey(host), err))
		return
	}
	var cur []byte
	var curRev int64
	if len(before.Kvs) > 0 {
		cur, curRev = before.Kvs[0].Value, before.Kvs[0].ModRevision
	}
	if curRev != *req.Revision {
		conflict(cur, curRev)
		return
	}
	res, err := s.writeConfigs(r.Context(), u, "edit", []configChange{{host: host, rev: curRev, before: cur, value: value}})
	if err != nil {
		writeError(w, err)
		return
	}
	if c := res[0]; c.Result != resultApplied {
		conflict(c.current, c.CurrentRevision)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"host": host, "config": newHostConfig(value, res[0].Revision)})
}

// hostRE is what a host may be (conf's [agent] host rule): a path segment
// of the etcd keys; '_' names are the console's own.
var hostRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$`)

// validEntries checks a collect_config value with the agent's own
// validation and returns it as it is stored. An entry the agent would
// leave out is an error here: the console never writes what the agent
// ignores.
func validEntries(raw json.RawMessage) ([]byte, *apiError) {
	if len(raw) == 0 {
		return nil, errorf(http.StatusBadRequest, "entries is required: a JSON array of {\"path\", \"topic\"}")
	}
	entries, problems, err := etcd.ParseEntries(raw)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid collect_config: %v", err)
	}
	if len(problems) > 0 {
		e := errorf(http.StatusBadRequest, "invalid collect_config: %d entries would be ignored by the agent", len(problems))
		e.Problems = errorStrings(problems)
		return nil, e
	}
	if entries == nil {
		entries = []etcd.Entry{}
	}
	value, merr := json.MarshalIndent(entries, "", "  ")
	if merr != nil {
		return nil, errorf(http.StatusInternalServerError, "encode entries: %v", merr)
	}
	return value, nil
}

// Results of one host's write.
const (
	resultApplied   = "applied"
	resultConflict  = "conflict"    // this host's key changed since it was read
	resultNotTried  = "not_applied" // another key of the same transaction changed
	resultUnchanged = "unchanged"
)

// configChange is one host's new collect_config, to be written if the
// key is still at rev.
type configChange struct {
	host   string
	rev    int64
	before []byte
	value  []byte
}

// changeResult is what became of one configChange.
type changeResult struct {
	Host            string `json:"host"`
	Result          string `json:"result"`
	Revision        int64  `json:"revision,omitempty"` // the key's new revision when applied
	CurrentRevision int64  `json:"current_revision,omitempty"`
	current         []byte
}

// txnHosts is how many hosts one transaction writes: each costs two
// operations (the key and its audit record), and etcd refuses a
// transaction of more than 128 (its --max-txn-ops default).
var txnHosts = 64

// writeConfigs writes every change in as few etcd transactions as etcd
// allows, each conditioned on the revision of every key it writes (all or
// nothing), together with an audit record per host.
func (s *Server) writeConfigs(ctx context.Context, u *session, action string, changes []configChange) ([]changeResult, error) {
	// A client that goes away does not stop a change half made.
	ctx = context.WithoutCancel(ctx)
	var out []changeResult
	for len(changes) > 0 {
		n := min(len(changes), txnHosts)
		res, err := s.writeChunk(ctx, u, action, changes[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
		changes = changes[n:]
	}
	if err := s.trimAudit(ctx); err != nil {
		s.log.Warn("cannot trim the audit trail", "err", err)
	}
	return out, nil
}

func (s *Server) writeChunk(ctx context.Context, u *session, action string, changes []configChange) ([]changeResult, error) {
	var cmps []clientv3.Cmp
	var puts, gets []clientv3.Op
	now := s.now().UTC()
	for i, c := range changes {
		key := fleet.ConfigKey(c.host)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", c.rev))
		rec, err := json.Marshal(auditRecord{Time: now, User: u.User, Action: action, Host: c.host,
			Before: string(c.before), After: string(c.value), BeforeRevision: c.rev})
		if err != nil {
			return nil, err
		}
		puts = append(puts, clientv3.OpPut(key, string(c.value)),
			clientv3.OpPut(auditKey(now, i, c.host), string(rec)))
		gets = append(gets, clientv3.OpGet(key))
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd transaction: %w", err)
	}
	out := make([]changeResult, len(changes))
	for i, c := range changes {
		out[i] = changeResult{Host: c.host}
		if resp.Succeeded {
			out[i].Result, out[i].Revision = resultApplied, resp.Header.Revision
			s.log.Info("collect_config written", "host", c.host, "user", u.User, "action", action, "revision", resp.Header.Revision)
			continue
		}
		var curRev int64
		var cur []byte
		if kvs := resp.Responses[i].GetResponseRange().Kvs; len(kvs) > 0 {
			curRev, cur = kvs[0].ModRevision, kvs[0].Value
		}
		out[i].CurrentRevision, out[i].current = curRev, cur
		out[i].Result = resultNotTried
		if curRev != c.rev {
			out[i].Result = resultConflict
		}
	}
	return out, nil
}
