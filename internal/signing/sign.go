package signing

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sylabs/sif/v2/pkg/integrity"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/launch-hpc/launch/internal/keyring"
)

// SignOptions say what to sign and with which key: Entity (an OpenPGP
// key, decrypted) or Signer (a PEM key, DSSE).
type SignOptions struct {
	Entity *openpgp.Entity
	Signer signature.Signer
	// GroupID signs that object group only; ObjectID that object only;
	// neither: one signature per object group (Apptainer's default).
	GroupID, ObjectID uint32
}

// Sign adds a signature to the SIF at path, in place, as Apptainer's
// `sign` does: the SIF library writes the signature object after the
// last one and then the descriptor and header, so an interrupted sign
// leaves the image as it was (with unused bytes at its end).
func Sign(path string, o SignOptions) error {
	f, err := sif.LoadContainerFromPath(path, sif.OptLoadWithFlag(os.O_RDWR))
	if err != nil {
		return fmt.Errorf("opening %s to sign it: %w", path, err)
	}
	defer f.UnloadContainer()
	var opts []integrity.SignerOpt
	switch {
	case o.Entity != nil:
		opts = append(opts, integrity.OptSignWithEntity(o.Entity))
	case o.Signer != nil:
		opts = append(opts, integrity.OptSignWithSigner(o.Signer))
	default:
		return fmt.Errorf("signing %s: no key", path)
	}
	if o.GroupID != 0 {
		opts = append(opts, integrity.OptSignGroup(o.GroupID))
	}
	if o.ObjectID != 0 {
		opts = append(opts, integrity.OptSignObjects(o.ObjectID))
	}
	s, err := integrity.NewSigner(f, opts...)
	if err != nil {
		return fmt.Errorf("signing %s: %w", path, err)
	}
	if err := s.Sign(); err != nil {
		return fmt.Errorf("signing %s: %w", path, err)
	}
	return nil
}

// LoadPrivateKey reads a PEM private key (PKCS#8, PKCS#1, EC; encrypted
// ones with the passphrase from pass) for DSSE signatures.
func LoadPrivateKey(path string, pass func(bool) ([]byte, error)) (signature.Signer, error) {
	b, err := keyring.ReadBounded(path, true)
	if err != nil {
		return nil, err
	}
	k, err := cryptoutils.UnmarshalPEMToPrivateKey(b, pass)
	if err != nil {
		return nil, fmt.Errorf("reading the private key %s: %w", path, err)
	}
	s, err := signature.LoadSigner(k, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return s, nil
}

// LoadPublicKey reads a PEM public key for DSSE signatures.
func LoadPublicKey(path string) (Verifier, error) {
	b, err := keyring.ReadBounded(path, true)
	if err != nil {
		return Verifier{}, err
	}
	k, err := cryptoutils.UnmarshalPEMToPublicKey(b)
	if err != nil {
		return Verifier{}, fmt.Errorf("reading the public key %s: %w", path, err)
	}
	return verifierFor(k, path)
}

func verifierFor(k crypto.PublicKey, name string) (Verifier, error) {
	v, err := signature.LoadVerifier(k, crypto.SHA256)
	if err != nil {
		return Verifier{}, fmt.Errorf("public key %s: %w", name, err)
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return Verifier{}, fmt.Errorf("public key %s: %w", name, err)
	}
	return Verifier{Verifier: v, Name: name, ID: fmt.Sprintf("%X", sha256.Sum256(der))}, nil
}

// LoadCertificates reads the PEM certificates in certPath, checks that
// each chains to a root of rootsPath (through intermediates in either
// file) for code signing, and returns their keys as verifiers.
func LoadCertificates(certPath, rootsPath string) ([]Verifier, error) {
	certs, err := readCerts(certPath)
	if err != nil {
		return nil, err
	}
	rootCerts, err := readCerts(rootsPath)
	if err != nil {
		return nil, err
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range rootCerts {
		roots.AddCert(c)
	}
	for _, c := range certs {
		if c.IsCA {
			inter.AddCert(c)
		}
	}
	var vs []Verifier
	for _, c := range certs {
		if c.IsCA {
			continue
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
			return nil, fmt.Errorf("certificate %q of %s is not trusted by the roots of %s: %w", c.Subject.String(), certPath, rootsPath, err)
		}
		v, err := verifierFor(c.PublicKey, c.Subject.String())
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s holds no signing certificate (only CA certificates)", certPath)
	}
	return vs, nil
}

func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := keyring.ReadTrusted(path)
	if err != nil {
		return nil, err
	}
	cs, err := cryptoutils.UnmarshalCertificatesFromPEM(b)
	if err != nil {
		return nil, fmt.Errorf("reading certificates from %s: %w", path, err)
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return cs, nil
}
