// Command logagent follows the log files listed for this host in etcd and
// ships every line to Kafka. main only wires: flags, config, logger,
// signals; the agent package does the work.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/logagent/logagent/agent"
	"github.com/logagent/logagent/conf"
)

// version is set with -ldflags "-X main.version=..."; otherwise it comes from build info.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

func run(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return check(args[1:], os.Stdout, stderr)
	}
	fs := flag.NewFlagSet("logagent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "conf/config.ini", "ini configuration file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if *showVersion {
		fmt.Fprintln(os.Stdout, "logagent", buildVersion())
		return exitOK
	}
	cfg := loadConfig(*configPath, stderr)
	if cfg == nil {
		return exitConfig
	}
	log := newLogger(cfg.Agent, stderr)

	a, err := agent.New(cfg, log, buildVersion())
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return exitFail
	}
	return exitOK
}

// check validates the config and everything the agent will talk to.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logagent check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "conf/config.ini", "ini configuration file")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	cfg := loadConfig(*configPath, stderr)
	if cfg == nil {
		return exitConfig
	}
	if n := agent.Check(context.Background(), cfg, stdout); n > 0 {
		fmt.Fprintf(stdout, "%d problem(s)\n", n)
		return exitFail
	}
	fmt.Fprintln(stdout, "all checks passed")
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
