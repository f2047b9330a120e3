// Package signing signs and verifies SIF images with the integrity package
// of github.com/sylabs/sif/v2: the signature objects Apptainer and
// SingularityCE write and read (OpenPGP clear-signed metadata, or DSSE
// envelopes for PEM keys and x509 certificates), so that images signed by
// either verify with the other. It also decides the site policy's verdict
// on an image (policy.go).
//
// It must not read keyrings itself (internal/keyring does) or ask for
// passphrases (its callers do). It lives in the launch-sign helper only:
// its libraries must stay off the start path of `launch exec`.
package signing

import (
	"crypto"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sylabs/sif/v2/pkg/integrity"
	"github.com/sylabs/sif/v2/pkg/sif"
)

// Verifier is key material for DSSE signatures, with what to call it.
type Verifier struct {
	signature.Verifier
	// Name says whose key it is (a file, a certificate's subject).
	Name string
	// ID is what stands for a fingerprint (the key's SHA-256).
	ID string
}

// VerifyOptions say which signatures to check and with what.
type VerifyOptions struct {
	// KeyRing holds the OpenPGP keys trusted (nil: none).
	KeyRing openpgp.EntityList
	// Verifiers are the keys trusted for DSSE signatures.
	Verifiers []Verifier
	// Legacy checks the legacy signatures (of SIFs signed by
	// Singularity before 3.6) of the system partition instead.
	Legacy bool
	// GroupIDs and ObjectIDs restrict the check; none: every group.
	GroupIDs, ObjectIDs []uint32
}

// Object is a data object a signature covers.
type Object struct {
	ID   uint32 `json:"id"`
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
}

// Result is the outcome of one signature.
type Result struct {
	// Signature is the signature object's id.
	Signature uint32 `json:"signature"`
	// Fingerprint is the signing key's (upper-case hex).
	Fingerprint string `json:"fingerprint"`
	// Name is the signer's user id (or key name), when known.
	Name string `json:"name,omitempty"`
	// Objects are the objects the signature covers and that matched.
	Objects []Object `json:"objects"`
	// Error says why it failed; empty when it holds.
	Error string `json:"error,omitempty"`
}

// Report is the outcome of verifying one image.
type Report struct {
	Image   string   `json:"image"`
	Results []Result `json:"signatures"`
	// Error is the first failure, in one line naming the object and the
	// key; empty when every signature checked holds.
	Error string `json:"error,omitempty"`
}

// OK reports whether every signature checked holds.
func (r *Report) OK() bool { return r.Error == "" }

// Verify checks the signatures of the SIF f (called path in messages).
// It returns a report in every case where the file is a SIF; err is only
// for a verifier that cannot be set up.
func Verify(f *sif.FileImage, path string, o VerifyOptions) (*Report, error) {
	rep := &Report{Image: path}
	var opts []integrity.VerifierOpt
	if o.KeyRing != nil {
		opts = append(opts, integrity.OptVerifyWithKeyRing(o.KeyRing))
	}
	for _, v := range o.Verifiers {
		opts = append(opts, integrity.OptVerifyWithVerifier(v.Verifier))
	}
	if o.Legacy {
		opts = append(opts, integrity.OptVerifyLegacy())
		if len(o.GroupIDs) == 0 && len(o.ObjectIDs) == 0 {
			od, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
			if err != nil {
				rep.Error = fmt.Sprintf("image %s: no system partition to check legacy signatures of", path)
				return rep, nil
			}
			opts = append(opts, integrity.OptVerifyObject(od.ID()))
		}
	}
	for _, id := range o.GroupIDs {
		opts = append(opts, integrity.OptVerifyGroup(id))
	}
	for _, id := range o.ObjectIDs {
		opts = append(opts, integrity.OptVerifyObject(id))
	}
	opts = append(opts, integrity.OptVerifyCallback(func(r integrity.VerifyResult) bool {
		rep.Results = append(rep.Results, result(f, r, o))
		return false
	}))
	v, err := integrity.NewVerifier(f, opts...)
	if err != nil {
		rep.Error = describe(path, nil, err)
		return rep, nil
	}
	if err := v.Verify(); err != nil {
		var failed *Result
		for i := range rep.Results {
			if rep.Results[i].Error != "" {
				failed = &rep.Results[i]
				break
			}
		}
		rep.Error = describe(path, failed, err)
	}
	return rep, nil
}

