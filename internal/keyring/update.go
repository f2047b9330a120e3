package keyring

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"golang.org/x/sys/unix"
)

// Tx is a locked keys directory: the keyrings read under the lock, to be
// changed and written back with Commit.
type Tx struct {
	r              Ring
	dir, lock      *os.File
	Public, Secret openpgp.EntityList
	dirtyPub       bool
	dirtySec       bool
}

// Begin creates the keys directory (mode 0700) when missing, checks that
// it is the user's and writable by nobody else, takes its lock and reads
// both keyrings.
func (r Ring) Begin() (*Tx, error) {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the keys directory %s: %w", r.Dir, err)
	}
	fd, err := unix.Open(r.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the keys directory %s: %w", r.Dir, err)
	}
	dir := os.NewFile(uintptr(fd), r.Dir)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		dir.Close()
		return nil, fmt.Errorf("keys directory %s: %w", r.Dir, err)
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		dir.Close()
		return nil, fmt.Errorf("keys directory %s belongs to uid %d with mode %04o: it must be yours and writable by nobody else (set %s elsewhere, or chmod 0700 it)",
			r.Dir, st.Uid, st.Mode&0o7777, EnvDir)
	}
	lfd, err := unix.Openat(fd, lockFile, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("locking the keys directory %s: %w", r.Dir, err)
	}
	lock := os.NewFile(uintptr(lfd), filepath.Join(r.Dir, lockFile))
	if err := unix.Flock(lfd, unix.LOCK_EX); err != nil {
		lock.Close()
		dir.Close()
		return nil, fmt.Errorf("locking the keys directory %s: %w", r.Dir, err)
	}
	tx := &Tx{r: r, dir: dir, lock: lock}
	if tx.Public, err = r.Public(); err == nil {
		tx.Secret, err = r.Secret()
	}
	if err != nil {
		tx.Close()
		return nil, err
	}
	return tx, nil
}

// Close releases the lock without writing anything.
func (tx *Tx) Close() {
	tx.lock.Close()
	tx.dir.Close()
}

// SetPublic replaces the public keyring (written by Commit).
func (tx *Tx) SetPublic(el openpgp.EntityList) { tx.Public, tx.dirtyPub = el, true }

// SetSecret replaces the secret keyring (written by Commit).
func (tx *Tx) SetSecret(el openpgp.EntityList) { tx.Secret, tx.dirtySec = el, true }

// Commit writes the changed keyrings, each whole to a temporary file that
// is synced and renamed into place, and releases the lock. The secret
// keyring is written first: a key command killed in between leaves a
// secret key whose public part is missing, never the other way round.
func (tx *Tx) Commit() error {
	defer tx.Close()
	if tx.dirtySec {
		if err := tx.write(SecretFile, tx.Secret, true); err != nil {
			return err
		}
	}
	if tx.dirtyPub {
		if err := tx.write(PublicFile, tx.Public, false); err != nil {
			return err
		}
	}
	return nil
}

// write replaces the keyring name with el.
func (tx *Tx) write(name string, el openpgp.EntityList, secret bool) error {
	p := filepath.Join(tx.r.Dir, name)
	var buf bytes.Buffer
	if err := Serialize(&buf, el, secret); err != nil {
		return fmt.Errorf("writing keyring %s: %w", p, err)
	}
	tmp := fmt.Sprintf(".%s.tmp-%d", name, os.Getpid())
	dirfd := int(tx.dir.Fd())
	_ = unix.Unlinkat(dirfd, tmp, 0)
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("writing keyring %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(tx.r.Dir, tmp))
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dirfd, tmp, dirfd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dirfd, tmp, 0)
		return fmt.Errorf("writing keyring %s: %w", p, err)
	}
	return unix.Fsync(dirfd)
}

// PairOptions are the user id and key of `key newpair`.
type PairOptions struct {
	Name, Email, Comment string
	// Passphrase encrypts the secret key; empty leaves it unencrypted.
	Passphrase []byte
	// Bits is the RSA key length (Apptainer's default: 4096).
	Bits int
}

