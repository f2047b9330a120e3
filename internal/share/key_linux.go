package share

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/paths"
)

// KeyLen is the size of a user's share key.
const KeyLen = 16

// keyFile is the name of the file that holds the key.
const keyFile = "share.key"

// UserKey returns the user's share key (Identity.Secret): KeyLen random
// bytes, made on first use, in the file share.key (mode 0600) of the
// user's runtime directory ($XDG_RUNTIME_DIR, a local tmpfs, when it is a
// directory of uid's that nobody else can write), else of ~/.launch under
// home (made mode 0700 if missing). Only a regular file of uid's, readable
// by nobody else and exactly KeyLen bytes long, is used; it is created
// whole (written unnamed, then linked), so that launches starting together
// agree on one key.
func UserKey(uid int, home string, getenv func(string) string) ([]byte, error) {
	var why []string
	if rd := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(rd) {
		k, err := keyIn(unix.AT_FDCWD, rd, rd, false, uid)
		if err == nil {
			return k, nil
		}
		why = append(why, err.Error())
	}
	if filepath.IsAbs(home) {
		hfd, err := unix.Open(home, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			k, err := keyIn(hfd, paths.UserDirName, paths.UserDir(home), true, uid)
			unix.Close(hfd)
			if err == nil {
				return k, nil
			}
			why = append(why, err.Error())
		} else {
			why = append(why, fmt.Sprintf("opening %s: %v", home, err))
		}
	}
	if len(why) == 0 {
		return nil, errors.New("no share key: neither XDG_RUNTIME_DIR nor a home directory")
	}
	return nil, fmt.Errorf("no share key: %v", why)
}

// keyIn reads (creating it if missing) the key in the directory name of
// the directory at (its path: disp), which must belong to uid and be
// writable by nobody else; with mkdir the directory is made (mode 0700)
// if missing.
func keyIn(at int, name, disp string, mkdir bool, uid int) ([]byte, error) {
	const dflags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	dfd, err := unix.Openat(at, name, dflags, 0)
	if errors.Is(err, unix.ENOENT) && mkdir {
		if err := unix.Mkdirat(at, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("creating %s: %w", disp, err)
		}
		dfd, err = unix.Openat(at, name, dflags, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", disp, err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", disp, err)
	}
	if int(st.Uid) != uid || st.Mode&0o022 != 0 {
		return nil, fmt.Errorf("%s belongs to uid %d, mode %04o: not a directory only uid %d can write", disp, st.Uid, st.Mode&0o7777, uid)
	}
	path := filepath.Join(disp, keyFile)
	k, err := readKey(dfd, uid)
	if errors.Is(err, unix.ENOENT) {
		if err = createKey(dfd); err == nil || errors.Is(err, unix.EEXIST) {
			k, err = readKey(dfd, uid) // ours, or that of a launch that was first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// readKey reads the key file of the directory dfd.
func readKey(dfd, uid int) ([]byte, error) {
	fd, err := unix.Openat(dfd, keyFile, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, errors.New("a symbolic link, not a regular file")
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("not a regular file (mode %06o)", st.Mode)
	case int(st.Uid) != uid || st.Mode&0o077 != 0:
		return nil, fmt.Errorf("belongs to uid %d, mode %04o: not a file only uid %d can read", st.Uid, st.Mode&0o7777, uid)
	case st.Size != KeyLen:
		return nil, fmt.Errorf("%d bytes, want %d", st.Size, KeyLen)
	}
	k := make([]byte, KeyLen+1)
	n, err := unix.Read(fd, k)
	if err != nil {
		return nil, err
	}
	if n != KeyLen {
		return nil, fmt.Errorf("read %d bytes, want %d", n, KeyLen)
	}
	return k[:KeyLen], nil
}

// createKey writes a new key into the directory dfd, whole or not at all:
// EEXIST when another launch made one first.
func createKey(dfd int) error {
	k := make([]byte, KeyLen)
	if _, err := rand.Read(k); err != nil {
		return err
	}
	fd, err := unix.Openat(dfd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err == nil {
		defer unix.Close(fd)
		if err := writeAll(fd, k); err != nil {
			return err
		}
		return unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), dfd, keyFile, unix.AT_SYMLINK_FOLLOW)
	}
	// No O_TMPFILE here (NFS): a hidden name, hard-linked into place.
	var r [8]byte
	_, _ = rand.Read(r[:])
	tmp := "." + keyFile + "." + hex.EncodeToString(r[:])
	fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Unlinkat(dfd, tmp, 0)
	defer unix.Close(fd)
	if err := writeAll(fd, k); err != nil {
		return err
	}
	return unix.Linkat(dfd, tmp, dfd, keyFile, 0)
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return unix.Fsync(fd)
}
