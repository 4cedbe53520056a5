package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /metrics and /healthz.
func (t *Transfer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(t.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		err := t.Health()
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"status": "unhealthy", "error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	})
	return mux
}

// Health is nil unless OpenSearch refuses the bulk being sent, or the
// routes in etcd are rejected.
func (t *Transfer) Health() error {
	st := t.Status()
	var errs []error
	if st.BulkError != "" {
		errs = append(errs, errors.New("opensearch: "+st.BulkError))
	}
	if st.ConfigError != "" {
		errs = append(errs, errors.New("config: "+st.ConfigError))
	}
	return errors.Join(errs...)
}

func (t *Transfer) serveHTTP(ctx context.Context) {
	srv := &http.Server{Handler: t.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(t.http); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.log.Error("http server stopped", "err", err)
	}
}
