package console

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"
)

//go:embed web
var webFS embed.FS

// pages are the html/template pages; each is a shell the script fills
// from the JSON API, so that the pages and curl see the same data.
type pages struct {
	tmpl   map[string]*template.Template
	static http.Handler
}

func newPages() (*pages, error) {
	p := &pages{tmpl: map[string]*template.Template{}}
	for _, name := range []string{"login", "fleet", "host", "bulk", "audit", "search"} {
		t, err := template.ParseFS(webFS, "web/layout.html", "web/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("page %s: %w", name, err)
		}
		p.tmpl[name] = t
	}
	sub, err := fs.Sub(webFS, "web/static")
	if err != nil {
		return nil, err
	}
	p.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return p, nil
}

// pageData is what every page template gets.
type pageData struct {
	Title string
	Page  string
	User  *session
	Host  string
	// Search says the Search page has an OpenSearch to search.
	Search bool
}

func (s *Server) render(w http.ResponseWriter, name string, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Only our own script and style: no inline script, no other origin.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
	d.Page = name
	if err := s.pages.tmpl[name].ExecuteTemplate(w, "layout", d); err != nil {
		s.log.Warn("render page", "page", name, "err", err)
	}
}

func (s *Server) pageLogin(w http.ResponseWriter, r *http.Request, _ *session) {
	s.render(w, "login", pageData{Title: "Log in"})
}

func (s *Server) pageFleet(w http.ResponseWriter, r *http.Request, u *session) {
	s.render(w, "fleet", pageData{Title: "Fleet", User: u})
}

func (s *Server) pageHost(w http.ResponseWriter, r *http.Request, u *session) {
	h := r.PathValue("host")
	s.render(w, "host", pageData{Title: h, User: u, Host: h})
}

func (s *Server) pageBulk(w http.ResponseWriter, r *http.Request, u *session) {
	s.render(w, "bulk", pageData{Title: "Bulk change", User: u})
}

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request, u *session) {
	s.render(w, "audit", pageData{Title: "Audit", User: u})
}

func (s *Server) pageSearch(w http.ResponseWriter, r *http.Request, u *session) {
	s.render(w, "search", pageData{Title: "Search", User: u, Search: s.search != nil})
}

func (s *Server) static(w http.ResponseWriter, r *http.Request, _ *session) {
	s.pages.static.ServeHTTP(w, r)
}

// eventEvery bounds how often a page is told to refresh: changes closer
// together are sent as one.
const eventEvery = 500 * time.Millisecond

// apiEvents: GET /api/events is a server-sent event stream: an event
// "fleet" with the etcd revision after every change (coalesced), fed by
// the console's one watch on the prefix. Pages fetch what they show again.
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request, _ *session) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, errorf(http.StatusInternalServerError, "streaming is not supported here"))
		return
	}
	// The stream is long-lived: no server deadline applies to it.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	ch, unsubscribe := s.cache.subscribe()
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func() {
		fmt.Fprintf(w, "event: fleet\ndata: {\"revision\": %d}\n\n", s.cache.revision())
		fl.Flush()
	}
	send()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case <-ch:
			send()
			// Changes during the pause are taken as one.
			select {
			case <-r.Context().Done():
				return
			case <-time.After(eventEvery):
			}
		}
	}
}
