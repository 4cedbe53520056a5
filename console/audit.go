package console

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"encoding/json"

	"github.com/logagent/logagent/fleet"
)

// auditMax is how many changes the trail keeps: the newest.
const auditMax = 10000

// auditRecord is one change, at /logagent/_audit/<time>-<n>-<host>,
// written in the same transaction as the change itself: there is no
// change without its record.
type auditRecord struct {
	Time           time.Time `json:"time"`
	User           string    `json:"user"`
	Action         string    `json:"action"` // edit, bulk-set, bulk-remove
	Host           string    `json:"host"`
	Before         string    `json:"before"` // the collect_config value before ("" when absent)
	After          string    `json:"after"`
	BeforeRevision int64     `json:"before_revision"`
}

// auditKey sorts by time: nanoseconds, zero-padded, then the change's
// place in its transaction.
func auditKey(t time.Time, i int, host string) string {
	return fmt.Sprintf("%s%020d-%05d-%s", fleet.AuditPrefix, t.UnixNano(), i, host)
}

// trimAudit deletes the oldest records beyond s.auditMax.
func (s *Server) trimAudit(ctx context.Context) error {
	resp, err := s.cli.Get(ctx, fleet.AuditPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	extra := resp.Count - int64(s.auditMax)
	if extra <= 0 {
		return nil
	}
	old, err := s.cli.Get(ctx, fleet.AuditPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(extra))
	if err != nil {
		return err
	}
	if len(old.Kvs) == 0 {
		return nil
	}
	last := string(old.Kvs[len(old.Kvs)-1].Key)
	_, err = s.cli.Delete(ctx, string(old.Kvs[0].Key), clientv3.WithRange(last+"\x00"))
	return err
}

// apiAudit: GET /api/audit?host=web1&limit=100 → the newest changes first.
func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request, _ *session) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > auditMax {
			writeError(w, errorf(http.StatusBadRequest, "limit %q: want a number from 1 to %d", v, auditMax))
			return
		}
		limit = n
	}
	host := r.URL.Query().Get("host")
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}
	if host == "" {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.cli.Get(r.Context(), fleet.AuditPrefix, opts...)
	if err != nil {
		writeError(w, fmt.Errorf("read the audit trail: %w", err))
		return
	}
	records := []auditRecord{}
	for _, kv := range resp.Kvs {
		var rec auditRecord
		if json.Unmarshal(kv.Value, &rec) != nil || (host != "" && rec.Host != host) {
			continue
		}
		if records = append(records, rec); len(records) == limit {
			break
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": records})
}
