package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"

	"github.com/logagent/logagent/etcd"
)

// Bulk actions.
const (
	bulkSet    = "set"    // add the entry, or replace the one with its path
	bulkRemove = "remove" // remove the entry with path
)

// bulkRequest selects hosts and says what to change on each. Apply
// carries the revisions its preview showed: the change is made only if
// no selected key changed since.
type bulkRequest struct {
	Filter    filter           `json:"filter"`
	Action    string           `json:"action"`
	Entry     *json.RawMessage `json:"entry,omitempty"` // for set: one collect entry
	Path      string           `json:"path,omitempty"`  // for remove
	Revisions map[string]int64 `json:"revisions,omitempty"`
}

// bulkHost is one host's before → after.
type bulkHost struct {
	Host     string `json:"host"`
	Revision int64  `json:"revision"`
	Before   string `json:"before"`
	After    string `json:"after"`
	Changed  bool   `json:"changed"`
	Error    string `json:"error,omitempty"`
}

// plan computes each selected host's new value from the cache. hosts
// nil: the hosts req.Filter selects.
func (s *Server) plan(req bulkRequest, hosts map[string]int64) ([]bulkHost, *apiError) {
	var newEntry map[string]any
	switch req.Action {
	case bulkSet:
		if req.Entry == nil {
			return nil, errorf(http.StatusBadRequest, "entry is required for action set")
		}
		// The entry alone is checked as the agent checks a list.
		if _, aerr := validEntries(json.RawMessage("[" + string(*req.Entry) + "]")); aerr != nil {
			return nil, aerr
		}
		if err := json.Unmarshal(*req.Entry, &newEntry); err != nil {
			return nil, errorf(http.StatusBadRequest, "entry: %v", err)
		}
	case bulkRemove:
		if req.Path == "" {
			return nil, errorf(http.StatusBadRequest, "path is required for action remove")
		}
	default:
		return nil, errorf(http.StatusBadRequest, "action %q: want set or remove", req.Action)
	}

	var names []string
	if hosts == nil {
		rows, _ := s.rows(req.Filter)
		for _, r := range rows {
			names = append(names, r.Host)
		}
	} else {
		for h := range hosts {
			names = append(names, h)
		}
		slices.Sort(names)
	}
	var out []bulkHost
	for _, h := range names {
		d, _ := s.cache.host(h)
		b := bulkHost{Host: h, Revision: d.configRev, Before: string(d.config)}
		after, err := change(d.config, req, newEntry)
		if err != nil {
			b.Error = err.Message
		} else {
			b.After, b.Changed = string(after), !bytes.Equal(after, d.config)
		}
		out = append(out, b)
	}
	return out, nil
}

// change applies req to one host's value, keeping the other entries as
// they are, and validates the result as the agent would.
func change(value []byte, req bulkRequest, newEntry map[string]any) ([]byte, *apiError) {
	var list []map[string]any
	if len(value) > 0 {
		if _, _, err := etcd.ParseEntries(value); err != nil {
			return nil, errorf(http.StatusBadRequest, "the current collect_config is not usable (%v): fix it on the host page first", err)
		}
		if err := json.Unmarshal(value, &list); err != nil {
			return nil, errorf(http.StatusBadRequest, "the current collect_config: %v", err)
		}
	}
	target := req.Path
	if req.Action == bulkSet {
		target, _ = newEntry["path"].(string)
	}
	target = filepath.Clean(target)
	var out []map[string]any
	found := false
	for _, e := range list {
		if p, _ := e["path"].(string); filepath.Clean(p) == target {
			found = true
			if req.Action == bulkSet {
				out = append(out, newEntry)
			}
			continue
		}
		out = append(out, e)
	}
	if req.Action == bulkSet && !found {
		out = append(out, newEntry)
	}
	if out == nil {
		out = []map[string]any{}
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, "encode: %v", err)
	}
	if !found && req.Action == bulkRemove {
		return value, nil
	}
	return validEntries(raw)
}

// apiBulkPreview: POST /api/bulk/preview → each selected host's before → after.
func (s *Server) apiBulkPreview(w http.ResponseWriter, r *http.Request, _ *session) {
	var req bulkRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	hosts, err := s.plan(req, nil)
	if err != nil {
		writeError(w, err)
		return
	}
	if hosts == nil {
		hosts = []bulkHost{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"hosts": hosts})
}

// apiBulkApply: POST /api/bulk/apply with the preview's revisions → one
// transaction (chunked only beyond etcd's limit), conditioned on every
// key's revision: all or nothing. The result is given per host.
func (s *Server) apiBulkApply(w http.ResponseWriter, r *http.Request, u *session) {
	var req bulkRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Revisions) == 0 {
		writeError(w, errorf(http.StatusBadRequest, "revisions is required: {host: revision} from the preview"))
		return
	}
	hosts, aerr := s.plan(req, req.Revisions)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var changes []configChange
	var stale []changeResult
	results := map[string]changeResult{}
	for _, h := range hosts {
		switch {
		case h.Error != "":
			writeError(w, errorf(http.StatusBadRequest, "host %s: %s: nothing was changed", h.Host, h.Error))
			return
		case h.Revision != req.Revisions[h.Host]:
			// Changed since the preview (as far as this console knows
			// already): nothing is written.
			stale = append(stale, changeResult{Host: h.Host, Result: resultConflict, CurrentRevision: h.Revision})
		case !h.Changed:
			results[h.Host] = changeResult{Host: h.Host, Result: resultUnchanged}
		default:
			// Written only if the key is still where the preview saw it.
			changes = append(changes, configChange{host: h.Host, rev: req.Revisions[h.Host],
				before: []byte(h.Before), value: []byte(h.After)})
		}
	}
	if len(stale) > 0 {
		for _, c := range changes {
			results[c.host] = changeResult{Host: c.host, Result: resultNotTried}
		}
		for _, c := range stale {
			results[c.Host] = c
		}
		writeJSON(w, http.StatusConflict, map[string]any{"results": ordered(hosts, results)})
		return
	}
	res, err := s.writeConfigs(r.Context(), u, "bulk-"+req.Action, changes)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	for _, c := range res {
		results[c.Host] = c
		if c.Result != resultApplied {
			status = http.StatusConflict
		}
	}
	writeJSON(w, status, map[string]any{"results": ordered(hosts, results)})
}

// ordered lists the results in the order of hosts.
func ordered(hosts []bulkHost, results map[string]changeResult) []changeResult {
	out := []changeResult{}
	for _, h := range hosts {
		out = append(out, results[h.Host])
	}
	return out
}
