package signcli

import (
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/keyring"
	"github.com/launch-hpc/launch/internal/signing"
)

// signFlags are the flags of `launch sign` (and `launch build --sign`).
type signFlags struct {
	keyIdx          int
	key             string
	sifID, groupID  uint32
	all             bool
	keyIdxGiven     bool
	objectsSelected bool
}

// NewSignCmd is `launch sign`.
func NewSignCmd(a *app) *cobra.Command {
	var f signFlags
	c := &cobra.Command{
		Use:   "sign [--keyidx N | --key PRIVATE.pem] [--sif-id ID | --group-id ID] IMAGE.sif",
		Short: "Add a signature to a SIF image (OpenPGP key of your keyring, or a PEM key)",
		Long: `Sign a SIF image as Apptainer does: by default one signature for each object
group, made with the secret key of your keyring (--keyidx N picks one, as
'launch key list --secret' numbers them) or, with --key, a PEM private key
(a DSSE signature, for x509 certificates). The signature is added to the
image in place.`,
		Args: cliutil.ExactArgs(1, "the image (IMAGE.sif)"),
		RunE: func(c *cobra.Command, args []string) error {
			f.keyIdxGiven = c.Flags().Changed("keyidx")
			return signImage(a, &f, args[0])
		},
	}
	fl := c.Flags()
	fl.IntVarP(&f.keyIdx, "keyidx", "k", 0, "index of the secret key to use (launch key list --secret)")
	fl.StringVar(&f.key, "key", "", "sign with this PEM private key (DSSE) instead of an OpenPGP key")
	fl.Uint32VarP(&f.sifID, "sif-id", "i", 0, "sign only the object with this id")
	fl.Uint32VarP(&f.groupID, "group-id", "g", 0, "sign only the object group with this id")
	fl.BoolVarP(&f.all, "all", "a", false, "sign all objects (the default; kept for Apptainer's scripts)")
	c.MarkFlagsMutuallyExclusive("keyidx", "key")
	c.MarkFlagsMutuallyExclusive("sif-id", "group-id")
	return c
}

// signImage signs path as f says.
func signImage(a *app, f *signFlags, path string) error {
	o := signing.SignOptions{GroupID: f.groupID, ObjectID: f.sifID}
	if f.key != "" {
		s, err := signing.LoadPrivateKey(f.key, func(bool) ([]byte, error) { return passphrase("the key "+f.key, false) })
		if err != nil {
			return err
		}
		o.Signer = s
	} else {
		e, err := secretKey(f)
		if err != nil {
			return err
		}
		o.Entity = e
	}
	if err := signing.Sign(path, o); err != nil {
		return err
	}
	who := f.key
	if o.Entity != nil {
		who = keyring.Fingerprint(o.Entity) + " (" + userID(o.Entity) + ")"
	}
	a.log().Infof("signed %s with %s", path, who)
	return nil
}

// secretKey picks the secret key f asks for and decrypts it.
func secretKey(f *signFlags) (*openpgp.Entity, error) {
	r, err := ring()
	if err != nil {
		return nil, err
	}
	el, err := r.Secret()
	if err != nil {
		return nil, err
	}
	switch {
	case len(el) == 0:
		return nil, fmt.Errorf("no secret key in %s: make one (launch key newpair) or import one (launch key import)", r.SecretPath())
	case f.keyIdxGiven && (f.keyIdx < 0 || f.keyIdx >= len(el)):
		return nil, fmt.Errorf("--keyidx %d: %s has keys 0 to %d (launch key list --secret)", f.keyIdx, r.SecretPath(), len(el)-1)
	case !f.keyIdxGiven && len(el) > 1:
		return nil, fmt.Errorf("%s has %d secret keys: choose one with --keyidx N (launch key list --secret)", r.SecretPath(), len(el))
	}
	e := el[f.keyIdx]
	fp := keyring.Fingerprint(e)
	if e.PrivateKey == nil {
		return nil, fmt.Errorf("key %s in %s has no secret part", fp, r.SecretPath())
	}
	if e.PrivateKey.Encrypted {
		p, err := passphrase("key "+fp+" ("+userID(e)+")", false)
		if err != nil {
			return nil, err
		}
		if err := e.DecryptPrivateKeys(p); err != nil {
			return nil, fmt.Errorf("key %s (%s): wrong passphrase (%v)", fp, userID(e), err)
		}
	}
	if e.Revoked(timeNow()) {
		return nil, fmt.Errorf("key %s (%s) is revoked: it cannot sign", fp, userID(e))
	}
	if _, ok := e.SigningKey(timeNow()); !ok {
		return nil, fmt.Errorf("key %s (%s) has no valid signing key (expired?)", fp, userID(e))
	}
	return e, nil
}
