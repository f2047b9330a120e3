// Package imagetrust applies the site's signature policy (launch.conf
// images.verify) to an image before a launch mounts it, cheaply: the
// signatures of an image are checked once per image identity (device,
// inode, size, modification and change times, and the SIF's own global
// header, which carries its id and its modification time) and per policy
// (the trusted keys and the identities of the keyrings and certificate
// files), by the launch-sign helper, and its verdict is kept in the user's
// cache (internal/cache's Verdicts, under the cache's ownership rules).
// A launch that finds a verdict reads one small file; with images.verify =
// off it does nothing at all.
//
// It must not link the signature libraries (the helper has them) or decide
// what a signature means (internal/signing does).
package imagetrust

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/launch-hpc/launch/internal/capwriter"
	"github.com/launch-hpc/launch/internal/subproc"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/helper"
	"github.com/launch-hpc/launch/internal/keypaths"
	"github.com/launch-hpc/launch/internal/msg"
)

// HelperName is the helper program that checks signatures.
const HelperName = "launch-sign"

// VerdictArg is the helper's hidden command that checks the image on its
// file descriptor 3 against the policy in its flags and prints the
// verdict as one line: "ok WHO" or "fail WHY".
const VerdictArg = "__verdict"

// recordVersion starts every verdict record.
const recordVersion = "launch-verdict/1\n"

// sifHeaderSize is the size of the SIF global header.
const sifHeaderSize = 128

// helperTimeout bounds one signature check by the helper: it reads the
// signed objects of the image (the whole SquashFS of a signed image, to
// hash it), so it is generous, but a helper stuck on a file system or a
// pipe does not hold the launch for ever.
const helperTimeout = 10 * time.Minute

// maxLine bounds what is read of the helper's verdict.
const maxLine = 2048

// Verdict is the outcome of the policy for one image.
type Verdict struct {
	OK bool
	// Line says who signed (OK) or why it failed, in one line.
	Line string
	// Cached says the verdict came from the cache.
	Cached bool
	// File is the identity (FileID) of the image file the verdict is for.
	File string
	// NoCache, when set, says why the verdict could not be kept.
	NoCache string
}

// Check applies the policy p to the image at path (isSIF: a SIF file,
// rather than a bare SquashFS or a directory). Under "warn" a failure is
// a warning on log; under "require" it is the error returned, and an image
// that passes returns the identity (FileID) of the file that was checked:
// whoever opens the image later to mount it must refuse another file
// (SameFile), since the path may have been given another file meanwhile.
func Check(p config.Images, path string, isSIF bool, log *msg.Logger) (string, error) {
	if p.Verify == "off" || p.Verify == "" {
		return "", nil
	}
	v, err := Decide(p, path, isSIF)
	if err != nil {
		err = fmt.Errorf("checking the signatures of image %s (launch.conf images.verify = %s): %w", path, p.Verify, err)
		if p.Verify == "require" {
			return "", err
		}
		log.Warnf("%v", err)
		return "", nil
	}
	if v.OK {
		log.Verbosef("image %s: %s (cached: %v)", path, v.Line, v.Cached)
		if v.NoCache != "" {
			log.Verbosef("the verdict on image %s is not kept: %s", path, v.NoCache)
		}
		if p.Verify == "require" {
			return v.File, nil
		}
		return "", nil
	}
	if p.Verify == "require" {
		return "", fmt.Errorf("%s (launch.conf images.verify = require)", v.Line)
	}
	log.Warnf("%s (launch.conf images.verify = warn: running it anyway)", v.Line)
	return "", nil
}

// FileID is the identity of the open file fd that a verdict is for: its
// device, inode, size, modification and change times.
func FileID(fd int) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("reading: %w", err)
	}
	return statID(&st), nil
}

// SameFile checks that the open file fd is the file whose identity
// (FileID) verified is: the one whose signatures were checked, not one put
// in its place since (or changed since: its size and times would differ).
func SameFile(fd int, verified string) error {
	id, err := FileID(fd)
	if err != nil {
		return err
	}
	if id != verified {
		return fmt.Errorf("the file is not the one whose signatures were checked (it was replaced or changed since: %s, checked %s): refusing it (launch.conf images.verify = require)", id, verified)
	}
	return nil
}

