package container

import (
	"bytes"
	"fmt"
	"strings"
)

// passwdFile returns the image's /etc/passwd with the user's own entry
// (replacing any entry of the same name or uid), so names resolve inside.
func passwdFile(image []byte, u User) []byte {
	entry := fmt.Sprintf("%s:x:%d:%d:%s:%s:%s", u.Name, u.UID, u.GID, u.Gecos, u.Home, orDefault(u.Shell, "/bin/sh"))
	return mergeDB(image, entry, u.Name, u.UID, 2)
}

// groupFile returns the image's /etc/group with the user's primary group.
func groupFile(image []byte, u User) []byte {
	entry := fmt.Sprintf("%s:x:%d:%s", orDefault(u.Group, u.Name), u.GID, u.Name)
	return mergeDB(image, entry, orDefault(u.Group, u.Name), u.GID, 2)
}

// mergeDB keeps the lines of a colon-separated database except those whose
// name or numeric id (field idField) clash with entry, then appends entry.
func mergeDB(image []byte, entry, name string, id, idField int) []byte {
	var b bytes.Buffer
	idStr := fmt.Sprint(id)
	for _, line := range strings.Split(string(image), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, ":")
		if f[0] == name || (len(f) > idField && f[idField] == idStr) {
			continue
		}
		b.WriteString(line + "\n")
	}
	b.WriteString(entry + "\n")
	return b.Bytes()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
