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

// The transports of image sources. This is the one list of them: what
// launch reads, and what it does not with what to use instead.
const (
	Docker        = "docker"
	Layout        = "oci"
	Archive       = "oci-archive"
	DockerArchive = "docker-archive"
	Oras          = "oras"
	// HTTP and HTTPS name a SIF file on a web server, which pull (and
	// build) fetch; exec and the others do not take them.
	HTTP  = "http"
	HTTPS = "https"
)

// Known lists the transports launch reads, for messages.
const Known = "docker://, oci:, oci-archive:, docker-archive:, oras://"

// IsWebFile reports whether source is an http:// or https:// URL: a SIF
// file on a web server, which pull and build fetch and nothing runs as it
// is.
func IsWebFile(source string) bool {
	name, _, _ := Split(source)
	return name == HTTP || name == HTTPS
}

// Prefix is how a source of the transport name begins: "docker://" and
// "oras://" (registries), "NAME:" for the others.
func Prefix(name string) string {
	switch name {
	case Docker, Oras:
		return name + "://"
	}
	return name + ":"
}

// Runs reports whether exec, run, shell, test and inspect take a source of
// the transport name in place of an image file (converted into the cache
// by the launch-oci helper; docker-archive: is refused there, with what to
// do). The C constructor (internal/preinit, names_oci_source) leaves
// exactly these to Go: a unit test holds the two lists together.
func Runs(name string) bool {
	switch name {
	case Docker, Layout, Archive, DockerArchive, Oras:
		return true
	}
	return false
}

// Bootstrap returns the source prefix of a definition file's OCI
// bootstrap agent (Bootstrap: docker, oci, oci-archive, docker-archive),
// and false for any other agent.
func Bootstrap(agent string) (string, bool) {
	switch agent {
	case Docker, Layout, Archive, DockerArchive:
		return Prefix(agent), true
	}
	return "", false
}

// unsupported says, for a transport Apptainer has and launch does not,
// what to use instead ("" for any other). A switch, not a map: nothing to
// initialise at start-up.
func unsupported(name string) string {
	switch name {
	case "library":
		return "the Sylabs Cloud Library (library://) is not supported by launch: pull the image with docker:// or oras:// from an OCI registry, or fetch the SIF with 'apptainer pull' and use the file"
	case "shub":
		return "Singularity Hub (shub://) is not supported by launch (the service is read-only and archived): use docker:// or oras:// from an OCI registry, or a SIF file"
	}
	return ""
}

// Unsupported returns, for a source whose transport launch knows of but
// does not read (library://, shub://), the one line that says so and what
// to use instead.
func Unsupported(source string) (string, bool) {
	name, _, ok := Split(source)
	if !ok {
		return "", false
	}
	m := unsupported(name)
	if m == "" {
		return "", false
	}
	return source + ": " + m, true
}
