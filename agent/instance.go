package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/logagent/logagent/utils"
)

// instanceID is this installation's id, kept in data_dir: the status key
// names it, so that the agent restarted after a crash (its leased key not
// yet expired) knows the key for its own, and another agent with the same
// host does not.
func instanceID(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "instance_id")
	b, err := os.ReadFile(p)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	var r [8]byte
	rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	if err := utils.WriteFileAtomic(p, []byte(id+"\n")); err != nil {
		// A full or read-only data_dir does not stop shipping: the id
		// holds for this run (a restart after a crash then waits for the
		// old status key to expire).
		return id, fmt.Errorf("write %s: %w", p, err)
	}
	return id, nil
}

// lockDataDir takes an exclusive lock on data_dir for the process's life:
// two agents sharing one data_dir would overwrite each other's positions.
// It returns no file and no error when data_dir is read-only or full.
func lockDataDir(dataDir string) (*os.File, error) {
	p := filepath.Join(dataDir, "lock")
	// Read-only: flock needs no write access, and a file open for writing
	// would keep data_dir's file system from being remounted read-only.
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o640)
	if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOSPC) {
		return nil, nil // cannot create it: shipping goes on unlocked
	}
	if err != nil {
		return nil, fmt.Errorf("data_dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data_dir %s is in use by another logagent process (lock %s): give each agent its own data_dir", dataDir, p)
		}
		return nil, fmt.Errorf("data_dir lock %s: %w", p, err)
	}
	return f, nil
}
