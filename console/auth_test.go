package console

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/logagent/logagent/fleet"
)

// TestAuthorisation: no session, no API; a viewer reads but cannot
// write; a write without the CSRF token is refused; the pages send to
// the login page.
func TestAuthorisation(t *testing.T) {
	h := newHarness(t)
	h.start()
	rev := h.put(fleet.ConfigKey("web1"), `[{"path": "/var/log/a.log", "topic": "t"}]`)
	save := map[string]any{"revision": rev, "entries": []map[string]string{{"path": "/var/log/b.log", "topic": "t"}}}
	bulk := map[string]any{"filter": map[string]any{}, "action": "remove", "path": "/var/log/a.log", "revisions": map[string]int64{"web1": rev}}

	anon := h.client()
	for _, rt := range routeTable {
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = strings.NewReplacer("{host}", "web1", "{$}", "").Replace(path)
		if rt.role == rolePublic || !rt.api {
			continue
		}
		var e apiError
		if st := anon.do(method, path, map[string]any{}, &e); st != http.StatusUnauthorized || e.Status != 401 || e.Message == "" {
			t.Errorf("%s without a session: %d %+v, want 401", rt.pattern, st, e)
		}
	}
	// A page without a session goes to the login page.
	anon.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := anon.http.Get(h.srv.URL() + "/hosts/web1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("page without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	viewer := h.login("viv")
	var sess session
	if st := viewer.do("GET", "/api/session", nil, &sess); st != 200 || sess.User != "viv" || sess.Role != roleViewer || sess.CSRF != viewer.csrf {
		t.Errorf("GET /api/session: %d %+v", st, sess)
	}
	if st := viewer.do("GET", "/api/hosts/web1", nil, nil); st != 200 {
		t.Errorf("viewer GET: %d", st)
	}
	var e apiError
	if st := viewer.do("PUT", "/api/hosts/web1/entries", save, &e); st != http.StatusForbidden || !strings.Contains(e.Message, "editor") {
		t.Errorf("viewer save: %d %+v, want 403", st, e)
	}
	if st := viewer.do("POST", "/api/bulk/apply", bulk, &e); st != http.StatusForbidden {
		t.Errorf("viewer bulk apply: %d, want 403", st)
	}

	editor := h.login("ed")
	token := editor.csrf
	editor.csrf = ""
	if st := editor.do("PUT", "/api/hosts/web1/entries", save, &e); st != http.StatusForbidden || !strings.Contains(e.Message, csrfHeader) {
		t.Errorf("save without CSRF token: %d %+v, want 403", st, e)
	}
	editor.csrf = "x" + token
	if st := editor.do("PUT", "/api/hosts/web1/entries", save, &e); st != http.StatusForbidden {
		t.Errorf("save with a wrong CSRF token: %d, want 403", st)
	}
	if _, r := h.get(fleet.ConfigKey("web1")); r != rev {
		t.Fatalf("a refused write changed the key")
	}
	editor.csrf = token
	if st := editor.do("PUT", "/api/hosts/web1/entries", save, nil); st != 200 {
		t.Errorf("editor save: %d", st)
	}

	// Logged out: the session is gone on the server too.
	if st := editor.do("POST", "/api/logout", nil, nil); st != 200 {
		t.Errorf("logout: %d", st)
	}
	if st := editor.do("GET", "/api/hosts", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("after logout: %d, want 401", st)
	}
}

// TestLoginCookieAndThrottle: the session cookie is HttpOnly and
// SameSite=Strict; failed logins are throttled per user name, even for
// the right password afterwards.
func TestLoginCookieAndThrottle(t *testing.T) {
	h := newHarness(t)
	h.start()
	c := h.client()
	req, _ := http.NewRequest("POST", h.srv.URL()+"/api/login", strings.NewReader(`{"user": "ed", "password": "`+testPassword+`"}`))
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ck := resp.Cookies()
	if len(ck) != 1 || ck[0].Name != cookieName || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Secure {
		t.Errorf("cookie %+v", ck)
	}
	var e apiError
	for i := range maxFails {
		if st := c.do("POST", "/api/login", map[string]string{"user": "viv", "password": "wrong"}, &e); st != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %+v", i, st, e)
		}
	}
	if st := c.do("POST", "/api/login", map[string]string{"user": "viv", "password": testPassword}, &e); st != http.StatusTooManyRequests {
		t.Fatalf("right password after %d failures: %d %+v, want 429", maxFails, st, e)
	}
	// After the block, the right password works (the clock moves on).
	h.srv.auth.now = func() time.Time { return time.Now().Add(failBlock + time.Second) }
	if st := c.do("POST", "/api/login", map[string]string{"user": "viv", "password": testPassword}, &e); st != 200 {
		t.Fatalf("after the block: %d %+v", st, e)
	}
	if st := c.do("POST", "/api/login", map[string]string{"user": "nobody", "password": testPassword}, &e); st != http.StatusUnauthorized {
		t.Errorf("unknown user: %d", st)
	}
}

