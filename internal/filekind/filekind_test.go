package filekind

import (
	"io/fs"
	"testing"
)

func TestName(t *testing.T) {
	cases := []struct {
		mode fs.FileMode
		want string
	}{
		{0o644, "a regular file"},
		{fs.ModeDir | 0o755, "a directory"},
		{fs.ModeNamedPipe, "a named pipe"},
		{fs.ModeSocket, "a socket"},
		{fs.ModeDevice | fs.ModeCharDevice, "a character device"},
		{fs.ModeDevice, "a block device"},
		{fs.ModeSymlink, "a symbolic link"},
		{fs.ModeIrregular, "not a regular file"},
	}
	for _, c := range cases {
		if got := Name(c.mode); got != c.want {
			t.Errorf("Name(%v) = %q, want %q", c.mode, got, c.want)
		}
	}
}
