package e2e

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/sylabs/sif/v2/pkg/integrity"
	"github.com/sylabs/sif/v2/pkg/sif"
)

// signHome is one user's launch home for signing: a keys directory and a
// cache directory of its own, and the environment that points launch at
// them.
type signHome struct {
	keys, cache string
	env         []string
}

func newSignHome(t *testing.T) signHome {
	t.Helper()
	d := t.TempDir()
	h := signHome{keys: filepath.Join(d, "keys"), cache: filepath.Join(d, "cache")}
	h.env = []string{"LAUNCH_KEYSDIR=" + h.keys, "LAUNCH_CACHEDIR=" + h.cache, "LAUNCH_KEY_PASSPHRASE=secret pass"}
	return h
}

func (h signHome) run(t *testing.T, extra []string, args ...string) result {
	t.Helper()
	return launchWith(t, runOpts{Env: append(append([]string{}, h.env...), extra...)}, args...)
}

// newpair makes a key in h (batch mode) and returns its fingerprint.
func (h signHome) newpair(t *testing.T, name string) string {
	t.Helper()
	r := h.run(t, nil, "key", "newpair", "--name", name, "--email", "x@example.org", "--comment", "test",
		"--password", "secret pass", "--push=false", "--bit-length", "2048")
	wantOK(t, r)
	f := strings.Fields(r.Stdout)
	if len(f) < 4 || len(f[3]) != 40 {
		t.Fatalf("newpair printed %q, want a fingerprint", r.Stdout)
	}
	return f[3]
}

// tamper flips one byte inside the SquashFS partition of the SIF p.
func tamper(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b[4096:], []byte("hsqs"))
	if i < 0 {
		t.Fatal("no SquashFS partition found")
	}
	b[4096+i+200] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// noTemps fails if the keys directory holds anything but the keyrings.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		switch e.Name() {
		case "pgp-public", "pgp-secret", ".lock":
			fi, _ := e.Info()
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
			}
		default:
			t.Errorf("keys directory holds %s after a key command", e.Name())
		}
	}
}

