// Package filekind names the type of a file in words, for the errors that
// refuse a file because it is not a regular file ("/etc/passwd: not a
// regular file (a named pipe)"). It is the one place that wording
// lives.
package filekind

import "io/fs"

// Name names the type in m with an article ("a directory", "a named
// pipe"); for a regular file it says "a regular file".
func Name(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m&fs.ModeDir != 0:
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}
