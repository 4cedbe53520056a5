// Package utils holds the agent's small helpers: the host's outbound IP,
// plain words for network errors, and file replacement.
package utils

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// PlainNet says in plain words why a connection failed: "connection
// refused", "timed out", "host not found", "no route to host"; else the
// error's own text.
func PlainNet(err error) string {
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.As(err, &dnsErr):
		return "host not found"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return err.Error()
}

// OutboundIP returns the local address the kernel would use to reach the
// wider network. Dialing UDP only selects a route; no packet is sent.
func OutboundIP() (string, error) {
	conn, err := net.Dial("udp", "192.0.2.1:9") // TEST-NET-1: never contacted
	if err != nil {
		return "", fmt.Errorf("find outbound IP: %w", err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// WriteFileFast replaces path with data through a temporary file renamed
// over it, without fsync: a process crash leaves the old or the new file
// (the page cache keeps both), a power loss may leave either torn.
func WriteFileFast(path string, data []byte) error { return replace(path, data, false) }

// WriteFileAtomic replaces path with data: a temporary file in the same
// directory, fsync, rename, then fsync of the directory. A crash leaves
// either the old file or the new one, never a torn one.
func WriteFileAtomic(path string, data []byte) error { return replace(path, data, true) }

// replace writes data to a temporary file beside path and renames it over
// path, fsyncing the file and then the directory when durable.
func replace(path string, data []byte, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if durable {
		if d, err := os.Open(dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}