// TestSignVerify: a key made in batch mode signs an image; verify says who
// signed what; a tampered partition, a wrong passphrase, a key not in the
// keyring and a corrupt keyring each fail with one FATAL line naming the
// object and the key.
func TestSignVerify(t *testing.T) {
	h := newSignHome(t)
	fp := h.newpair(t, "Signer One")
	noTemps(t, h.keys)
	r := h.run(t, nil, "key", "list", "--secret")
	wantOK(t, r)
	if !strings.Contains(r.Stdout, fp) || !strings.Contains(r.Stdout, "Signer One (test) <x@example.org>") {
		t.Errorf("key list --secret: %q lacks the key", r.Stdout)
	}
	img := buildSIF(t, busyboxTree(t))
	wantFatal(t, h.run(t, []string{"LAUNCH_KEY_PASSPHRASE=wrong"}, "sign", img), "wrong passphrase", fp)
	wantOK(t, h.run(t, nil, "sign", img))
	r = h.run(t, nil, "verify", img)
	wantOK(t, r)
	for _, w := range []string{"Signature", "verified", fp, "Signer One", "FS Squashfs, primary system partition", "inspect-metadata.json"} {
		if !strings.Contains(r.Stdout, w) {
			t.Errorf("verify output lacks %q:\n%s", w, r.Stdout)
		}
	}
	r = h.run(t, nil, "verify", "--json", img)
	wantOK(t, r)
	var rep struct {
		Signatures []struct {
			Fingerprint string
			Objects     []struct{ ID uint32 }
		}
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || len(rep.Signatures) != 1 ||
		rep.Signatures[0].Fingerprint != fp || len(rep.Signatures[0].Objects) < 2 {
		t.Errorf("verify --json: %v, %q", err, r.Stdout)
	}

	// Another user's keyring does not hold the key.
	other := newSignHome(t)
	other.newpair(t, "Someone Else")
	wantFatal(t, other.run(t, nil, "verify", img), "signature object", fp, "not among the trusted keys")

	// A corrupt keyring.
	bad := newSignHome(t)
	if err := os.MkdirAll(bad.keys, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad.keys, "pgp-public"), []byte("\x99\x01garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantFatal(t, bad.run(t, nil, "verify", img), "keyring", "pgp-public", "corrupt")

	// An unsigned image, then a tampered one.
	unsigned := buildSIF(t, busyboxTree(t))
	wantFatal(t, h.run(t, nil, "verify", unsigned), unsigned, "not signed")
	tamper(t, img)
	wantFatal(t, h.run(t, nil, "verify", img), "object 3 (FS Squashfs, primary system partition)", fp, "changed after signing")

	// remove leaves whole keyrings.
	wantOK(t, h.run(t, nil, "key", "remove", "--both", fp))
	noTemps(t, h.keys)
	wantFatal(t, h.run(t, nil, "key", "remove", fp), "no key with fingerprint", fp)
}

// TestSignPolicy: images.verify = warn runs an unsigned image with a
// warning, require refuses it, and runs a signed one; the verdict is kept
// in the user's cache and reused; a tampered image and an untrusted key
// are refused.
func TestSignPolicy(t *testing.T) {
	h := newSignHome(t)
	fp := h.newpair(t, "Policy Signer")
	tree := busyboxTree(t)
	signed := filepath.Join(t.TempDir(), "signed.sif")
	wantFatal(t, h.run(t, []string{"LAUNCH_KEY_PASSPHRASE=wrong"}, "build", "-q", "--sign", signed, tree), "wrong passphrase", fp, "removed")
	if _, err := os.Lstat(signed); !os.IsNotExist(err) {
		t.Errorf("a failed build --sign left %s: %v", signed, err)
	}
	wantOK(t, h.run(t, nil, "build", "-q", "--sign", signed, tree))
	unsigned := buildSIF(t, tree)

	req := withConf(t, "[images]\nverify = \"require\"\n")
	warn := withConf(t, "[images]\nverify = \"warn\"\n")
	r := h.run(t, req, "-v", "exec", signed, "echo", "hello")
	wantOK(t, r)
	if r.Stdout != "hello\n" || !strings.Contains(r.Stderr, fp) || !strings.Contains(r.Stderr, "cached: false") {
		t.Errorf("first launch: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	r = h.run(t, req, "-v", "exec", signed, "echo", "hello")
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "cached: true") {
		t.Errorf("second launch did not use the cached verdict: %q", r.Stderr)
	}
	ents, _ := os.ReadDir(filepath.Join(h.cache, "verified"))
	if len(ents) == 0 {
		t.Errorf("no verdict in %s", filepath.Join(h.cache, "verified"))
	}

	wantFatal(t, h.run(t, req, "exec", unsigned, "true"), unsigned, "not signed", "images.verify = require")
	r = h.run(t, warn, "exec", unsigned, "echo", "ran")
	wantOK(t, r)
	if r.Stdout != "ran\n" || !strings.Contains(r.Stderr, "WARNING") || !strings.Contains(r.Stderr, "not signed") {
		t.Errorf("warn: stdout %q stderr %q", r.Stdout, r.Stderr)
	}

	// Another key is the only trusted one.
	const otherFP = "0123456789ABCDEF0123456789ABCDEF01234567"
	only := withConf(t, "[images]\nverify = \"require\"\ntrusted_keys = [\""+otherFP+"\"]\n")
	wantFatal(t, h.run(t, only, "exec", signed, "true"), signed, fp, "not among the trusted keys")
	mine := withConf(t, "[images]\nverify = \"require\"\ntrusted_keys = [\""+fp+"\"]\n")
	wantOK(t, h.run(t, mine, "exec", signed, "true"))

	r = h.run(t, req, "config", "show")
	wantOK(t, r)
	if !strings.Contains(r.Stdout, `verify = "require"`) || !strings.Contains(r.Stdout, "trusted_keys = []") {
		t.Errorf("config show lacks the policy:\n%s", r.Stdout)
	}

	// The verified image's path given an unsigned file (renamed over it):
	// another identity, checked again, and refused.
	swapped := filepath.Join(t.TempDir(), "swapped.sif")
	if err := copyFile(signed, swapped, 0o644); err != nil {
		t.Fatal(err)
	}
	wantOK(t, h.run(t, req, "exec", swapped, "true"))
	if err := copyFile(unsigned, swapped+".new", 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(swapped+".new", swapped); err != nil {
		t.Fatal(err)
	}
	wantFatal(t, h.run(t, req, "exec", swapped, "true"), swapped, "not signed", "images.verify = require")

	// A changed image is a new identity: checked again, and refused.
	tamper(t, signed)
	wantFatal(t, h.run(t, req, "exec", signed, "true"), "object 3", fp, "changed after signing", "images.verify = require")
}

// TestSignImportFromOtherHome: keys exported from one launch home (armoured,
// and the binary keyring file itself, as Apptainer keeps it) import into
// another, which then verifies and signs with them.
func TestSignImportFromOtherHome(t *testing.T) {
	a, b := newSignHome(t), newSignHome(t)
	fp := a.newpair(t, "Home A")
	img := buildSIF(t, busyboxTree(t))
	wantOK(t, a.run(t, nil, "sign", img))

	out := filepath.Join(t.TempDir(), "a.asc")
	wantOK(t, a.run(t, nil, "key", "export", "--armor", fp, out))
	wantFatal(t, a.run(t, nil, "key", "export", fp, out), "already exists")
	wantFatal(t, b.run(t, nil, "verify", img), "not among the trusted keys")
	r := b.run(t, nil, "key", "import", out)
	wantOK(t, r)
	if !strings.Contains(r.Stdout, fp) {
		t.Errorf("import printed %q", r.Stdout)
	}
	wantOK(t, b.run(t, nil, "verify", img))
	noTemps(t, b.keys)

	// The secret keyring file as it is (Apptainer's pgp-secret format).
	c := newSignHome(t)
	wantOK(t, c.run(t, nil, "key", "import", filepath.Join(a.keys, "pgp-secret")))
	img2 := buildSIF(t, busyboxTree(t))
	wantOK(t, c.run(t, nil, "sign", img2))
	wantOK(t, a.run(t, nil, "verify", img2))
	wantFatal(t, c.run(t, nil, "key", "import", filepath.Join(t.TempDir(), "missing")), "missing")
}

// TestSignX509: a PEM key signs (DSSE); verify checks it with the public
// key, and with a certificate issued by a CA made here; a certificate of
// another CA is refused.
func TestSignX509(t *testing.T) {
	h := newSignHome(t)
	dir := t.TempDir()
	caKey, caCert := makeCA(t, "Test CA")
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := issue(t, caKey, caCert, &leafKey.PublicKey, "Test Signer")
	_, otherCA := makeCA(t, "Other CA")
	pk8, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&leafKey.PublicKey)
	files := map[string][]byte{
		"key.pem":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8}),
		"pub.pem":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"cert.pem":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}),
		"ca.pem":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}),
		"other.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherCA.Raw}),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	img := buildSIF(t, busyboxTree(t))
	wantOK(t, h.run(t, nil, "sign", "--key", p("key.pem"), img))
	wantOK(t, h.run(t, nil, "verify", "--key", p("pub.pem"), img))
	r := h.run(t, nil, "verify", "--certificate", p("cert.pem"), "--certificate-roots", p("ca.pem"), img)
	wantOK(t, r)
	if !strings.Contains(r.Stdout, "CN=Test Signer") {
		t.Errorf("verify did not name the certificate's subject: %q", r.Stdout)
	}
	wantFatal(t, h.run(t, nil, "verify", "--certificate", p("cert.pem"), "--certificate-roots", p("other.pem"), img),
		"CN=Test Signer", "not trusted")
	// PGP keys alone cannot check a DSSE signature.
	wantFatal(t, h.run(t, nil, "verify", img), img, "key material")

	// The site policy with the CA and the certificate.
	conf := withConf(t, "[images]\nverify = \"require\"\ntrusted_roots = \""+p("ca.pem")+"\"\ntrusted_certificates = \""+p("cert.pem")+"\"\n")
	wantOK(t, h.run(t, conf, "exec", img, "true"))
	tamper(t, img)
	wantFatal(t, h.run(t, nil, "verify", "--key", p("pub.pem"), img), "object 3", "changed after signing")
}

