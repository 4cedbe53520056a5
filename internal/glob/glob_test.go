package glob

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"/var/log/app/*.log", "/var/log/app/a.log", true},
		{"/var/log/app/*.log", "/var/log/app/a.log.1", false},
		{"/var/log/app/*.log", "/var/log/app/sub/a.log", false},
		{"/var/log/app/?.log", "/var/log/app/a.log", true},
		{"/var/log/app/?.log", "/var/log/app/ab.log", false},
		{"/var/log/app/[ab].log", "/var/log/app/b.log", true},
		{"/var/log/app/[^ab].log", "/var/log/app/b.log", false},
		{"/var/log/**/*.log", "/var/log/a.log", true},
		{"/var/log/**/*.log", "/var/log/x/y/z/a.log", true},
		{"/var/log/**/*.log", "/var/lib/a.log", false},
		{"/var/log/**", "/var/log/x/y", true},
		{"/var/log/**/app/*.log", "/var/log/app/a.log", true},
		{"/var/log/**/app/*.log", "/var/log/k/app/a.log", true},
		{"/var/log/**/app/*.log", "/var/log/k/app/x/a.log", false},
		{"/srv/*/logs/**", "/srv/web/logs/a/b.log", true},
		{"/srv/*/logs/**", "/srv/web/x/logs/b.log", false},
		{"/var/log/a.log", "/var/log/a.log", true},
		{"/var/log/[a.log", "/var/log/[a.log", false}, // malformed: matches nothing
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestRootAndWithin(t *testing.T) {
	for _, tt := range []struct{ pattern, root string }{
		{"/var/log/app/*.log", "/var/log/app"},
		{"/var/log/**/*.log", "/var/log"},
		{"/srv/*/logs/**", "/srv"},
		{"/*.log", "/"},
		{"/var/log/a.log", "/var/log"},
	} {
		if got := Root(tt.pattern); got != tt.root {
			t.Errorf("Root(%q) = %q, want %q", tt.pattern, got, tt.root)
		}
	}
	for _, tt := range []struct {
		pattern, dir string
		want         bool
	}{
		{"/srv/*/logs/*.log", "/srv/web", true},
		{"/srv/*/logs/*.log", "/srv/web/logs", true},
		{"/srv/*/logs/*.log", "/srv/web/other", false},
		{"/srv/*/logs/*.log", "/srv/web/logs/deeper", false},
		{"/var/log/**/*.log", "/var/log/a/b/c", true},
		{"/var/log/app/*.log", "/var/log/app", true},
	} {
		if got := Within(tt.pattern, tt.dir); got != tt.want {
			t.Errorf("Within(%q, %q) = %v, want %v", tt.pattern, tt.dir, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for p, ok := range map[string]bool{"/a/*.log": true, "/a/**/b": true, "/a/[b": false, "/a/b**": false, `/a/b\`: false} {
		if err := Validate(p); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v", p, err)
		}
	}
}
