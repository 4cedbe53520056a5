package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/logagent/logagent/conf"
)

// TestParseConsoleCLI: adduser NAME stands before or after the flags;
// the console's -config defaults to conf/console.ini; -role is empty
// unless given (adduser takes viewer then).
func TestParseConsoleCLI(t *testing.T) {
	for _, tc := range []struct {
		args, config, role string
		rest               []string
	}{
		{"console", "conf/console.ini", "", nil},
		{"console -config c.ini", "c.ini", "", nil},
		{"-config c.ini console", "c.ini", "", nil},
		{"console adduser bob -config c.ini -role editor", "c.ini", "editor", []string{"adduser", "bob"}},
		{"console -config c.ini adduser bob", "c.ini", "", []string{"adduser", "bob"}},
		{"console -role editor adduser -config c.ini bob", "c.ini", "editor", []string{"adduser", "bob"}},
	} {
		var stderr bytes.Buffer
		inv, err := parseCLI(strings.Fields(tc.args), &stderr)
		if err != nil {
			t.Errorf("%s: %v %s", tc.args, err, stderr.String())
			continue
		}
		if inv.cmd.name != "console" || inv.opts.config != tc.config || inv.opts.role != tc.role || !slices.Equal(inv.opts.args, tc.rest) {
			t.Errorf("%s: %s %+v", tc.args, inv.cmd.name, inv.opts)
		}
	}
	var stderr bytes.Buffer
	if _, err := parseCLI([]string{"check", "adduser"}, &stderr); err == nil {
		t.Error("check took an argument")
	}
}

// TestConsoleAddUser: `logagent console adduser NAME` takes the password
// from stdin and writes a bcrypt hash to the users file of the ini.
func TestConsoleAddUser(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	ini := filepath.Join(dir, "console.ini")
	os.WriteFile(ini, []byte("[console]\nusers_file = "+users+"\n[etcd]\nendpoints = 127.0.0.1:2379\n"), 0o644)
	r, w, _ := os.Pipe()
	w.WriteString("a good password\n")
	w.Close()
	var stdout, stderr bytes.Buffer
	o := &options{config: ini, role: "editor", args: []string{"adduser", "ann"}}
	if code := runAddUser(mustConsole(t, ini), o, r, outputs{&stdout, &stderr}); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	data, _ := os.ReadFile(users)
	if !strings.HasPrefix(string(data), "ann:editor:$2") || strings.Contains(string(data), "good password") {
		t.Fatalf("users file %q", data)
	}
	o.args = []string{"deluser", "ann"}
	if code := runAddUser(mustConsole(t, ini), o, r, outputs{&stdout, &stderr}); code != exitConfig {
		t.Errorf("deluser: exit %d", code)
	}
	// No password: no user.
	r2, w2, _ := os.Pipe()
	w2.Close()
	o.args = []string{"adduser", "bob"}
	if code := runAddUser(mustConsole(t, ini), o, r2, outputs{&stdout, &stderr}); code != exitFail {
		t.Errorf("empty stdin: exit %d", code)
	}
}

func mustConsole(t *testing.T, path string) *conf.Console {
	t.Helper()
	c, err := conf.LoadConsole(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
