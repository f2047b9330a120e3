// Package paths answers the one question launch asks of path names
// everywhere: is this path the directory dir or below it. It is lexical
// only: it touches no file system and resolves no symbolic link (a caller
// that needs links resolved resolves them first, as the allowed-paths check
// does).
package paths

import (
	"path/filepath"
	"strings"
)

// Within reports whether p is dir or below it. Both are cleaned first
// (filepath.Clean), so trailing slashes, "." and ".." are as the kernel
// would read them with no symbolic link: "/a/" is within "/a", "/a/../b"
// is not, and every absolute path is within "/". "/ab" is not within "/a".
// Clean does not allocate for a path that is already clean.
func Within(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	if p == dir || dir == "/" && strings.HasPrefix(p, "/") {
		return true
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
}

// Below reports whether p is strictly below dir: Within, and not dir itself.
func Below(p, dir string) bool {
	return filepath.Clean(p) != filepath.Clean(dir) && Within(p, dir)
}

// UserDirName is the name of launch's per-user directory in the user's
// home (~/.launch): the cache, keys, registry logins, share key, instance
// records and logs live below it.
const UserDirName = ".launch"

// UserDir is launch's per-user directory under home, joined with elem:
// UserDir("/home/u", "cache") is /home/u/.launch/cache.
func UserDir(home string, elem ...string) string {
	return filepath.Join(append([]string{home, UserDirName}, elem...)...)
}
