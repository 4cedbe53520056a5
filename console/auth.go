package console

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The users file has one user a line: name:role:bcrypt-hash. Lines
// starting with '#' and blank lines are ignored.
type user struct {
	Name, Role string
	Hash       []byte
}

var userRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// readUsers reads the users file. A missing file is an error: there is no
// default user and no default password.
func readUsers(path string) (map[string]user, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w (create a user with: logagent console adduser NAME -config FILE)", err)
	}
	users := map[string]user{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !userRE.MatchString(parts[0]) || (parts[1] != roleViewer && parts[1] != roleEditor) {
			return nil, fmt.Errorf("users file %s line %d: want name:role:bcrypt-hash, role viewer or editor", path, n)
		}
		if _, err := bcrypt.Cost([]byte(parts[2])); err != nil {
			return nil, fmt.Errorf("users file %s line %d: user %s: not a bcrypt hash: %v", path, n, parts[0], err)
		}
		users[parts[0]] = user{Name: parts[0], Role: parts[1], Hash: []byte(parts[2])}
	}
	return users, nil
}

// AddUser creates or changes name in the users file at path with role and
// the bcrypt hash of password. The file is replaced atomically (temp file
// and rename) with mode 0600; other lines are kept as they are.
func AddUser(path, name, role string, password []byte) error {
	if !userRE.MatchString(name) {
		return fmt.Errorf("invalid user name %q: letters, digits, '.', '_', '@', '-', at most 64", name)
	}
	if role != roleViewer && role != roleEditor {
		return fmt.Errorf("invalid role %q: viewer or editor", role)
	}
	if len(password) < 8 {
		return errors.New("the password must have at least 8 characters")
	}
	if len(password) > 72 {
		return errors.New("the password must have at most 72 bytes (bcrypt's limit)")
	}
	hash, err := bcrypt.GenerateFromPassword(password, bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash the password: %w", err)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var out bytes.Buffer
	replaced := false
	for _, line := range strings.Split(strings.TrimRight(string(old), "\n"), "\n") {
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, name+":") {
			line, replaced = "", true
			fmt.Fprintf(&out, "%s:%s:%s\n", name, role, hash)
			continue
		}
		out.WriteString(line + "\n")
	}
	if !replaced {
		fmt.Fprintf(&out, "%s:%s:%s\n", name, role, hash)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".users-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// session is a logged-in user.
type session struct {
	User    string `json:"user"`
	Role    string `json:"role"`
	CSRF    string `json:"csrf"` // sent back in X-CSRF-Token on every write
	token   string
	expires time.Time
}

const (
	cookieName = "logagent_session"
	csrfHeader = "X-CSRF-Token"
)

// Login throttling: after maxFails failed attempts for one user name or
// one client address, attempts are refused for a while, doubling with
// every further failure.
const (
	maxFails     = 5
	failBlock    = 30 * time.Second
	failBlockMax = 15 * time.Minute
)

type failures struct {
	n     int
	until time.Time
	last  time.Time
}

type auth struct {
	usersFile string
	ttl       time.Duration
	now       func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	fails    map[string]*failures
}

func newAuth(usersFile string, ttl time.Duration, now func() time.Time) *auth {
	return &auth{usersFile: usersFile, ttl: ttl, now: now, sessions: map[string]*session{}, fails: map[string]*failures{}}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// blocked says until when attempts for any of keys are refused.
func (a *auth) blocked(keys ...string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	var until time.Time
	for _, k := range keys {
		if f := a.fails[k]; f != nil && f.until.After(until) {
			until = f.until
		}
	}
	return until
}

func (a *auth) failed(keys ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for k, f := range a.fails {
		// Forget failures a day old: the map must not grow for ever.
		if now.Sub(f.last) > 24*time.Hour {
			delete(a.fails, k)
		}
	}
	for _, k := range keys {
		f := a.fails[k]
		if f == nil {
			f = &failures{}
			a.fails[k] = f
		}
		f.n++
		f.last = now
		if f.n >= maxFails {
			d := min(failBlock<<min(f.n-maxFails, 10), failBlockMax)
			f.until = now.Add(d)
		}
	}
}

// login checks name and password against the users file, read at each
// attempt so that adduser takes effect without a restart.
func (a *auth) login(name, password, client string) (*session, *apiError) {
	keys := []string{"user:" + name, "addr:" + client}
	if until := a.blocked(keys...); until.After(a.now()) {
		return nil, errorf(http.StatusTooManyRequests, "too many failed logins; try again after %s", until.UTC().Format(time.RFC3339))
	}
	users, err := readUsers(a.usersFile)
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, "%v", err)
	}
	u, ok := users[name]
	hash := u.Hash
	if !ok {
		// The same bcrypt work for an unknown name: the answer's time
		// does not tell which names exist.
		hash = dummyHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok {
		a.failed(keys...)
		return nil, errorf(http.StatusUnauthorized, "wrong user name or password")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range keys {
		delete(a.fails, k)
	}
	now := a.now()
	for t, s := range a.sessions {
		if now.After(s.expires) {
			delete(a.sessions, t)
		}
	}
	s := &session{User: u.Name, Role: u.Role, CSRF: randomToken(), token: randomToken(), expires: now.Add(a.ttl)}
	a.sessions[s.token] = s
	return s, nil
}

var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password of anyone"), bcrypt.DefaultCost)

func (a *auth) logout(s *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, s.token)
}

// authorise finds the request's session and checks it may do what role
// may; a write (any method but GET and HEAD) must carry the session's
// CSRF token in the X-CSRF-Token header.
func (a *auth) authorise(r *http.Request, role string) (*session, *apiError) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil, errorf(http.StatusUnauthorized, "not logged in: POST /api/login first")
	}
	a.mu.Lock()
	s := a.sessions[c.Value]
	if s != nil && a.now().After(s.expires) {
		delete(a.sessions, c.Value)
		s = nil
	}
	a.mu.Unlock()
	if s == nil {
		return nil, errorf(http.StatusUnauthorized, "session expired or unknown: log in again")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(csrfHeader)
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
			return nil, errorf(http.StatusForbidden, "missing or wrong %s header (GET /api/session gives the token)", csrfHeader)
		}
	}
	if role == roleEditor && s.Role != roleEditor {
		return nil, errorf(http.StatusForbidden, "user %s is a %s: changes need the editor role", s.User, s.Role)
	}
	return s, nil
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// apiLogin: {"user", "password"} → a session cookie and {"user", "role", "csrf"}.
func (s *Server) apiLogin(w http.ResponseWriter, r *http.Request, _ *session) {
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	sess, err := s.auth.login(req.User, req.Password, clientAddr(r))
	if err != nil {
		s.log.Warn("login refused", "user", req.User, "client", clientAddr(r), "err", err.Message)
		writeError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sess.token, Path: "/", HttpOnly: true,
		Secure: s.tls, SameSite: http.SameSiteStrictMode, Expires: sess.expires})
	s.log.Info("login", "user", sess.User, "role", sess.Role, "client", clientAddr(r))
	writeJSON(w, http.StatusOK, sess)
}

func (s *Server) apiLogout(w http.ResponseWriter, r *http.Request, u *session) {
	s.auth.logout(u)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true,
		Secure: s.tls, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]string{"result": "logged out"})
}

func (s *Server) apiSession(w http.ResponseWriter, r *http.Request, u *session) {
	writeJSON(w, http.StatusOK, u)
}