// result turns one VerifyResult into a Result.
func result(f *sif.FileImage, r integrity.VerifyResult, o VerifyOptions) Result {
	sig := r.Signature()
	res := Result{Signature: sig.ID(), Objects: []Object{}}
	if _, fp, err := sig.SignatureMetadata(); err == nil && len(fp) > 0 {
		res.Fingerprint = fmt.Sprintf("%X", fp)
	}
	if e := r.Entity(); e != nil {
		res.Fingerprint = fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
		if id := e.PrimaryIdentity(); id != nil {
			res.Name = id.Name
		}
	} else if keys := r.Keys(); len(keys) > 0 {
		for _, v := range o.Verifiers {
			if pk, err := v.PublicKey(); err == nil && sameKey(pk, keys[0]) {
				res.Name, res.Fingerprint = v.Name, v.ID
			}
		}
	} else if e := findEntity(o.KeyRing, res.Fingerprint); e != nil {
		if id := e.PrimaryIdentity(); id != nil {
			res.Name = id.Name
		}
	}
	for _, od := range r.Verified() {
		res.Objects = append(res.Objects, Object{ID: od.ID(), Type: describeObject(od), Name: od.Name()})
	}
	if err := r.Error(); err != nil {
		res.Error = cause(f, err, res.Fingerprint)
	}
	return res
}

func sameKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func findEntity(el openpgp.EntityList, fp string) *openpgp.Entity {
	for _, e := range el {
		if fmt.Sprintf("%X", e.PrimaryKey.Fingerprint) == fp {
			return e
		}
	}
	return nil
}

// describe is the one line for a failed verification of path: the
// failing signature's object and key when one failed, else the image.
func describe(path string, failed *Result, err error) string {
	if failed != nil {
		key := "key " + failed.Fingerprint
		if failed.Fingerprint == "" {
			key = "an unknown key"
		}
		if failed.Name != "" {
			key += " (" + failed.Name + ")"
		}
		return fmt.Sprintf("image %s: signature object %d by %s: %s", path, failed.Signature, key, failed.Error)
	}
	var nf *integrity.SignatureNotFoundError
	if errors.As(err, &nf) {
		return fmt.Sprintf("image %s: %s: the image is not signed (launch sign signs it)", path, strings.TrimPrefix(err.Error(), "integrity: "))
	}
	return fmt.Sprintf("image %s: %s", path, cause(nil, err, ""))
}

// cause says in words why a signature failed.
func cause(f *sif.FileImage, err error, fp string) string {
	var oe *integrity.ObjectIntegrityError
	var de *integrity.DescriptorIntegrityError
	switch {
	case errors.As(err, &oe):
		return fmt.Sprintf("object %d (%s) does not match the signature: it was changed after signing", oe.ID, objectName(f, oe.ID))
	case errors.As(err, &de):
		return fmt.Sprintf("the descriptor of object %d (%s) does not match the signature: it was changed after signing", de.ID, objectName(f, de.ID))
	case errors.Is(err, integrity.ErrHeaderIntegrity):
		return "the SIF header does not match the signature: it was changed after signing"
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return "the key is not among the trusted keys (not in your keyring, or not in launch.conf images.trusted_keys; launch key import adds it)"
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return "the key has been revoked"
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return "the key has expired"
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return "the signature has expired"
	}
	msg := strings.TrimPrefix(err.Error(), "integrity: ")
	if strings.Contains(msg, "no key material") {
		msg += " (give --key, or --certificate with --certificate-roots)"
	}
	return msg
}

// objectName names the object id of f: its type, and for a partition
// its file system and role.
func objectName(f *sif.FileImage, id uint32) string {
	if f == nil {
		return "?"
	}
	od, err := f.GetDescriptor(sif.WithID(id))
	if err != nil {
		return "?"
	}
	return describeObject(od)
}

// describeObject names a data object: "FS squashfs, system partition".
func describeObject(od sif.Descriptor) string {
	if od.DataType() == sif.DataPartition {
		if fs, pt, _, err := od.PartitionMetadata(); err == nil {
			role := map[sif.PartType]string{sif.PartPrimSys: "primary system partition", sif.PartSystem: "system partition",
				sif.PartData: "data partition", sif.PartOverlay: "overlay partition"}[pt]
			return od.DataType().String() + " " + fs.String() + ", " + role
		}
	}
	return od.DataType().String()
}

// Fingerprint is e's primary key fingerprint as results carry it.
func Fingerprint(e *openpgp.Entity) string { return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint) }
