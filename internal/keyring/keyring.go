// Package keyring is the user's OpenPGP keyrings for signing images: the
// public and secret keyrings under ~/.launch/keys ($LAUNCH_KEYSDIR), in the
// files and formats Apptainer keeps in ~/.apptainer/keys (pgp-public: the
// public keys, pgp-secret: the secret keys, each a plain concatenation of
// binary OpenPGP transferable keys), and the site's global public keyring.
//
// Every change is made under an exclusive lock of the directory, to a
// temporary file that is synced and renamed over the keyring (mode 0600),
// so a failed or killed key command leaves the old keyring whole. Files are
// opened without following links and must be regular files of the user's
// that nobody else can write; reads are bounded.
//
// It must not ask for passphrases (its callers do) or sign anything.
package keyring

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/keypaths"
)

// File names in the keys directory (internal/keypaths).
const (
	PublicFile = keypaths.PublicFile
	SecretFile = keypaths.SecretFile
	lockFile   = ".lock"
)

// EnvDir moves the keys directory.
const EnvDir = keypaths.EnvDir

// maxKeyring bounds the read of one keyring or key file.
const maxKeyring = 64 << 20

// Ring is a keys directory.
type Ring struct {
	// Dir is the directory holding pgp-public and pgp-secret.
	Dir string
}

// Default is the user's keys directory (keypaths.Dir).
func Default() (Ring, error) {
	d, err := keypaths.Dir()
	return Ring{Dir: d}, err
}

// GlobalPath is the site's public keyring (keypaths.Global).
func GlobalPath() string { return keypaths.Global() }

// PublicPath is the public keyring's path.
func (r Ring) PublicPath() string { return filepath.Join(r.Dir, PublicFile) }

// SecretPath is the secret keyring's path.
func (r Ring) SecretPath() string { return filepath.Join(r.Dir, SecretFile) }

// Public reads the public keyring (empty when there is none).
func (r Ring) Public() (openpgp.EntityList, error) { return readRing(r.PublicPath()) }

// Secret reads the secret keyring (empty when there is none).
func (r Ring) Secret() (openpgp.EntityList, error) { return readRing(r.SecretPath()) }

// readRing reads the keyring at p; a missing file is an empty keyring.
func readRing(p string) (openpgp.EntityList, error) {
	b, err := ReadBounded(p, false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return Parse(p, b)
}

// ReadFile reads the keys in the file p, binary or ASCII-armoured (an
// export or another keyring). The file may belong to anyone.
func ReadFile(p string) (openpgp.EntityList, error) {
	b, err := ReadBounded(p, true)
	if err != nil {
		return nil, err
	}
	el, err := Parse(p, b)
	if err == nil && len(el) == 0 {
		err = fmt.Errorf("key file %s holds no OpenPGP keys", p)
	}
	return el, err
}

// Parse parses keyring data read from p (named in errors): binary
// transferable keys or an ASCII-armoured block. Empty data is an empty
// keyring.
func Parse(p string, b []byte) (openpgp.EntityList, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("keyring %s is corrupt: %w", p, err)
		}
		return el, nil
	}
	el, err := openpgp.ReadKeyRing(bytes.NewReader(b))
	if err == nil && len(el) == 0 {
		err = errors.New("no key in it")
	}
	if err != nil {
		return nil, fmt.Errorf("keyring %s is corrupt: %w (move it away, or restore it from a backup)", p, err)
	}
	return el, nil
}

// ReadBounded reads the regular file p, without following a final link
// unless anyOwner (then it may also be anyone's), refusing one of another
// user's or writable by others when !anyOwner, and more than maxKeyring
// bytes.
func ReadBounded(p string, anyOwner bool) ([]byte, error) {
	flags := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC
	if !anyOwner {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(p, flags, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("keyring %s is a symbolic link: refusing it", p)
		}
		return nil, &os.PathError{Op: "opening", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	if !anyOwner {
		if int(st.Uid) != os.Geteuid() {
			return nil, fmt.Errorf("keyring %s belongs to uid %d, not to you (uid %d): refusing it", p, st.Uid, os.Geteuid())
		}
		if st.Mode&0o022 != 0 {
			return nil, fmt.Errorf("keyring %s is writable by other users (mode %04o): refusing it (chmod 0600 it)", p, st.Mode&0o7777)
		}
	}
	return readAll(f, p)
}

// ReadTrusted reads the regular file p that decides what is trusted (the
// site's global keyring, its trusted roots and certificates), following
// links, bounded as ReadBounded: refusing one that belongs to a user other
// than root or the caller, or that its group or other users can write
// (they could make any key trusted).
func ReadTrusted(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "opening", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if err := trustedMode(p, &st, os.Geteuid()); err != nil {
		return nil, err
	}
	return readAll(f, p)
}

// trustedMode checks the status st of the trust file p for ReadTrusted.
func trustedMode(p string, st *unix.Stat_t, uid int) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("%s is not a regular file", p)
	case st.Uid != 0 && int(st.Uid) != uid:
		return fmt.Errorf("%s belongs to uid %d, neither root nor you: refusing to trust what it holds", p, st.Uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("%s is writable by its group or other users (mode %04o): refusing to trust what it holds (chmod go-w it)", p, st.Mode&0o7777)
	}
	return nil
}

// readAll reads f (path p) whole, up to maxKeyring bytes.
func readAll(f *os.File, p string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, maxKeyring+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if len(b) > maxKeyring {
		return nil, fmt.Errorf("%s is larger than %d MiB: not a keyring", p, maxKeyring>>20)
	}
	return b, nil
}

// Fingerprint is the upper-case hex fingerprint of e's primary key, as
// Apptainer prints it.
func Fingerprint(e *openpgp.Entity) string { return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint) }

// Find returns the entities of el whose fingerprint is fp (any case, or
// its last 16 digits: the long key id).
func Find(el openpgp.EntityList, fp string) []*openpgp.Entity {
	fp = strings.ToUpper(strings.TrimPrefix(strings.ReplaceAll(fp, " ", ""), "0x"))
	var out []*openpgp.Entity
	for _, e := range el {
		f := Fingerprint(e)
		if f == fp || (len(fp) == 16 && strings.HasSuffix(f, fp)) {
			out = append(out, e)
		}
	}
	return out
}

// Armor writes the entities el ASCII-armoured to w: the public parts, or
// the secret ones when secret.
func Armor(w io.Writer, el openpgp.EntityList, secret bool) error {
	block := openpgp.PublicKeyType
	if secret {
		block = openpgp.PrivateKeyType
	}
	aw, err := armor.Encode(w, block, nil)
	if err != nil {
		return err
	}
	if err := Serialize(aw, el, secret); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// Serialize writes el in binary: the public parts, or the secret ones.
func Serialize(w io.Writer, el openpgp.EntityList, secret bool) error {
	for _, e := range el {
		var err error
		if secret {
			err = e.SerializePrivateWithoutSigning(w, nil)
		} else {
			err = e.Serialize(w)
		}
		if err != nil {
			return fmt.Errorf("writing key %s: %w", Fingerprint(e), err)
		}
	}
	return nil
}