// TestAddUser: the users file gets a bcrypt hash, mode 0600; a second
// adduser changes the user and keeps the others; bad input is refused.
func TestAddUser(t *testing.T) {
	p := t.TempDir() + "/users"
	if err := AddUser(p, "ann", roleViewer, []byte("first password")); err != nil {
		t.Fatal(err)
	}
	if err := AddUser(p, "bob", roleEditor, []byte("bob's password")); err != nil {
		t.Fatal(err)
	}
	if err := AddUser(p, "ann", roleEditor, []byte("second password")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(p)
	if strings.Contains(string(data), "password") {
		t.Fatal("the password is in the file")
	}
	users, err := readUsers(p)
	if err != nil || len(users) != 2 || users["ann"].Role != roleEditor {
		t.Fatalf("users %v %v", users, err)
	}
	a := newAuth(p, time.Hour, time.Now)
	if _, e := a.login("ann", "first password", "x"); e == nil {
		t.Error("the old password still works")
	}
	if _, e := a.login("ann", "second password", "x"); e != nil {
		t.Errorf("new password: %v", e)
	}
	for _, tc := range []struct{ name, role, pw string }{
		{"ann", "admin", "long enough"}, {"a b", roleViewer, "long enough"}, {"ann", roleViewer, "short"},
	} {
		if err := AddUser(p, tc.name, tc.role, []byte(tc.pw)); err == nil {
			t.Errorf("%+v accepted", tc)
		}
	}
}

// TestEvents: the event stream tells of a change to any host's key.
func TestEvents(t *testing.T) {
	h := newHarness(t)
	h.start()
	c := h.login("viv")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL()+"/api/events", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() string {
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				return d
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return ""
	}
	first := next()
	resp2, err := h.cli.Put(context.Background(), fleet.StatusKey("web9"), `{"host": "web9", "health": "ok"}`)
	if err != nil {
		t.Fatal(err)
	}
	for {
		d := next()
		if strings.Contains(d, `"revision": `+itoa(resp2.Header.Revision)) {
			break
		}
		if d == first {
			t.Fatalf("event %s again", d)
		}
	}
}

// TestTLS: with tls_cert_file and tls_key_file the console serves HTTPS
// and its session cookie is Secure.
func TestTLS(t *testing.T) {
	h := newHarness(t)
	h.tls = true
	h.start()
	if !strings.HasPrefix(h.srv.URL(), "https://") {
		t.Fatalf("URL %s", h.srv.URL())
	}
	c := h.client()
	resp, err := c.http.Post(h.srv.URL()+"/api/login", "application/json", strings.NewReader(`{"user": "viv", "password": "`+testPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ck := resp.Cookies(); resp.StatusCode != 200 || len(ck) != 1 || !ck[0].Secure || !ck[0].HttpOnly {
		t.Fatalf("%d %+v", resp.StatusCode, ck)
	}
}
