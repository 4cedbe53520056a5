// Package utils holds the agent's small helpers: the host's outbound IP and
// atomic file replacement.
package utils

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

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
func WriteFileFast(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// WriteFileAtomic replaces path with data: a temporary file in the same
// directory, fsync, rename, then fsync of the directory. A crash leaves
// either the old file or the new one, never a torn one.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
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
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
