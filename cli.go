package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one subcommand of the binary: its name, one line for the
// usage, the flags it takes and what it runs. Each new part of the system
// (console, transfer) plugs in here with its own flags and config file.
type command struct {
	name    string
	summary string
	// flags declares the command's flags on fs, bound to o.
	flags func(fs *flag.FlagSet, o *options)
	// run runs the command and returns the process's exit code.
	run func(o *options, out outputs) int
	// config, if set, is the command's default -config file (the
	// agent's otherwise).
	config string
	// args, when set, says the command takes arguments (for the usage);
	// they may stand among its flags and land in options.args.
	args string
}

// options are the values of every command's flags: a flag given before the
// subcommand's name and one given after it land in the same place.
type options struct {
	config  string
	version bool
	args    []string // the command's arguments, for a command that takes some
	role    string   // console adduser -role
}

// outputs are where a command writes.
type outputs struct{ stdout, stderr io.Writer }

// configFlag is the -config flag every command that reads the ini takes.
func configFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.config, "config", "conf/config.ini", "ini configuration `file`")
}

// commands is the route table of the binary; the first is the default.
var commands = []*command{
	{name: "run", summary: "follow the files listed in etcd and ship their lines to Kafka (the default)",
		flags: configFlag, run: runAgent},
	{name: "check", summary: "validate the config and reach etcd, Kafka and every file, one line per finding",
		flags: configFlag, run: runCheck},
	{name: "transfer", summary: "index the topics listed in etcd at /logtransfer/config into OpenSearch (docs/transfer.md)",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.config, "config", "conf/transfer.ini", "transfer ini configuration `file`")
		}, run: runTransfer, config: "conf/transfer.ini"},
	{name: "console", summary: "serve the web console: every agent's state, each host's entries, bulk changes, audit",
		flags: consoleFlags, run: runConsole, config: "conf/console.ini", args: "[adduser NAME [-role viewer|editor]]"},
	{name: "version", summary: "print the version",
		flags: func(*flag.FlagSet, *options) {}, run: runVersion},
	{name: "help", summary: "print this help, or a command's: logagent help check",
		flags: func(*flag.FlagSet, *options) {}},
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// errUsage is a command line that cannot be run; the usage was printed.
var errUsage = errors.New("usage")

// invocation is a parsed command line.
type invocation struct {
	cmd  *command
	opts options
	// help is set for -h and for `help`: the usage of cmd (or of the
	// binary when cmd is nil) is printed to stdout, exit 0.
	help bool
}

// parseCLI reads `logagent [flags] [command] [flags]`. Flags may stand
// before or after the command's name. An unknown command, an unknown flag
// or a stray argument is an error after the usage is printed to stderr.
func parseCLI(args []string, stderr io.Writer) (invocation, error) {
	var inv invocation
	// Before the command's name: the flags of every command, and
	// -version, kept from the first releases.
	global := flag.NewFlagSet("logagent", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	configFlag(global, &inv.opts)
	global.BoolVar(&inv.opts.version, "version", false, "print the version and exit")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			inv.help = true
			return inv, nil
		}
		return inv, usageError(stderr, nil, err.Error())
	}
	rest := global.Args()
	inv.cmd = commands[0]
	if inv.opts.version {
		inv.cmd = findCommand("version")
	}
	if len(rest) > 0 {
		if inv.cmd = findCommand(rest[0]); inv.cmd == nil {
			return inv, usageError(stderr, nil, fmt.Sprintf("unknown command %q", rest[0]))
		}
		rest = rest[1:]
	}
	if inv.cmd.name == "help" {
		inv.help = true
		inv.cmd = nil
		if len(rest) > 0 {
			if inv.cmd = findCommand(rest[0]); inv.cmd == nil {
				return inv, usageError(stderr, nil, fmt.Sprintf("unknown command %q", rest[0]))
			}
		}
		return inv, nil
	}
	if inv.cmd.config != "" {
		given := false
		global.Visit(func(f *flag.Flag) { given = given || f.Name == "config" })
		if !given {
			inv.opts.config = inv.cmd.config
		}
	}
	fs := inv.cmd.flagSet(&inv.opts)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			inv.help = true
			return inv, nil
		}
		return inv, usageError(stderr, inv.cmd, err.Error())
	}
	for inv.cmd.args != "" && fs.NArg() > 0 {
		// An argument ends flag parsing: the flags after it are parsed too.
		inv.opts.args = append(inv.opts.args, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return inv, usageError(stderr, inv.cmd, err.Error())
		}
	}
	if fs.NArg() > 0 {
		return inv, usageError(stderr, inv.cmd, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	return inv, nil
}

func (c *command) flagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("logagent "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// Declaring a flag stores its default: keep what the flags before the
	// command's name set.
	before := *o
	c.flags(fs, o)
	*o = before
	return fs
}

// usageError prints msg and the usage of cmd (nil: the binary's) to w.
func usageError(w io.Writer, cmd *command, msg string) error {
	fmt.Fprintf(w, "logagent: %s\n\n", msg)
	printUsage(w, cmd)
	return errUsage
}

// printUsage writes the usage of cmd, or of the binary when cmd is nil.
func printUsage(w io.Writer, cmd *command) {
	if cmd != nil {
		fmt.Fprintf(w, "Usage: logagent %s [flags] %s\n\n%s\n", cmd.name, cmd.args, cmd.summary)
		fs := cmd.flagSet(&options{})
		var flags strings.Builder
		fs.SetOutput(&flags)
		fs.PrintDefaults()
		if flags.Len() > 0 {
			fmt.Fprintf(w, "\nFlags:\n%s", flags.String())
		}
		return
	}
	fmt.Fprintln(w, "Usage: logagent [command] [flags]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nFlags go before or after the command: logagent -config F check = logagent check -config F.")
	fmt.Fprintln(w, "logagent help COMMAND shows a command's flags.")
	fmt.Fprintln(w, "Exit codes: 0 done, 1 failed, 2 bad command line or configuration.")
}
