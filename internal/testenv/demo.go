package testenv

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// AppendLine appends line and a newline to path (created if missing), as
// a logger would; the demos' writer.
func AppendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, line)
	f.Close()
}

// Prefix copies r's lines to stdout, each after p (a child's log in a demo).
func Prefix(p string, r io.Reader) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		fmt.Println(p + s.Text())
	}
}
