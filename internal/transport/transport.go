// Package transport tells an image source with a transport prefix
// ("docker://…", "oci:…", "foo:…") from a local path. It is tiny and has
// no dependencies so that launch can decide, without the OCI libraries,
// which commands go to its launch-oci helper.
//
// It must not import anything of the OCI libraries.
package transport

import "os"

// Split splits s into its transport name and the rest when s starts with
// NAME: (a letter, then letters, digits, '+', '.' or '-').
func Split(s string) (name, rest string, ok bool) {
	i := -1
	for j := 0; j < len(s); j++ {
		if s[j] == ':' {
			i = j
			break
		}
	}
	if i <= 0 {
		return "", "", false
	}
	for j, c := range s[:i] {
		letter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (j == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-')) {
			return "", "", false
		}
	}
	return s[:i], s[i+1:], true
}

// LooksLikeSource reports whether s names an image by transport rather than
// a local path. A path that exists is never a transport.
func LooksLikeSource(s string) bool {
	if _, err := os.Lstat(s); err == nil {
		return false
	}
	_, _, ok := Split(s)
	return ok
}
