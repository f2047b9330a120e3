package signing

import (
	"bytes"
	"crypto"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/sylabs/sif/v2/pkg/integrity"
	"github.com/sylabs/sif/v2/pkg/sif"
)

// testKey is one RSA key for the tests (made once: key generation is slow).
var testKey = func() *openpgp.Entity {
	e, err := openpgp.NewEntity("Fuzz Signer", "", "fuzz@example.org", &packet.Config{RSABits: 1024})
	if err != nil {
		panic(err)
	}
	return e
}()

// newSIF makes an in-memory SIF with one SquashFS-typed partition in group 1.
func newSIF(t testing.TB) (*sif.Buffer, *sif.FileImage) {
	t.Helper()
	part, err := sif.NewDescriptorInput(sif.DataPartition, bytes.NewReader(bytes.Repeat([]byte("hsqs data "), 100)),
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, "amd64"), sif.OptGroupID(1))
	if err != nil {
		t.Fatal(err)
	}
	b := sif.NewBuffer(nil)
	f, err := sif.CreateContainer(b, sif.OptCreateDeterministic(), sif.OptCreateWithDescriptors(part),
		sif.OptCreateWithTime(time.Unix(1, 0)))
	if err != nil {
		t.Fatal(err)
	}
	return b, f
}

// signedData is the data of a real signature of a fresh SIF's group 1.
func signedData(t testing.TB) []byte {
	t.Helper()
	_, f := newSIF(t)
	s, err := integrity.NewSigner(f, integrity.OptSignWithEntity(testKey), integrity.OptSignDeterministic())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sign(); err != nil {
		t.Fatal(err)
	}
	d, err := f.GetDescriptor(sif.WithDataType(sif.DataSignature))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.GetData()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyWithSignature adds a signature object holding data (metadata: hash
// ht, fingerprint fp) to a fresh SIF and verifies it with testKey.
func verifyWithSignature(t testing.TB, data []byte, ht crypto.Hash, fp []byte) *Report {
	t.Helper()
	_, f := newSIF(t)
	di, err := sif.NewDescriptorInput(sif.DataSignature, bytes.NewReader(data),
		sif.OptNoGroup(), sif.OptSignatureMetadata(ht, fp), sif.OptLinkedGroupID(1))
	if err != nil {
		return nil // the sif library refuses to write it: nothing to parse
	}
	if err := f.AddObject(di, sif.OptAddDeterministic()); err != nil {
		return nil
	}
	rep, err := Verify(f, "fuzz.sif", VerifyOptions{KeyRing: openpgp.EntityList{testKey}})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

// TestVerifySeeds: the real signature verifies and names its key and
// object; a signature with one byte changed does not.
func TestVerifySeeds(t *testing.T) {
	good := signedData(t)
	fp := testKey.PrimaryKey.Fingerprint
	rep := verifyWithSignature(t, good, crypto.SHA256, fp)
	if rep == nil || !rep.OK() || len(rep.Results) != 1 || rep.Results[0].Name != "Fuzz Signer <fuzz@example.org>" ||
		len(rep.Results[0].Objects) != 1 || rep.Results[0].Objects[0].ID != 1 {
		t.Fatalf("real signature: %+v", rep)
	}
	bad := bytes.Clone(good)
	i := bytes.Index(bad, []byte("\n\n")) + 10 // inside the signed text
	bad[i] ^= 1
	if rep := verifyWithSignature(t, bad, crypto.SHA256, fp); rep == nil || rep.OK() || rep.Error == "" {
		t.Fatalf("changed signature verified: %+v", rep)
	}
	if rep := verifyWithSignature(t, []byte("not a signature"), crypto.SHA256, fp); rep == nil || rep.OK() {
		t.Fatalf("garbage verified: %+v", rep)
	}
}

// FuzzVerifySignature feeds arbitrary signature objects (data, hash type
// and fingerprint in the descriptor) to Verify: it must never panic, and
// report success only for data that verifies the real group (which only
// the genuine signature, or one equivalent to it, can).
func FuzzVerifySignature(f *testing.F) {
	good := signedData(f)
	fp := testKey.PrimaryKey.Fingerprint
	f.Add(good, uint8(crypto.SHA256), fp)
	f.Add(good[:len(good)/2], uint8(crypto.SHA256), fp)
	f.Add([]byte(`{"payloadType":"application/vnd.sylabs.sif-metadata+json","payload":"e30=","signatures":[]}`), uint8(crypto.SHA256), []byte{})
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\n\n{}\n-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n"), uint8(0), []byte{1, 2})
	f.Fuzz(func(t *testing.T, data []byte, ht uint8, fpIn []byte) {
		if len(data) == 0 || len(data) > 1<<16 || len(fpIn) > 20 {
			return
		}
		rep := verifyWithSignature(t, data, crypto.Hash(ht), fpIn)
		if rep == nil {
			return
		}
		if rep.OK() {
			if len(rep.Results) != 1 || len(rep.Results[0].Objects) != 1 || rep.Results[0].Objects[0].ID != 1 ||
				rep.Results[0].Fingerprint != keyringFP() {
				t.Fatalf("a verified signature that does not cover the partition with the test key: %+v", rep)
			}
		} else if rep.Error == "" {
			t.Fatal("failure without a message")
		}
	})
}

func keyringFP() string {
	return Fingerprint(testKey)
}
