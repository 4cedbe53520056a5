// Package glob matches slash-separated paths against patterns with *, ?,
// [...] (path.Match's syntax, within one path element) and ** as a whole
// element, which matches any number of elements (none included). The
// entry validation (etcd) and the file matching (taillog) share it, so the
// two never disagree on what a pattern means.
package glob

import (
	"errors"
	"path"
	"strings"
)

// HasMeta tells whether s holds a glob character: a path without one is
// followed as it is.
func HasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// Validate reports a malformed pattern: an unclosed [, a bad escape, or **
// that is not a whole element (a**b).
func Validate(pattern string) error {
	for _, el := range strings.Split(pattern, "/") {
		if el == "**" {
			continue
		}
		if strings.Contains(el, "**") {
			return errors.New("** must be a whole path element (a/**/b)")
		}
		if _, err := path.Match(el, ""); err != nil {
			return errors.New("malformed pattern (unclosed [ or a trailing \\)")
		}
	}
	return nil
}

// Match tells whether name matches pattern, both cleaned absolute or both
// relative slash-separated paths. A malformed pattern matches nothing.
func Match(pattern, name string) bool {
	return matchElems(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchElems(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			// ** takes none, one, or more elements: try each split.
			rest := pat[1:]
			for len(rest) > 0 && rest[0] == "**" {
				rest = rest[1:]
			}
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchElems(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], name[0]); !ok || err != nil {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// Root is the longest leading directory of pattern without glob
// characters: the directory its matches are looked for under.
func Root(pattern string) string {
	els := strings.Split(pattern, "/")
	i := 0
	for i < len(els)-1 && !HasMeta(els[i]) {
		i++
	}
	root := strings.Join(els[:i], "/")
	if root == "" && strings.HasPrefix(pattern, "/") {
		return "/"
	}
	return root
}

// Within tells whether dir (a cleaned path in the same form as pattern)
// may hold matches of pattern, or directories that do: a walk goes into
// it only then.
func Within(pattern, dir string) bool {
	pat := strings.Split(pattern, "/")
	name := strings.Split(dir, "/")
	return prefixMatch(pat, name)
}

// prefixMatch tells whether name could be the leading elements of a path
// that matches pat.
func prefixMatch(pat, name []string) bool {
	for len(name) > 0 {
		if len(pat) == 0 {
			return false
		}
		if pat[0] == "**" {
			return true
		}
		if ok, err := path.Match(pat[0], name[0]); !ok || err != nil {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	// The directory itself: it may hold matches if the pattern goes on.
	return len(pat) > 0
}
