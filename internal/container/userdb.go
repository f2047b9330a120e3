package container

import (
	"bytes"
	"fmt"
	"strconv"
)

// userDBMax bounds the image's /etc/passwd and /etc/group that launch
// reads to merge the user's entry in: 16 MiB is some 200,000 accounts, far
// more than an image that carries a site's whole directory needs, and an
// image's sparse file of gigabytes (a few kilobytes in the image) is
// refused before anything of it is read. A larger or non-regular file is
// an error naming it (the caller's; --no-mount passwd or group leaves the
// image's own in place). Apptainer reads the file whole and skips a
// non-regular one.
const userDBMax = 16 << 20

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

// mergeDB keeps the lines of a colon-separated database except blank ones
// and those whose name or numeric id (field idField) clash with entry, then
// appends entry. It works on image in place: besides the result, nothing
// proportional to its size is allocated.
func mergeDB(image []byte, entry, name string, id, idField int) []byte {
	var b bytes.Buffer
	b.Grow(len(image) + len(entry) + 2)
	idStr := strconv.Itoa(id)
	for rest := image; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 || clashes(line, name, idStr, idField) {
			continue
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteString(entry + "\n")
	return b.Bytes()
}

// clashes reports whether a database line's first field is name or its
// field idField is id.
func clashes(line []byte, name, id string, idField int) bool {
	for i := 0; ; i++ {
		field, rest, more := bytes.Cut(line, []byte{':'})
		if (i == 0 && string(field) == name) || (i == idField && string(field) == id) {
			return true
		}
		if !more || i == idField {
			return false
		}
		line = rest
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
