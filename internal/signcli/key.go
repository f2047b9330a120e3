package signcli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/keyring"
)

// NewKeyCmd is `launch key`.
func NewKeyCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "key newpair|list|export|import|remove",
		Short: "Manage the OpenPGP keys that sign and verify images (~/.launch/keys)",
		Long: `Manage your OpenPGP keyrings: pgp-public and pgp-secret in ~/.launch/keys
($LAUNCH_KEYSDIR), in the formats Apptainer keeps in ~/.apptainer/keys, so
'launch key import ~/.apptainer/keys/pgp-public' works. Passphrases are asked
on the terminal, or taken from $LAUNCH_KEY_PASSPHRASE or the first line of
the file $LAUNCH_KEY_PASSPHRASE_FILE.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	c.AddCommand(newPairCmd(a), newListCmd(a), newExportCmd(a), newImportCmd(a), newRemoveCmd(a))
	return c
}

func newPairCmd(a *app) *cobra.Command {
	var o keyring.PairOptions
	var password string
	var push bool
	c := &cobra.Command{
		Use:     "newpair",
		Short:   "Make a new key pair and add it to your keyrings",
		Example: `  launch key newpair --name "Ada Lovelace" --email ada@example.org --password "$PW" --push=false`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if push {
				return errors.New("key newpair --push: launch has no keyserver support yet; export the key (launch key export) and publish it yourself")
			}
			if o.Name == "" {
				n, err := askLine("Name: ")
				if err != nil {
					return errors.New("key newpair needs --name (no terminal to ask on)")
				}
				o.Name = n
			}
			if c.Flags().Changed("password") {
				o.Passphrase = []byte(password)
			} else {
				p, err := passphrase("the new key (empty: none)", true)
				if err != nil {
					return fmt.Errorf("%w (or give --password)", err)
				}
				o.Passphrase = p
			}
			r, err := ring()
			if err != nil {
				return err
			}
			a.log().Infof("making a %d-bit RSA key pair", o.Bits)
			e, err := r.NewPair(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Generated key pair %s (%s) in %s\n", keyring.Fingerprint(e), userID(e), r.Dir)
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&o.Name, "name", "N", "", "the key's name")
	f.StringVarP(&o.Email, "email", "E", "", "the key's email address")
	f.StringVarP(&o.Comment, "comment", "C", "", "a comment on the key")
	f.StringVarP(&password, "password", "P", "", `passphrase of the secret key ("" for none; default: asked, or $LAUNCH_KEY_PASSPHRASE)`)
	f.BoolVarP(&push, "push", "U", false, "publish the public key on a keyserver (not supported)")
	f.IntVarP(&o.Bits, "bit-length", "b", 4096, "RSA key length in bits")
	return c
}

// userID is the first user id of e, as "Name (comment) <email>".
func userID(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	return "no user id"
}

func newListCmd(a *app) *cobra.Command {
	var secret bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the keys in your public (or --secret) keyring",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			r, err := ring()
			if err != nil {
				return err
			}
			el, p := openpgp.EntityList(nil), r.PublicPath()
			if secret {
				p = r.SecretPath()
				el, err = r.Secret()
			} else {
				el, err = r.Public()
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s:\n\n", p)
			for i, e := range el {
				fmt.Fprintf(a.stdout, "%d) ", i)
				fmt.Fprintf(a.stdout, "User:              %s\n", userID(e))
				bits, _ := e.PrimaryKey.BitLength()
				fmt.Fprintf(a.stdout, "   Creation time:     %s\n   Fingerprint:       %s\n   Length (in bits):  %d\n",
					e.PrimaryKey.CreationTime.UTC().Format("2006-01-02 15:04:05 MST"), keyring.Fingerprint(e), bits)
				if e.Revoked(timeNow()) {
					fmt.Fprintln(a.stdout, "   Status:            revoked")
				}
				fmt.Fprintln(a.stdout)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&secret, "secret", "s", false, "list the secret keyring")
	return c
}

func newExportCmd(a *app) *cobra.Command {
	var secret, armor bool
	c := &cobra.Command{
		Use:   "export [-s] [-a] FINGERPRINT OUTPUT",
		Short: "Write a key of your keyring to a file",
		Args:  cliutil.ExactArgs(2, "FINGERPRINT and OUTPUT"),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := ring()
			if err != nil {
				return err
			}
			el, err := r.Public()
			if secret {
				el, err = r.Secret()
			}
			if err != nil {
				return err
			}
			found := keyring.Find(el, args[0])
			if len(found) == 0 {
				return fmt.Errorf("no key with fingerprint %s in your %s keyring (launch key list%s)", args[0], kind(secret), map[bool]string{true: " --secret"}[secret])
			}
			var buf bytes.Buffer
			if armor {
				err = keyring.Armor(&buf, found, secret)
			} else {
				err = keyring.Serialize(&buf, found, secret)
			}
			if err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if secret {
				mode = 0o600
			}
			if err := writeNew(args[1], buf.Bytes(), mode); err != nil {
				return err
			}
			a.log().Infof("exported key %s to %s", keyring.Fingerprint(found[0]), args[1])
			return nil
		},
	}
	c.Flags().BoolVarP(&secret, "secret", "s", false, "export the secret key")
	c.Flags().BoolVarP(&armor, "armor", "a", false, "ASCII-armoured output")
	return c
}

func kind(secret bool) string {
	if secret {
		return "secret"
	}
	return "public"
}

// writeNew writes b to the new file p atomically: a temporary file in its
// directory, synced, linked to p only if p does not exist.
func writeNew(p string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(p)
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Link(tmp, p)
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s already exists: remove it first, or choose another name", p)
		}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

func newImportCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "import FILE",
		Short: "Add the keys of a file (an export, or Apptainer's pgp-public or pgp-secret) to your keyrings",
		Args:  cliutil.ExactArgs(1, "the key file to import"),
		RunE: func(_ *cobra.Command, args []string) error {
			el, err := keyring.ReadFile(args[0])
			if err != nil {
				return err
			}
			r, err := ring()
			if err != nil {
				return err
			}
			fps, err := r.Import(el)
			if err != nil {
				return err
			}
			for i, fp := range fps {
				what := "public key"
				if el[i].PrivateKey != nil {
					what = "key pair"
				}
				fmt.Fprintf(a.stdout, "Imported %s %s (%s)\n", what, fp, userID(el[i]))
			}
			return nil
		},
	}
	return c
}

func newRemoveCmd(a *app) *cobra.Command {
	var secret, both bool
	c := &cobra.Command{
		Use:   "remove [--secret|--both] FINGERPRINT",
		Short: "Remove a key from your public keyring (or the secret one, or both)",
		Args:  cliutil.ExactArgs(1, "the FINGERPRINT of the key to remove"),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := ring()
			if err != nil {
				return err
			}
			if err := r.Remove(args[0], !secret || both, secret || both); err != nil {
				return err
			}
			a.log().Infof("removed key %s", args[0])
			return nil
		},
	}
	c.Flags().BoolVarP(&secret, "secret", "s", false, "remove it from the secret keyring")
	c.Flags().BoolVarP(&both, "both", "b", false, "remove it from both keyrings")
	return c
}
