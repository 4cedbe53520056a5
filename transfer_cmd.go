package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/transfer"
)

// runTransfer runs `logagent transfer` until SIGTERM or SIGINT.
func runTransfer(o *options, out outputs) int {
	cfg, err := conf.LoadTransfer(o.config)
	if err != nil {
		fmt.Fprintln(out.stderr, "logagent: config:", err)
		return exitConfig
	}
	log := newLogger(conf.Agent{LogLevel: cfg.Transfer.LogLevel, LogFormat: cfg.Transfer.LogFormat}, out.stderr).
		With("component", "transfer")
	t, err := transfer.New(cfg, log, buildVersion())
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := t.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return exitFail
	}
	return exitOK
}
