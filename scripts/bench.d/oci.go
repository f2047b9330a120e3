package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/launch-hpc/launch/internal/testregistry"
	"github.com/launch-hpc/launch/internal/treetar"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ociLayoutCmd is `benchdrv ocilayout [-tag T] [-push REF] TREE OUTDIR`: it
// makes a single-layer OCI image of the directory TREE (gzip layer, owners
// and hard links kept; files the caller cannot read are left out and
// counted) and writes it as an OCI image layout in OUTDIR, tagged T. With
// -push it also pushes the image, as written in the layout, to REF over
// plain HTTP (a local test registry).
func ociLayoutCmd(args []string) error {
	fl := flag.NewFlagSet("ocilayout", flag.ExitOnError)
	tag := fl.String("tag", "latest", "the image's tag in the layout (org.opencontainers.image.ref.name)")
	push := fl.String("push", "", "also push the image to this reference (HOST:PORT/REPO:TAG, plain HTTP)")
	_ = fl.Parse(args)
	if fl.NArg() != 2 {
		usage()
	}
	tree, out := fl.Arg(0), fl.Arg(1)

	// The layer's tar goes to a temp file next to the layout, so that the
	// layer can be read more than once (digest, then the blob) without
	// holding it in memory.
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("making %s: %w", out, err)
	}
	tf, err := os.CreateTemp(out, ".layer-*.tar")
	if err != nil {
		return fmt.Errorf("making the layer's temp file: %w", err)
	}
	defer os.Remove(tf.Name())
	skipped, err := treetar.Write(tf, tree, true)
	if cerr := tf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("making a layer of %s: %w", tree, err)
	}
	if skipped > 0 {
		fmt.Fprintf(os.Stderr, "benchdrv: left %d unreadable files or directories of %s out of the layer\n", skipped, tree)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return os.Open(tf.Name()) })
	if err != nil {
		return fmt.Errorf("making a layer of %s: %w", tree, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("making the image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the image's config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd: []string{"/bin/bash"},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return fmt.Errorf("setting the image's config: %w", err)
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the layout %s: %w", out, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": *tag})); err != nil {
		return fmt.Errorf("writing the image into %s: %w", out, err)
	}
	if *push == "" {
		return nil
	}
	// Push what the layout holds (the compressed blob as written), not the
	// tar again: no second compression, and the same bytes in both sources.
	d, err := img.Digest()
	if err != nil {
		return fmt.Errorf("reading the image's digest: %w", err)
	}
	limg, err := p.Image(d)
	if err != nil {
		return fmt.Errorf("reading the image back from %s: %w", out, err)
	}
	ref, err := name.ParseReference(*push, name.Insecure)
	if err != nil {
		return fmt.Errorf("bad -push reference %q: %w", *push, err)
	}
	if err := remote.Write(ref, limg); err != nil {
		return fmt.Errorf("pushing to %s: %w", ref, err)
	}
	return nil
}

// registryCmd is `benchdrv registry -dir DIR -hostfile FILE`: it starts
// docker-registry (Debian's distribution) on a free 127.0.0.1 port with its
// storage under DIR, writes HOST:PORT to FILE once the registry answers,
// and keeps it running until benchdrv gets SIGTERM or SIGINT, then stops it
// (the registry also dies with benchdrv: parent-death signal).
func registryCmd(args []string) error {
	fl := flag.NewFlagSet("registry", flag.ExitOnError)
	dir := fl.String("dir", "", "the registry's directory (config, storage, log)")
	hostFile := fl.String("hostfile", "", "where to write HOST:PORT once it answers")
	_ = fl.Parse(args)
	if *dir == "" || *hostFile == "" || fl.NArg() != 0 {
		usage()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	reg, err := testregistry.Real(*dir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*hostFile, []byte(reg.Host+"\n"), 0o644); err != nil {
		reg.Stop()
		return err
	}
	select {
	case <-sigs:
		reg.Stop()
		return nil
	case <-reg.Exited():
		return testregistry.ErrExited
	}
}
