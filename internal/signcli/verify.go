package signcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/spf13/cobra"
	"github.com/sylabs/sif/v2/pkg/sif"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/imagetrust"
	"github.com/launch-hpc/launch/internal/keyring"
	"github.com/launch-hpc/launch/internal/signing"
)

// verifyFlags are the flags of `launch verify`.
type verifyFlags struct {
	key, cert, roots string
	legacy, jsonOut  bool
	sifID, groupID   uint32
}

// NewVerifyCmd is `launch verify`.
func NewVerifyCmd(a *app) *cobra.Command {
	var f verifyFlags
	c := &cobra.Command{
		Use:   "verify [--key PUBLIC.pem | --certificate CERT --certificate-roots PEM] [--legacy-insecure] [--json] IMAGE.sif",
		Short: "Check the signatures of a SIF image and say who signed what",
		Long: `Check every signature of a SIF image (by default those of every object group)
against the OpenPGP keys of your public keyring and the site's global keyring,
a PEM public key (--key), or an x509 certificate checked against CA roots
(--certificate, --certificate-roots). It prints each signature's key, signer
and the objects it covers, and fails (exit 255) when a signature is bad, by an
unknown key, or missing.`,
		Args: cliutil.ExactArgs(1, "the image (IMAGE.sif)"),
		RunE: func(c *cobra.Command, args []string) error {
			if (f.cert == "") != (f.roots == "") {
				return errors.New("verify: --certificate and --certificate-roots go together")
			}
			return verifyImage(a, &f, args[0])
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.key, "key", "", "verify DSSE signatures with this PEM public key")
	fl.StringVar(&f.cert, "certificate", "", "verify DSSE signatures with the key of this PEM x509 certificate")
	fl.StringVar(&f.roots, "certificate-roots", "", "PEM file of the CA certificates the certificate must chain to")
	fl.BoolVar(&f.legacy, "legacy-insecure", false, "check the legacy signatures of images signed by Singularity before 3.6")
	fl.BoolVarP(&f.jsonOut, "json", "j", false, "print the result as JSON")
	fl.Uint32VarP(&f.sifID, "sif-id", "i", 0, "check only the signatures of the object with this id")
	fl.Uint32VarP(&f.groupID, "group-id", "g", 0, "check only the signatures of the object group with this id")
	c.MarkFlagsMutuallyExclusive("key", "certificate")
	return c
}

// loadSIF opens the SIF at path read-only: a regular file, opened without
// blocking on a FIFO.
func loadSIF(path string) (*sif.FileImage, *os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "opening image", Path: path, Err: err}
	}
	file := os.NewFile(uintptr(fd), path)
	return loadSIFFile(file, path)
}

func loadSIFFile(file *os.File, path string) (*sif.FileImage, *os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(file.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		file.Close()
		return nil, nil, fmt.Errorf("image %s is not a regular file", path)
	}
	f, err := sif.LoadContainer(file, sif.OptLoadWithFlag(os.O_RDONLY), sif.OptLoadWithCloseOnUnload(false))
	if err != nil {
		file.Close()
		return nil, nil, fmt.Errorf("image %s is not a SIF file that can be verified: %w", path, err)
	}
	return f, file, nil
}

// verifyImage runs `launch verify`.
func verifyImage(a *app, f *verifyFlags, path string) error {
	o := signing.VerifyOptions{Legacy: f.legacy}
	if f.sifID != 0 {
		o.ObjectIDs = []uint32{f.sifID}
	}
	if f.groupID != 0 {
		o.GroupIDs = []uint32{f.groupID}
	}
	switch {
	case f.key != "":
		v, err := signing.LoadPublicKey(f.key)
		if err != nil {
			return err
		}
		o.Verifiers = []signing.Verifier{v}
	case f.cert != "":
		vs, err := signing.LoadCertificates(f.cert, f.roots)
		if err != nil {
			return err
		}
		o.Verifiers = vs
	default:
		kr, err := userKeys(nil)
		if err != nil {
			return err
		}
		o.KeyRing = kr
	}
	img, file, err := loadSIF(path)
	if err != nil {
		return err
	}
	defer file.Close()
	defer img.UnloadContainer()
	rep, err := signing.Verify(img, path, o)
	if err != nil {
		return err
	}
	if f.jsonOut {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintf(a.stdout, "%s\n", b)
	} else {
		printReport(a, rep)
	}
	if !rep.OK() {
		return errors.New(rep.Error)
	}
	return nil
}

