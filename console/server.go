// Package console is the web console in front of etcd: the fleet of
// agents and their state, each host's collect entries (edited with the
// validation the agent uses), bulk changes and the audit trail. Pages are
// html/template with a small script of our own, embedded in the binary;
// they are built on the JSON API under /api/.
package console

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/internal/osclient"
	"github.com/logagent/logagent/kafka"
)

// Server is the console's HTTP server.
type Server struct {
	cfg     conf.ConsoleServer
	cli     *clientv3.Client
	brokers []string
	// kafkaOpts are the live tail's TLS and SASL client options.
	kafkaOpts []kgo.Opt
	log       *slog.Logger
	ln        net.Listener
	tls       bool
	srv       *http.Server
	cache     *cache
	auth      *auth
	pages     *pages
	// search is the OpenSearch of the Search page; nil: not configured.
	search *osclient.Client
	// now is the clock of audit records, sessions and states.
	now func() time.Time
	// auditMax is how many audit records are kept (tests lower it).
	auditMax int

	// stop ends Run; running says Run started, and done is closed when
	// it returns.
	stop    context.Context
	cancel  context.CancelFunc
	running atomic.Bool
	done    chan struct{}
}

// New opens the listen address (a taken port is a start error) and
// prepares the server; Run serves. k is the Kafka the agents ship to, for
// the live tail (no brokers: no live tail); the tail connects with its TLS
// and SASL settings as the agent's franz-go client does.
func New(cfg conf.ConsoleServer, cli *clientv3.Client, k conf.Kafka, log *slog.Logger) (*Server, error) {
	sec, err := kafka.FranzSecurity(k)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, cli: cli, brokers: k.Brokers, kafkaOpts: sec, log: log.With("component", "console"), now: time.Now, auditMax: auditMax, done: make(chan struct{})}
	s.stop, s.cancel = context.WithCancel(context.Background())
	if s.pages, err = newPages(); err != nil {
		return nil, err
	}
	s.auth = newAuth(cfg.UsersFile, cfg.SessionTTL, s.now)
	if _, err := readUsers(cfg.UsersFile); err != nil {
		return nil, err
	}
	s.cache = newCache(cli, s.log)
	var tlsCfg *tls.Config
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("[console] tls_cert_file, tls_key_file: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.tls = true
	}
	s.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("[console] listen: %w", err)
	}
	if tlsCfg != nil {
		s.ln = tls.NewListener(s.ln, tlsCfg)
	}
	// No WriteTimeout: the event stream stays open.
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	return s, nil
}

// URL is where the console answers, e.g. http://127.0.0.1:9400.
func (s *Server) URL() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// Run serves until ctx is done or Stop is called. It loads the fleet
// from etcd, and follows it with one watch on the prefix: until etcd first
// answers, the fleet's routes answer 503.
func (s *Server) Run(ctx context.Context) error {
	s.running.Store(true)
	defer close(s.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.stop, cancel)()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.cache.follow(ctx) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
		// Event streams do not end with Shutdown: they end with ctx,
		// through the request's base context below.
	}()
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	s.log.Info("console listening", "url", s.URL())
	err := s.srv.Serve(s.ln)
	cancel()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) || s.stop.Err() != nil {
		return nil
	}
	return err
}

// Stop ends Run and waits for it; safe to call twice, and before Run
// (which then returns at once).
func (s *Server) Stop() {
	s.cancel()
	if s.running.Load() {
		<-s.done
	} else {
		s.ln.Close()
	}
}

// Roles. An editor may do everything a viewer may.
const (
	rolePublic = ""
	roleViewer = "viewer"
	roleEditor = "editor"
)

// route is one line of the route table.
type route struct {
	pattern string // net/http pattern with its method
	role    string // who may call it
	api     bool   // JSON errors and 401 instead of a redirect to the login page
	fleet   bool   // reads the fleet: 503 until the console has read it from etcd
	h       func(s *Server, w http.ResponseWriter, r *http.Request, u *session)
}

// routeTable is every URL the console answers. Each handler reads top to
// bottom: decode → authorise (done here, from role) → act → encode.
var routeTable = []route{
	{"GET /login", rolePublic, false, false, (*Server).pageLogin},
	{"GET /static/", rolePublic, false, false, (*Server).static},
	{"POST /api/login", rolePublic, true, false, (*Server).apiLogin},
	{"POST /api/logout", roleViewer, true, false, (*Server).apiLogout},
	{"GET /api/session", roleViewer, true, false, (*Server).apiSession},

	{"GET /{$}", roleViewer, false, false, (*Server).pageFleet},
	{"GET /hosts/{host}", roleViewer, false, false, (*Server).pageHost},
	{"GET /bulk", roleViewer, false, false, (*Server).pageBulk},
	{"GET /audit", roleViewer, false, false, (*Server).pageAudit},

	{"GET /api/hosts", roleViewer, true, true, (*Server).apiHosts},
	{"GET /api/hosts/{host}", roleViewer, true, true, (*Server).apiHost},
	{"PUT /api/hosts/{host}/entries", roleEditor, true, false, (*Server).apiPutEntries},
	{"POST /api/bulk/preview", roleViewer, true, true, (*Server).apiBulkPreview},
	{"POST /api/bulk/apply", roleEditor, true, true, (*Server).apiBulkApply},
	{"GET /api/audit", roleViewer, true, false, (*Server).apiAudit},
	{"GET /api/events", roleViewer, true, false, (*Server).apiEvents},
	{"GET /api/hosts/{host}/tail", roleViewer, true, true, (*Server).apiTail},
	{"GET /search", roleViewer, false, false, (*Server).pageSearch},
	{"GET /api/search", roleViewer, true, false, (*Server).apiSearch},
	{"GET /api/search/context", roleViewer, true, false, (*Server).apiSearchContext},
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routeTable {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("X-Frame-Options", "DENY")
			var u *session
			if rt.role != rolePublic {
				var err *apiError
				if u, err = s.auth.authorise(r, rt.role); err != nil {
					if !rt.api && err.Status == http.StatusUnauthorized {
						http.Redirect(w, r, "/login", http.StatusSeeOther)
						return
					}
					writeError(w, err)
					return
				}
			}
			if rt.fleet && !s.cache.ready() {
				writeError(w, errorf(http.StatusServiceUnavailable, "the console has not read the fleet from etcd yet: is etcd reachable? (it tries again every second)"))
				return
			}
			rt.h(s, w, r, u)
		})
	}
	return mux
}

// apiError is the one shape of every error the API returns:
// {"error": "...", "status": 409, ...details}.
type apiError struct {
	Status  int    `json:"status"`
	Message string `json:"error"`
	// Details, when there are: the value that won a conflict, the
	// validation problems.
	Current  *hostConfig `json:"current,omitempty"`
	Problems []string    `json:"problems,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{Status: status, Message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{Status: http.StatusInternalServerError, Message: err.Error()}
	}
	writeJSON(w, ae.Status, ae)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// maxBody bounds a request body: a collect config is small.
const maxBody = 4 << 20

// decode reads a JSON request body into v; unknown fields are refused, as
// in the ini, so that a misspelt field is not silently ignored.
func decode(r *http.Request, v any) *apiError {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "request body: %v", err)
	}
	return nil
}
