package faults

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// fileStatus is a file of the agent's status key.
type fileStatus struct {
	Path      string `json:"path"`
	State     string `json:"state"`
	LastError string `json:"last_error"`
	BytesRead int64  `json:"bytes_read"`
	LinesRead int64  `json:"lines_read"`
	LostBytes int64  `json:"lost_bytes"`
}

// statusFiles reads the agent's status key: its files by path.
func (e *env) statusFiles() map[string]fileStatus {
	e.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.etcdAddr()}, DialTimeout: 3 * time.Second,
		Logger: zap.NewNop()})
	if err != nil {
		e.t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/logagent/"+host+"/status")
	if err != nil || len(resp.Kvs) == 0 {
		return nil
	}
	var st struct {
		Files []fileStatus `json:"files"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		e.t.Fatalf("status: %v", err)
	}
	out := map[string]fileStatus{}
	for _, f := range st.Files {
		out[f.Path] = f
	}
	return out
}

// sameError reports whether got, an error in the status key, is want: the
// key cuts errors short (it is bounded), marking the cut with "…".
func sameError(got, want string) bool {
	if cut, ok := strings.CutSuffix(got, "…"); ok {
		return strings.HasPrefix(want, cut)
	}
	return got == want
}

// Issue #26: entries naming /dev/zero, a FIFO, a Unix socket, a directory
// and a symlink to /dev/zero, and a regular file replaced by a FIFO at
// rotation: each is refused, named in the status with what it is, nothing
// is read from it; the regular files beside them ship every line.
func TestSpecialFilesRefused(t *testing.T) {
	forClients(t, oneClient, func(t *testing.T, client string) {
		e := newEnv(t, "26-special-files", client, envOpts{})
		fifo := filepath.Join(e.dir, "fifo")
		if err := syscall.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(e.dir, "sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		sub := filepath.Join(e.dir, "adir")
		link := filepath.Join(e.dir, "zero-link")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/zero", link); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"/dev/zero": "/dev/zero is a character device, not a regular file",
			fifo:        fifo + " is a FIFO (named pipe), not a regular file",
			sock:        sock + " is a Unix socket, not a regular file",
			sub:         sub + " is a directory, not a regular file",
			link:        link + " (a symlink to /dev/zero) is a character device, not a regular file",
		}
		good := filepath.Join(e.dir, "good.log")
		rot := filepath.Join(e.dir, "rot.log")
		w := newWriter(t, good)
		wr := newWriter(t, rot)
		entries := []entry{{Path: good, Topic: "good", ReadFrom: "beginning"}, {Path: rot, Topic: "rot", ReadFrom: "beginning"}}
		for p := range want {
			entries = append(entries, entry{Path: p, Topic: "special", ReadFrom: "beginning"})
		}
		e.putConfig(entries...)
		a := e.startAgent()
		a.waitLogN("file opened", 2, 15*time.Second)

		w.write(1000)
		wr.write(500)
		cr := e.newChecker(rot, "rot")
		if !cr.waitLines(500, 500, 20*time.Second, 0) {
			t.Fatalf("rot.log: %d of 500 lines before the rotation", cr.distinct(500))
		}
		// Rotation to a FIFO: rot.log renamed, lines still appended to
		// the renamed file, a FIFO made at the path.
		if err := os.Rename(rot, rot+".1"); err != nil {
			t.Fatal(err)
		}
		wr.write(500)
		if err := syscall.Mkfifo(rot, 0o644); err != nil {
			t.Fatal(err)
		}
		want[rot] = rot + " is a FIFO (named pipe), not a regular file"
		w.write(1000)

		c := e.newChecker(good, "good")
		if !c.waitAll(2000, 30*time.Second) {
			t.Errorf("good.log: %d of 2000 lines", c.distinct(2000))
		}
		if !cr.waitAll(1000, 30*time.Second) {
			t.Errorf("rot.log: %d of 1000 lines (500 written to the renamed file)", cr.distinct(1000))
		}
		var files map[string]fileStatus
		ok := within(15*time.Second, func() bool {
			files = e.statusFiles()
			for p, msg := range want {
				if files[p].State != "error" || !sameError(files[p].LastError, msg) {
					return false
				}
			}
			return true
		})
		if !ok {
			for p, msg := range want {
				t.Errorf("%s: status %+v, want state error, last_error %q", p, files[p], msg)
			}
		}
		for p := range want {
			if p != rot && (files[p].BytesRead != 0 || files[p].LinesRead != 0) {
				t.Errorf("%s: %d bytes, %d lines read, want none", p, files[p].BytesRead, files[p].LinesRead)
			}
		}
		special := e.newChecker("", "special")
		special.keep = true
		special.poll(time.Second)
		if special.records != 0 {
			t.Errorf("%d records from the special files, want none", special.records)
		}
		for _, p := range []string{fifo, rot, "/dev/zero"} {
			for _, l := range openLinks(a.pid(), p) {
				if strings.HasSuffix(l, " -> "+p) {
					t.Errorf("the agent holds %s open: %s", p, l)
				}
			}
		}
		lost, dup := c.result(2000, w)
		rl, rd := cr.result(1000, wr)
		e.report(lost+rl, dup+rd, 3000, "")
		if lost+rl != 0 || dup+rd != 0 || c.bad+cr.bad != 0 {
			t.Fatalf("lost=%d dup=%d bad=%d beside the special files, want none", lost+rl, dup+rd, c.bad+cr.bad)
		}
		a.stop()
	})
}
