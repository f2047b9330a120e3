package cache

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// A converted SIF cannot be checked against its name (the manifest digest
// names what it was made from, not its bytes), so its own SHA-256 is
// recorded beside it when it is made, together with the file's identity
// and times: (device, inode, size, mtime, ctime). A use whose fstat still
// shows those trusts the recorded digest without reading the file (a
// write, a chmod, a rename or touching it changes ctime, which no user
// can set back); any other use hashes it again, and a SIF that no longer
// has its digest is converted again. The record guards against changes
// after the conversion and against entries launch did not make; another
// user cannot forge one because they cannot write in the cache at all
// (Open refuses such a cache).

const (
	// sifSuffix ends the name of a cached SIF.
	sifSuffix = ".sif"
	// recordSuffix ends the name of a SIF's digest record.
	recordSuffix = ".digest"
	// recordVersion starts every record.
	recordVersion = "launch-cache-sif/1"
	// maxRecord bounds the read of a record.
	maxRecord = 512
)

// SIFPath is where the SIF converted from the image with manifest digest d
// is kept.
func (c *Cache) SIFPath(d v1.Hash) string {
	return filepath.Join(c.sifs.Name(), d.Hex+sifSuffix)
}

// record is what is recorded about a SIF when it is made.
type record struct {
	image, sha256    string // manifest digest (hex), the SIF's SHA-256 (hex)
	size             int64
	dev, ino         uint64
	mtimeNs, ctimeNs int64
}

func recordOf(image, sum string, st *unix.Stat_t) record {
	return record{image: image, sha256: sum, size: st.Size, dev: st.Dev, ino: st.Ino,
		mtimeNs: st.Mtim.Nano(), ctimeNs: st.Ctim.Nano()}
}

func (r record) String() string {
	return fmt.Sprintf("%s image=sha256:%s sha256:%s size=%d dev=%d ino=%d mtime=%d ctime=%d\n",
		recordVersion, r.image, r.sha256, r.size, r.dev, r.ino, r.mtimeNs, r.ctimeNs)
}

// sameFile reports whether st is the file r was recorded from, unchanged.
func (r record) sameFile(st *unix.Stat_t) bool {
	o := recordOf(r.image, r.sha256, st)
	return o == r
}

// parseRecord parses a record; anything but exactly what String writes is
// an error.
func parseRecord(b []byte) (record, error) {
	var r record
	var v string
	_, err := fmt.Sscanf(string(b), "%s image=sha256:%s sha256:%s size=%d dev=%d ino=%d mtime=%d ctime=%d\n",
		&v, &r.image, &r.sha256, &r.size, &r.dev, &r.ino, &r.mtimeNs, &r.ctimeNs)
	if err != nil || r.String() != string(b) || !isHexDigest(r.image) || !isHexDigest(r.sha256) {
		return record{}, fmt.Errorf("malformed digest record %q", clip(b))
	}
	return r, nil
}

func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// OpenSIF returns the cached SIF for the image with manifest digest d,
// checked against the digest recorded when it was made, or nil when there
// is none to use: none was made, or the one there is not what was
// recorded (it is then removed, with a warning, so that the caller
// converts the image again). The caller holds the entry's lock.
func (c *Cache) OpenSIF(d v1.Hash) (*os.File, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	name := d.Hex + sifSuffix
	f, st, err := openEntry(c.sifs, name, unix.O_RDONLY, c.uid)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err == nil {
		if err = c.verifySIF(f, st, d); err == nil {
			if _, err = f.Seek(0, io.SeekStart); err == nil {
				touch(c.sifs, name+recordSuffix)
				return f, nil
			}
		}
		f.Close()
	}
	c.warn("not using the cached SIF %s: %v; converting the image again", filepath.Join(c.sifs.Name(), name), err)
	if err := removeEntry(c.sifs, name); err != nil {
		return nil, fmt.Errorf("removing an unusable cache entry: %w", err)
	}
	return nil, nil
}

// verifySIF checks the opened SIF f (status st) against its record.
func (c *Cache) verifySIF(f *os.File, st *unix.Stat_t, d v1.Hash) error {
	name := d.Hex + sifSuffix + recordSuffix
	rf, _, err := openEntry(c.sifs, name, unix.O_RDONLY, c.uid)
	if errors.Is(err, unix.ENOENT) {
		return errors.New("no digest was recorded when it was made")
	}
	if err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(rf, maxRecord+1))
	rf.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", rf.Name(), err)
	}
	r, err := parseRecord(b)
	if err != nil {
		return err
	}
	if r.image != d.Hex {
		return fmt.Errorf("its digest record is for image sha256:%s", r.image)
	}
	if r.sameFile(st) {
		return nil
	}
	sum, _, err := sha256Of(f)
	if err != nil {
		return err
	}
	if sum != r.sha256 {
		return fmt.Errorf("its content (sha256:%s) differs from the digest recorded when it was made (sha256:%s)", sum, r.sha256)
	}
	// The same content, copied or touched: record its new identity.
	return c.writeRecord(recordOf(d.Hex, sum, st), name)
}

// AddSIF records the digest of the SIF just converted into SIFPath(d) and
// returns it opened. The caller holds the entry's lock.
func (c *Cache) AddSIF(d v1.Hash) (*os.File, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	name := d.Hex + sifSuffix
	f, st, err := openEntry(c.sifs, name, unix.O_RDONLY, c.uid)
	if err != nil {
		return nil, err
	}
	sum, _, err := sha256Of(f)
	if err == nil {
		err = c.writeRecord(recordOf(d.Hex, sum, st), name+recordSuffix)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		_ = removeEntry(c.sifs, name)
		return nil, err
	}
	return f, nil
}

// writeRecord writes r as the record name, replacing any, atomically.
func (c *Cache) writeRecord(r record, name string) error {
	tf, err := newTemp(c.sifs)
	if err != nil {
		return err
	}
	defer tf.discard()
	if _, err := tf.f.WriteString(r.String()); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(c.sifs.Name(), name), err)
	}
	return tf.link(name, true)
}
