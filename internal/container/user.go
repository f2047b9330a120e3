package container

import (
	"os"
	"strconv"
	"strings"
)

// The host's user and group files, which CurrentUser reads.
const (
	hostPasswd = "/etc/passwd"
	hostGroup  = "/etc/group"
)

// CurrentUser describes the calling user from the host's /etc/passwd and
// /etc/group, falling back to $USER and $HOME for directory-service users
// that the files do not list.
func CurrentUser() User {
	u := User{UID: os.Getuid(), GID: os.Getgid()}
	if data, err := os.ReadFile(hostPasswd); err == nil {
		if f := findEntry(data, 2, u.UID); f != nil && len(f) >= 7 {
			u.Name, u.Gecos, u.Home, u.Shell = f[0], f[4], f[5], f[6]
		}
	}
	if data, err := os.ReadFile(hostGroup); err == nil {
		if f := findEntry(data, 2, u.GID); f != nil {
			u.Group = f[0]
		}
	}
	if u.Name == "" {
		u.Name = os.Getenv("USER")
		if u.Name == "" {
			u.Name = "user" + strconv.Itoa(u.UID)
		}
	}
	if h := os.Getenv("HOME"); h != "" {
		u.Home = h
	}
	return u
}

// findEntry returns the fields of the first line whose field idx is id.
func findEntry(data []byte, idx, id int) []string {
	want := strconv.Itoa(id)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) > idx && f[idx] == want {
			return f
		}
	}
	return nil
}
