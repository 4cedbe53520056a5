package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/console"
	"github.com/logagent/logagent/etcd"
)

func consoleFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.config, "config", "conf/console.ini", "console ini configuration `file`")
	fs.StringVar(&o.role, "role", "viewer", "adduser: the user's `role`, viewer or editor")
}

// runConsole serves the web console until SIGTERM or SIGINT, or, with
// `adduser NAME`, creates or changes a user in the users file.
func runConsole(o *options, out outputs) int {
	cfg, err := conf.LoadConsole(o.config)
	if err != nil {
		fmt.Fprintln(out.stderr, "logagent: config:", err)
		return exitConfig
	}
	if len(o.args) > 0 {
		return runAddUser(cfg, o, os.Stdin, out)
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Console.LogLevel)) // validated by conf
	log := slog.New(slog.NewTextHandler(out.stderr, &slog.HandlerOptions{Level: level}))

	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	cli, err := etcd.Connect(context.Background(), cfg.Etcd)
	if err != nil {
		log.Error("cannot connect to etcd", "endpoints", cfg.Etcd.Endpoints, "err", err)
		return exitFail
	}
	defer cli.Close()
	srv, err := console.New(cfg.Console, cli, cfg.Kafka, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	srv.SetSearch(cfg.OpenSearch)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return exitFail
	}
	return exitOK
}

// runAddUser: `logagent console adduser NAME -role editor -config FILE`
// reads the password from the terminal (twice, not echoed) or from the
// first line of stdin, and writes its bcrypt hash to the users file.
func runAddUser(cfg *conf.Console, o *options, stdin *os.File, out outputs) int {
	if o.args[0] != "adduser" || len(o.args) != 2 {
		fmt.Fprintf(out.stderr, "logagent console: unexpected arguments %q: want adduser NAME\n", strings.Join(o.args, " "))
		return exitConfig
	}
	name, role := o.args[1], o.role
	if role == "" {
		role = "viewer"
	}
	password, err := readPassword(stdin, out.stderr, name)
	if err != nil {
		fmt.Fprintln(out.stderr, "logagent console adduser:", err)
		return exitFail
	}
	if err := console.AddUser(cfg.Console.UsersFile, name, role, password); err != nil {
		fmt.Fprintln(out.stderr, "logagent console adduser:", err)
		return exitFail
	}
	fmt.Fprintf(out.stdout, "user %s (%s) written to %s\n", name, role, cfg.Console.UsersFile)
	return exitOK
}

// readPassword asks twice on a terminal, with echo off; from a pipe it
// takes the first line.
func readPassword(in *os.File, prompt io.Writer, name string) ([]byte, error) {
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		// Not a terminal.
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return nil, fmt.Errorf("read the password from stdin: %w", err)
		}
		return []byte(strings.TrimRight(line, "\r\n")), nil
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return nil, fmt.Errorf("turn off echo: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	r := bufio.NewReader(in)
	ask := func(p string) (string, error) {
		fmt.Fprint(prompt, p)
		line, err := r.ReadString('\n')
		fmt.Fprintln(prompt)
		return strings.TrimRight(line, "\r\n"), err
	}
	first, err := ask("Password for " + name + ": ")
	if err != nil {
		return nil, err
	}
	again, err := ask("Again: ")
	if err != nil {
		return nil, err
	}
	if first != again {
		return nil, errors.New("the passwords differ")
	}
	return []byte(first), nil
}