func makeCA(t *testing.T, cn string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return k, c
}

func issue(t *testing.T, caKey *ecdsa.PrivateKey, ca *x509.Certificate, pub crypto.PublicKey, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// signWithLibrary signs the SIF p with e using the sif library's own
// signer (as Apptainer and SingularityCE do).
func signWithLibrary(t *testing.T, p string, e *openpgp.Entity) {
	t.Helper()
	f, err := sif.LoadContainerFromPath(p, sif.OptLoadWithFlag(os.O_RDWR))
	if err != nil {
		t.Fatal(err)
	}
	defer f.UnloadContainer()
	s, err := integrity.NewSigner(f, integrity.OptSignWithEntity(e))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sign(); err != nil {
		t.Fatal(err)
	}
}

// exportPublic writes e's public key to a file and returns its path.
func exportPublic(t *testing.T, e *openpgp.Entity) string {
	t.Helper()
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "pub.gpg")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignLibrarySigner: a SIF signed by the sif library's own signer
// verifies; the same with a key that has since expired, or that was
// revoked, fails naming the key.
func TestSignLibrarySigner(t *testing.T) {
	h := newSignHome(t)
	conf := &packet.Config{RSABits: 2048}
	e, err := openpgp.NewEntity("Library Signer", "", "lib@example.org", conf)
	if err != nil {
		t.Fatal(err)
	}
	img := buildSIF(t, busyboxTree(t))
	signWithLibrary(t, img, e)
	wantOK(t, h.run(t, nil, "key", "import", exportPublic(t, e)))
	r := h.run(t, nil, "verify", img)
	wantOK(t, r)
	fp := strings.ToUpper(strings.TrimSpace(strings.Fields(r.Stdout)[4]))
	if !strings.Contains(r.Stdout, "Library Signer") || len(fp) != 40 {
		t.Errorf("verify: %q", r.Stdout)
	}

	// Revoked: the revocation imported over the key.
	if err := e.RevokeKey(packet.KeyCompromised, "test", nil); err != nil {
		t.Fatal(err)
	}
	wantOK(t, h.run(t, nil, "key", "import", exportPublic(t, e)))
	wantFatal(t, h.run(t, nil, "verify", img), fp, "revoked")

	// Expired: a key valid for one second.
	ex, err := openpgp.NewEntity("Short Lived", "", "", &packet.Config{RSABits: 2048, KeyLifetimeSecs: 1})
	if err != nil {
		t.Fatal(err)
	}
	img2 := buildSIF(t, busyboxTree(t))
	signWithLibrary(t, img2, ex)
	h2 := newSignHome(t)
	wantOK(t, h2.run(t, nil, "key", "import", exportPublic(t, ex)))
	time.Sleep(2100 * time.Millisecond)
	wantFatal(t, h2.run(t, nil, "verify", img2), "Short Lived", "expired")
}
