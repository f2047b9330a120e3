package ocicli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/oras"
	"github.com/launch-hpc/launch/internal/progress"
	"github.com/launch-hpc/launch/internal/transport"
)

// NewPushCmd is `launch push IMAGE.sif oras://REF`.
func NewPushCmd(g cliutil.Globals) *cobra.Command {
	var f cliutil.OCIFlags
	var allowUnsigned bool
	c := &cobra.Command{
		Use:   "push [flags] IMAGE.sif oras://REF",
		Short: "Upload a SIF file to an OCI registry as an ORAS artifact",
		Long: `push stores the SIF file IMAGE.sif in an OCI registry (Harbor, GitLab,
a distribution registry …) as an ORAS artifact, the way Apptainer does: an
OCI image manifest whose config is the empty JSON object (media type
` + oras.ConfigMediaType + `) and whose one layer is the SIF
file (` + oras.LayerMediaType + `), titled with its file name.
'launch pull oras://REF' and 'apptainer pull oras://REF' read it back.

REF is [REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST] (TAG defaults to latest).
Credentials come from --docker-username/--docker-password
(LAUNCH_DOCKER_USERNAME/_PASSWORD), --docker-login, 'launch registry login'
or ~/.docker/config.json. Blobs the registry already has are not sent again.`,
		Example: `  launch push app.sif oras://registry.example.org/group/app:1.0
  launch push --nohttps app.sif oras://127.0.0.1:5000/test/app:latest`,
		Args: cliutil.ExactArgs(2, "IMAGE.sif and oras://REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, dest := args[0], args[1]
			if m, ok := transport.Unsupported(dest); ok {
				return errors.New(m)
			}
			if name, _, ok := transport.Split(dest); !ok || name != transport.Oras {
				return fmt.Errorf("push %s: launch pushes SIF files to OCI registries as oras://REGISTRY/REPOSITORY[:TAG]", dest)
			}
			ref, err := oras.ParseRef(dest)
			if err != nil {
				return err
			}
			img, err := image.Open(file)
			if err != nil {
				return err
			}
			if img.Format != image.FormatSIF {
				return fmt.Errorf("%s is a %s image, not a SIF file: push stores SIF files (make one with launch build)", file, img.Format)
			}
			fh, err := os.Open(file)
			if err != nil {
				return err
			}
			defer fh.Close()
			cr, err := credentials(&f, dest)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tty := g.Stderr() == os.Stderr && progress.IsTerminal(os.Stderr)
			pr := progress.New(g.Stderr(), tty, g.Quiet())
			fi, err := fh.Stat()
			if err != nil {
				return err
			}
			bar := pr.Bar("Uploading", fi.Size())
			desc, err := oras.Push(ctx, fh, ref, oras.PushOptions{
				Options: oras.Options{Username: cr.user, Password: cr.pass, Stored: cr.stored,
					DockerConfig: true, PlainHTTP: f.NoHTTPS},
				Title:    filepath.Base(file),
				Created:  created(fh),
				Progress: bar.Add,
				Hashing:  func() { pr.Step("Pushing %s to %s", file, ref) },
			})
			bar.Done()
			if err != nil {
				return err
			}
			pr.Step("Pushed %s: %s", ref, desc.Digest)
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.NoHTTPS, "nohttps", false, "talk plain HTTP to the registry (a local test registry)")
	fl.BoolVar(&f.NoHTTPS, "no-https", false, "same as --nohttps")
	_ = fl.MarkHidden("no-https")
	fl.StringVar(&f.DockerUser, "docker-username", "", "registry user name ($LAUNCH_DOCKER_USERNAME; default: launch registry login, ~/.docker/config.json)")
	fl.StringVar(&f.DockerPass, "docker-password", "", "registry password or token ($LAUNCH_DOCKER_PASSWORD)")
	fl.BoolVar(&f.DockerLogin, "docker-login", false, "ask for the registry user name and password on the terminal")
	fl.BoolVarP(&allowUnsigned, "allow-unsigned", "U", false, "accepted for Apptainer compatibility (push does not require a signed image)")
	return c
}

// created is the SIF's creation time from its header (zero when unknown).
func created(f *os.File) time.Time {
	fi, err := sif.LoadContainer(f, sif.OptLoadWithFlag(os.O_RDONLY), sif.OptLoadWithCloseOnUnload(false))
	if err != nil {
		return time.Time{}
	}
	defer fi.UnloadContainer()
	return fi.CreatedAt()
}
