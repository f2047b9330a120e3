package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/helper"
	"github.com/launch-hpc/launch/internal/imagetrust"
)

// buildSign is `launch build --sign`: once the image is in place, it is
// signed by `launch sign` (the launch-sign helper, the same code), and
// removed again if signing fails, so that a failed build --sign leaves no
// unsigned image behind.
type buildSign struct {
	sign   bool
	keyIdx int
	key    string
}

// wrapBuildSign adds --sign, --keyidx and --key to the build command c and
// signs its OUT after a build that succeeded. sandbox is build's --sandbox.
func wrapBuildSign(c *cobra.Command, g *globals, sandbox *bool) {
	var s buildSign
	c.Flags().BoolVar(&s.sign, "sign", false, "sign the image once built (as 'launch sign' does)")
	c.Flags().IntVar(&s.keyIdx, "keyidx", 0, "with --sign: the secret key to sign with (launch key list --secret)")
	c.Flags().StringVar(&s.key, "key", "", "with --sign: sign with this PEM private key (DSSE) instead")
	inner := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if !s.sign {
			if cmd.Flags().Changed("keyidx") || cmd.Flags().Changed("key") {
				return errors.New("build: --keyidx and --key are for --sign")
			}
			return inner(cmd, args)
		}
		if *sandbox {
			return errors.New("build --sign: a sandbox directory cannot be signed, only a SIF")
		}
		prog, err := helper.Find(imagetrust.HelperName)
		if err != nil {
			return err // before building: no image made that cannot be signed
		}
		if err := inner(cmd, args); err != nil {
			return err
		}
		out := args[0]
		argv := []string{"sign"}
		if !g.Verbose() {
			argv = append(argv, "-q")
		}
		if cmd.Flags().Changed("keyidx") {
			argv = append(argv, "--keyidx", strconv.Itoa(s.keyIdx))
		}
		if s.key != "" {
			argv = append(argv, "--key", s.key)
		}
		sc := exec.Command(prog, append(argv, "--", out)...)
		var errb bytes.Buffer
		sc.Stdin, sc.Stdout, sc.Stderr = os.Stdin, g.stdout, &errb
		if err := sc.Run(); err != nil {
			_ = os.Remove(out)
			why := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(errb.String()), "FATAL:"))
			if why == "" {
				why = err.Error()
			}
			return fmt.Errorf("build --sign: %s (the image %s was removed)", why, out)
		}
		g.stderr.Write(errb.Bytes())
		return nil
	}
}
