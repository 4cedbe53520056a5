package agent

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// serviceUser is the user deploy/logagent.service runs the agent as.
var serviceUser = "logagent"

func serviceUserExists() bool {
	_, err := user.Lookup(serviceUser)
	return err == nil
}

// currentUser names who runs the check.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Geteuid())
}

// unreadableByService says why the service's user could not read path,
// when the check runs as root (which reads everything) and that user
// exists; "" when it could, or when it cannot be known. From the mode
// bits of the file and of each directory above it: ACLs and capabilities
// (CAP_DAC_READ_SEARCH in the unit) are not considered.
func unreadableByService(path string) string {
	if os.Geteuid() != 0 {
		return "" // the check ran as the user itself, or as another one
	}
	u, err := user.Lookup(serviceUser)
	if err != nil {
		return ""
	}
	uid, _ := strconv.Atoi(u.Uid)
	gids := map[int]bool{}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			n, _ := strconv.Atoi(g)
			gids[n] = true
		}
	}
	may := func(p string, bits fs.FileMode) (bool, error) {
		fi, err := os.Stat(p)
		if err != nil {
			return false, err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return true, nil
		}
		m := fi.Mode().Perm()
		switch {
		case int(st.Uid) == uid:
			return m&(bits<<6) == bits<<6, nil
		case gids[int(st.Gid)]:
			return m&(bits<<3) == bits<<3, nil
		}
		return m&bits == bits, nil
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if ok, err := may(dir, 0o1); err == nil && !ok {
			return fmt.Sprintf("user %s (the service's) cannot enter %s: add it to the directory's group, or give the unit CAP_DAC_READ_SEARCH", serviceUser, dir)
		}
		if dir == "/" || dir == "." {
			break
		}
	}
	if ok, err := may(path, 0o4); err == nil && !ok {
		return fmt.Sprintf("user %s (the service's) cannot read it: make it readable by group adm (or a group of the unit's SupplementaryGroups=)", serviceUser)
	}
	return ""
}