// Decide returns the policy's verdict on the image at path, from the
// cache or, on a miss, from the helper (recording it). Where the verdict
// cache cannot be used (it breaks the cache's rules), the helper checks the
// image each time, and NoCache says why.
func Decide(p config.Images, path string, isSIF bool) (Verdict, error) {
	if !isSIF {
		return Verdict{Line: fmt.Sprintf("image %s is not a SIF file: it cannot carry signatures", path)}, nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.ELOOP) {
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0) // the user's own link to an image
	}
	if err != nil {
		return Verdict{}, fmt.Errorf("opening: %w", err)
	}
	defer f.Close()
	key, file, err := identity(f, p)
	if err != nil {
		return Verdict{}, err
	}
	vs, err := openVerdicts()
	if err != nil {
		line, herr := runHelper(f, p, path)
		if herr != nil {
			return Verdict{}, herr
		}
		v, _ := parseLine([]byte(line))
		v.File, v.NoCache = file, err.Error()
		return v, nil
	}
	defer vs.Close()
	secret := verdictSecret()
	if v, ok := lookup(vs, key, secret); ok {
		v.File = file
		return v, nil
	}
	unlock, err := vs.Lock(key)
	if err != nil {
		return Verdict{}, err
	}
	defer unlock()
	if v, ok := lookup(vs, key, secret); ok { // another launch checked it meanwhile
		v.File = file
		return v, nil
	}
	line, err := runHelper(f, p, path)
	if err != nil {
		return Verdict{}, err
	}
	rec := record(key, line, secret)
	if err := vs.Write(key, rec); err != nil {
		return Verdict{}, err
	}
	v, err := parse(rec, key, secret)
	v.File = file
	return v, err
}

// openVerdicts opens the verdict directory of the user's cache.
func openVerdicts() (*cache.Verdicts, error) {
	dir, err := cache.DefaultDir()
	if err != nil {
		return nil, err
	}
	return cache.OpenVerdicts(dir)
}

// lookup reads the verdict key; ok is false when there is none to use.
func lookup(vs *cache.Verdicts, key string, secret []byte) (Verdict, bool) {
	b, err := vs.Read(key)
	if err != nil || b == nil {
		return Verdict{}, false
	}
	v, err := parse(b, key, secret)
	if err != nil {
		return Verdict{}, false
	}
	v.Cached = true
	return v, true
}

// parseLine reads a verdict line: "ok WHO" or "fail WHY".
func parseLine(line []byte) (Verdict, error) {
	switch {
	case bytes.HasPrefix(line, []byte("ok ")):
		return Verdict{OK: true, Line: string(line[3:])}, nil
	case bytes.HasPrefix(line, []byte("fail ")):
		return Verdict{Line: string(line[5:])}, nil
	}
	return Verdict{}, errors.New("malformed verdict")
}

// identity is the verdict's name: the SHA-256 of the image file's
// identity and header and of the policy with the identities of the files
// it reads.
func identity(f *os.File, p config.Images) (key, file string, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", "", fmt.Errorf("reading: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", "", errors.New("not a regular file")
	}
	head := make([]byte, sifHeaderSize)
	if _, err := f.ReadAt(head, 0); err != nil {
		return "", "", fmt.Errorf("reading its SIF header: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%sfile %s\nheader %x\n", recordVersion, statID(&st), head)
	fmt.Fprintf(h, "keys %s\n", strings.ToUpper(strings.Join(p.TrustedKeys, ",")))
	keys, err := keypaths.Dir()
	if err != nil {
		return "", "", err
	}
	for _, q := range []string{filepath.Join(keys, keypaths.PublicFile), keypaths.Global(), p.TrustedRoots, p.TrustedCertificates} {
		fmt.Fprintf(h, "%q %s\n", q, fileID(q))
	}
	return hex.EncodeToString(h.Sum(nil)), statID(&st), nil
}

func statID(st *unix.Stat_t) string {
	return fmt.Sprintf("dev=%d ino=%d size=%d mtime=%d ctime=%d", st.Dev, st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano())
}

// fileID is the identity of the file p, or "none".
func fileID(p string) string {
	if p == "" {
		return "none"
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return "none"
	}
	return statID(&st)
}

// runHelper has the helper check the image f and returns its verdict line.
func runHelper(f *os.File, p config.Images, path string) (string, error) {
	prog, err := helper.Find(HelperName)
	if err != nil {
		return "", err
	}
	args := []string{VerdictArg}
	for _, k := range p.TrustedKeys {
		args = append(args, "--trusted-key", k)
	}
	if p.TrustedRoots != "" {
		args = append(args, "--certificate-roots", p.TrustedRoots, "--certificate", p.TrustedCertificates)
	}
	args = append(args, path)
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.ExtraFiles = []*os.File{f}
	out, errb := capwriter.Buffer{Max: maxLine}, capwriter.Buffer{Max: maxLine}
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := subproc.Run(cmd); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s did not finish checking the image within %v", prog, helperTimeout)
		}
		if m := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(errb.String()), "FATAL:")); m != "" {
			return "", errors.New(m)
		}
		return "", fmt.Errorf("%s: %w", prog, err)
	}
	line := strings.TrimSpace(out.String())
	if strings.Contains(line, "\n") || (!strings.HasPrefix(line, "ok ") && !strings.HasPrefix(line, "fail ")) {
		return "", fmt.Errorf("%s gave no verdict (%q)", prog, line)
	}
	return line, nil
}
