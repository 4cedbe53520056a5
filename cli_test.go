package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestParseCLI(t *testing.T) {
	for _, tc := range []struct {
		args    string
		cmd     string // "" with help: the binary's usage
		config  string
		help    bool
		wantErr string // in stderr
	}{
		{args: "", cmd: "run", config: "conf/config.ini"},
		{args: "-config a.ini", cmd: "run", config: "a.ini"},
		{args: "run -config a.ini", cmd: "run", config: "a.ini"},
		{args: "-config a.ini run", cmd: "run", config: "a.ini"},
		{args: "check", cmd: "check", config: "conf/config.ini"},
		{args: "check -config a.ini", cmd: "check", config: "a.ini"},
		// A flag before the command's name is not lost to the
		// command's own default.
		{args: "-config a.ini check", cmd: "check", config: "a.ini"},
		{args: "-config a.ini check -config b.ini", cmd: "check", config: "b.ini"},
		{args: "--config=a.ini check", cmd: "check", config: "a.ini"},
		// The transfer reads its own file unless -config says otherwise.
		{args: "transfer", cmd: "transfer", config: "conf/transfer.ini"},
		{args: "transfer -config t.ini", cmd: "transfer", config: "t.ini"},
		{args: "-config t.ini transfer", cmd: "transfer", config: "t.ini"},
		{args: "version", cmd: "version", config: "conf/config.ini"},
		{args: "-version", cmd: "version", config: "conf/config.ini"},
		{args: "-h", help: true},
		{args: "--help", help: true},
		{args: "help", help: true},
		{args: "help check", cmd: "check", help: true},
		{args: "check -h", cmd: "check", help: true},
		{args: "foo", wantErr: `unknown command "foo"`},
		{args: "foo -config x.ini", wantErr: `unknown command "foo"`},
		{args: "help nope", wantErr: `unknown command "nope"`},
		{args: "run extra", wantErr: `unexpected argument "extra"`},
		{args: "check -bogus", wantErr: "flag provided but not defined: -bogus"},
		{args: "-bogus", wantErr: "flag provided but not defined: -bogus"},
		{args: "-config", wantErr: "flag needs an argument: -config"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			var stderr bytes.Buffer
			inv, err := parseCLI(strings.Fields(tc.args), &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(stderr.String(), tc.wantErr) || !strings.Contains(stderr.String(), "Usage: logagent") {
					t.Fatalf("err %v, stderr %q; want an error %q with the usage", err, stderr.String(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v, stderr %q", err, stderr.String())
			}
			name := ""
			if inv.cmd != nil {
				name = inv.cmd.name
			}
			if name != tc.cmd || inv.help != tc.help || (!tc.help && inv.opts.config != tc.config) {
				t.Fatalf("command %q help %v config %q; want %q %v %q", name, inv.help, inv.opts.config, tc.cmd, tc.help, tc.config)
			}
		})
	}
}

// The binary's exit codes: help is not an error, a bad command line is
// one (2, like a bad config), with the usage on stderr.
func TestCLIExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"-h"}, 0, "Usage: logagent [command]", ""},
		{[]string{"help", "check"}, 0, "Usage: logagent check", ""},
		{[]string{"version"}, 0, "logagent v9.9.9-test", ""},
		{[]string{"-version"}, 0, "logagent v9.9.9-test", ""},
		{[]string{"foo", "-config", "x.ini"}, 2, "", `unknown command "foo"`},
		{[]string{"-config", "/nonexistent/a.ini", "check"}, 2, "", "/nonexistent/a.ini"},
		{[]string{"-config", "/nonexistent/a.ini"}, 2, "", "/nonexistent/a.ini"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tc.code ||
				!strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}
