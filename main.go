// Command logagent follows the log files listed for this host in etcd and
// ships every line to Kafka. main only wires: the command line (cli.go),
// config, logger, signals; the agent package does the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/logagent/logagent/agent"
	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
)

// version is set with -ldflags "-X main.version=..."; otherwise it comes from build info.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	inv, err := parseCLI(args, stderr)
	if err != nil {
		return exitConfig
	}
	if inv.help {
		printUsage(stdout, inv.cmd)
		return exitOK
	}
	return inv.cmd.run(&inv.opts, outputs{stdout, stderr})
}

// runAgent runs the agent until SIGTERM or SIGINT.
func runAgent(o *options, out outputs) int {
	cfg := loadConfig(o.config, out.stderr)
	if cfg == nil {
		return exitConfig
	}
	log := newLogger(cfg.Agent, out.stderr)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}

	a, err := agent.New(cfg, log, buildVersion())
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		var taken *etcd.HostTakenError
		if errors.As(err, &taken) {
			// A configuration error: restarting will not fix it.
			return exitConfig
		}
		return exitFail
	}
	return exitOK
}

// runCheck validates the config and everything the agent will talk to.
func runCheck(o *options, out outputs) int {
	cfg := loadConfig(o.config, out.stderr)
	if cfg == nil {
		return exitConfig
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(out.stdout, "note %-7s %s\n", "config", w)
	}
	if n := agent.Check(context.Background(), cfg, out.stdout); n > 0 {
		fmt.Fprintf(out.stdout, "%d problem(s)\n", n)
		return exitFail
	}
	fmt.Fprintln(out.stdout, "all checks passed")
	return exitOK
}

func runVersion(_ *options, out outputs) int {
	fmt.Fprintln(out.stdout, "logagent", buildVersion())
	return exitOK
}

// loadConfig loads the ini, or prints its one-line error and returns nil.
func loadConfig(path string, stderr io.Writer) *conf.Config {
	cfg, err := conf.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, "logagent: config:", err)
		return nil
	}
	return cfg
}

func newLogger(c conf.Agent, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.LogLevel)) // validated by conf
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
