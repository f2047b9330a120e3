package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// keyError is a bad value of one key.
type keyError struct {
	key string
	err error
}

// checkVerify checks the signature policy keys of images.
func (i Images) checkVerify() *keyError {
	switch i.Verify {
	case "off", "warn", "require":
	default:
		return &keyError{"images.verify", fmt.Errorf("%q is not a policy (off, warn or require)", i.Verify)}
	}
	for _, fp := range i.TrustedKeys {
		if !isFingerprint(fp) {
			return &keyError{"images.trusted_keys", fmt.Errorf("%q is not an OpenPGP fingerprint (40 hex digits, as launch key list prints)", fp)}
		}
	}
	for key, p := range map[string]string{"images.trusted_roots": i.TrustedRoots, "images.trusted_certificates": i.TrustedCertificates} {
		if p != "" && !filepath.IsAbs(p) {
			return &keyError{key, fmt.Errorf("%q is not an absolute path", p)}
		}
	}
	if (i.TrustedRoots == "") != (i.TrustedCertificates == "") {
		return &keyError{"images.trusted_certificates", errors.New("images.trusted_roots and images.trusted_certificates go together (the certificates are checked against the roots)")}
	}
	return nil
}

// isFingerprint reports whether s is 40 hex digits (spaces allowed).
func isFingerprint(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