// NewPair makes an RSA key pair as Apptainer does (SHA-384 self
// signatures) and adds it to both keyrings.
func (r Ring) NewPair(o PairOptions) (*openpgp.Entity, error) {
	if o.Name == "" {
		return nil, errors.New("a key needs a name (--name)")
	}
	if o.Bits < 1024 || o.Bits > 8192 {
		return nil, fmt.Errorf("key length %d bits: use 1024 to 8192 (4096 is the default)", o.Bits)
	}
	e, err := openpgp.NewEntity(o.Name, o.Comment, o.Email, &packet.Config{RSABits: o.Bits, DefaultHash: crypto.SHA384})
	if err != nil {
		return nil, fmt.Errorf("making a key pair: %w", err)
	}
	if len(o.Passphrase) > 0 {
		if err := e.EncryptPrivateKeys(o.Passphrase, nil); err != nil {
			return nil, fmt.Errorf("encrypting the new key: %w", err)
		}
	}
	tx, err := r.Begin()
	if err != nil {
		return nil, err
	}
	tx.SetSecret(append(tx.Secret, e))
	tx.SetPublic(append(tx.Public, e))
	return e, tx.Commit()
}

// Import adds the keys of el: each secret key to the secret keyring and
// every key's public part to the public keyring. A key already there is
// replaced by the imported one merged with it (new signatures,
// revocations and user ids are kept). It returns the fingerprints added or
// updated.
func (r Ring) Import(el openpgp.EntityList) ([]string, error) {
	tx, err := r.Begin()
	if err != nil {
		return nil, err
	}
	defer tx.Close()
	var fps []string
	pub, sec := tx.Public, tx.Secret
	for _, e := range el {
		fp := Fingerprint(e)
		fps = append(fps, fp)
		if e.PrivateKey != nil {
			sec = replace(sec, e)
		}
		pubOnly, err := publicOnly(e)
		if err != nil {
			return nil, err
		}
		pub = replace(pub, pubOnly)
	}
	tx.SetPublic(pub)
	if len(sec) != len(tx.Secret) || hasSecret(el) {
		tx.SetSecret(sec)
	}
	return fps, tx.Commit()
}

func hasSecret(el openpgp.EntityList) bool {
	for _, e := range el {
		if e.PrivateKey != nil {
			return true
		}
	}
	return false
}

// publicOnly returns e without its secret parts (by serialising its
// public keys and reading them back).
func publicOnly(e *openpgp.Entity) (*openpgp.Entity, error) {
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		return nil, fmt.Errorf("key %s: %w", Fingerprint(e), err)
	}
	el, err := openpgp.ReadKeyRing(&b)
	if err != nil || len(el) != 1 {
		return nil, fmt.Errorf("key %s: its public part does not read back: %v", Fingerprint(e), err)
	}
	return el[0], nil
}

// replace puts e in el in place of the key with its fingerprint, or at
// the end.
func replace(el openpgp.EntityList, e *openpgp.Entity) openpgp.EntityList {
	out := make(openpgp.EntityList, 0, len(el)+1)
	done := false
	for _, o := range el {
		if Fingerprint(o) == Fingerprint(e) {
			if !done {
				out = append(out, e)
				done = true
			}
			continue
		}
		out = append(out, o)
	}
	if !done {
		out = append(out, e)
	}
	return out
}

// Remove removes the key with fingerprint fp from the public keyring, the
// secret one, or both. It is an error when no keyring asked has it.
func (r Ring) Remove(fp string, public, secret bool) error {
	tx, err := r.Begin()
	if err != nil {
		return err
	}
	defer tx.Close()
	found := false
	drop := func(el openpgp.EntityList) openpgp.EntityList {
		var out openpgp.EntityList
		for _, e := range el {
			if len(Find(openpgp.EntityList{e}, fp)) > 0 {
				found = true
				continue
			}
			out = append(out, e)
		}
		return out
	}
	if public {
		tx.SetPublic(drop(tx.Public))
	}
	if secret {
		tx.SetSecret(drop(tx.Secret))
	}
	if !found {
		return fmt.Errorf("no key with fingerprint %s in %s", fp, r.Dir)
	}
	return tx.Commit()
}
