// Package buildinfo holds the values stamped into the binary at build time
// (make passes them with -ldflags -X). It owns no behaviour; defaults let a
// plain `go build ./...` produce a working binary.
//
// It must not import any other package of launch.
package buildinfo

import "path/filepath"

// Stamped at link time by mlocal/build.mk. They are variables only because
// the linker can set nothing else; nothing in the program assigns them.
var (
	// Version is the release version, e.g. "0.1.0" or a git describe string.
	Version = "0.0.0-dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
	// Prefix is the install prefix (make install PREFIX=...).
	Prefix = "/usr/local"
	// SysconfDir is where launch.conf lives; empty means Prefix/etc.
	SysconfDir = ""
)

// ConfigFile is the admin configuration file read at run time.
func ConfigFile() string {
	dir := SysconfDir
	if dir == "" {
		dir = filepath.Join(Prefix, "etc")
	}
	return filepath.Join(dir, "launch", "launch.conf")
}

// LibexecFile is where an installed helper program named name lives:
// Prefix/libexec/launch/name.
func LibexecFile(name string) string {
	return filepath.Join(Prefix, "libexec", "launch", name)
}
