package sysagent

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

func init() {
	registerProc("filesystem", func(fs procfs.FS) Collector { return &filesystemCollector{fs: fs, statfs: unix.Statfs} })
}

// skipFSType are the file system types that are not local storage: the
// kernel's pseudo file systems, memory-backed ones (counted in memory),
// and network file systems — whose statfs can hang while their server is
// away, which would stall every sample.
var skipFSType = map[string]bool{
	"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true, "configfs": true,
	"debugfs": true, "devpts": true, "devtmpfs": true, "efivarfs": true, "fusectl": true, "hugetlbfs": true,
	"mqueue": true, "nsfs": true, "proc": true, "pstore": true, "ramfs": true, "rpc_pipefs": true,
	"securityfs": true, "selinuxfs": true, "squashfs": true, "sysfs": true, "tracefs": true, "tmpfs": true,
	"overlay": true, "iso9660": true, "erofs": true,
	"nfs": true, "nfs4": true, "cifs": true, "smb3": true, "ceph": true, "glusterfs": true, "9p": true,
	"afs": true, "lustre": true,
}

// filesystemCollector reads the mounts of /proc/self/mountinfo and the
// size of each local one with statfs(2).
type filesystemCollector struct {
	fs     procfs.FS
	statfs func(path string, st *unix.Statfs_t) error
}

func (c *filesystemCollector) Update(r *Record, _, _ time.Time) error {
	mounts, err := c.fs.GetMounts()
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	r.Filesystem = []Filesystem{}
	seen := map[string]bool{}
	var errs []string
	for _, m := range mounts {
		if skipFSType[m.FSType] || strings.HasPrefix(m.FSType, "fuse.") {
			continue
		}
		// A file system mounted twice (bind mounts, a container's view)
		// is reported once, at its first mount point.
		if seen[m.MajorMinorVer] {
			continue
		}
		var st unix.Statfs_t
		if err := c.statfs(m.MountPoint, &st); err != nil {
			errs = append(errs, fmt.Sprintf("statfs %s: %v", m.MountPoint, err))
			continue
		}
		if st.Blocks == 0 {
			continue // nothing to store on
		}
		seen[m.MajorMinorVer] = true
		bs := uint64(st.Frsize) // statfs' block counts are in fragments
		if bs == 0 {
			bs = uint64(st.Bsize)
		}
		f := Filesystem{MountPoint: m.MountPoint, Device: m.Source, Type: m.FSType,
			Size: st.Blocks * bs, Used: (st.Blocks - st.Bfree) * bs, Free: st.Bavail * bs}
		// Used % as df shows it: of the space unprivileged users can have.
		f.UsedPct = percent(float64(f.Used), float64(f.Used+f.Free))
		if st.Files > 0 {
			f.InodesPct = percent(float64(st.Files-st.Ffree), float64(st.Files))
		}
		r.Filesystem = append(r.Filesystem, f)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