// printReport prints who signed what.
func printReport(a *app, rep *signing.Report) {
	for _, r := range rep.Results {
		status := "verified"
		if r.Error != "" {
			status = "FAILED: " + r.Error
		}
		fmt.Fprintf(a.stdout, "Signature %d: %s\n  Fingerprint: %s\n  Signer:      %s\n  Objects:    ", r.Signature, status, r.Fingerprint, orNone(r.Name))
		if len(r.Objects) == 0 {
			fmt.Fprint(a.stdout, " none verified")
		}
		for i, ob := range r.Objects {
			sep := ","
			if i == 0 {
				sep = ""
			}
			fmt.Fprintf(a.stdout, "%s %d (%s%s)", sep, ob.ID, ob.Type, nameSuffix(ob.Name))
		}
		fmt.Fprintln(a.stdout)
	}
	if rep.OK() {
		a.log().Infof("image %s: %d signature(s) verified", rep.Image, len(rep.Results))
	}
}

func orNone(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func nameSuffix(n string) string {
	if n == "" {
		return ""
	}
	return " " + n
}

// userKeys is the user's public keyring with the site's global one; only
// the keys of trusted when it is not empty.
func userKeys(trusted []string) (openpgp.EntityList, error) {
	r, err := ring()
	if err != nil {
		return nil, err
	}
	el, err := r.Public()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(keyring.GlobalPath()); err == nil {
		gb, err := keyring.ReadTrusted(keyring.GlobalPath())
		if err != nil {
			return nil, err
		}
		g, err := keyring.Parse(keyring.GlobalPath(), gb)
		if err != nil {
			return nil, err
		}
		el = append(el, g...)
	}
	if len(trusted) == 0 {
		if el == nil {
			el = openpgp.EntityList{} // no key: every PGP signature is by an unknown key
		}
		return el, nil
	}
	var out openpgp.EntityList
	for _, fp := range trusted {
		out = append(out, keyring.Find(el, fp)...)
	}
	if out == nil {
		out = openpgp.EntityList{} // no trusted key at hand: nothing verifies
	}
	return out, nil
}

// newVerdictCmd is the hidden command of the launch-time policy check
// (internal/imagetrust): it checks the SIF on fd 3 and prints the verdict.
func newVerdictCmd(a *app) *cobra.Command {
	var trusted []string
	var cert, roots string
	c := &cobra.Command{
		Use:    imagetrust.VerdictArg + " IMAGE-NAME",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o := signing.VerifyOptions{}
			kr, err := userKeys(trusted)
			if err != nil {
				return err
			}
			o.KeyRing = kr
			if cert != "" {
				vs, err := signing.LoadCertificates(cert, roots)
				if err != nil {
					return err
				}
				o.Verifiers = vs
			}
			img, file, err := loadSIFFile(os.NewFile(3, args[0]), args[0])
			if err != nil {
				fmt.Fprintf(a.stdout, "fail %s\n", oneLine(err.Error()))
				return nil
			}
			defer file.Close()
			defer img.UnloadContainer()
			rep, err := signing.Verify(img, args[0], o)
			if err != nil {
				return err
			}
			if !rep.OK() {
				fmt.Fprintf(a.stdout, "fail %s\n", oneLine(rep.Error))
				return nil
			}
			var who []string
			for _, r := range rep.Results {
				who = append(who, r.Fingerprint+" ("+orNone(r.Name)+")")
			}
			fmt.Fprintf(a.stdout, "ok signed by %s\n", oneLine(strings.Join(who, ", ")))
			return nil
		},
	}
	c.Flags().StringArrayVar(&trusted, "trusted-key", nil, "a trusted fingerprint")
	c.Flags().StringVar(&cert, "certificate", "", "trusted signing certificates (PEM)")
	c.Flags().StringVar(&roots, "certificate-roots", "", "their CA roots (PEM)")
	return c
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
