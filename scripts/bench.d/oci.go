package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

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
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return fmt.Errorf("docker-registry is not installed (Debian package docker-registry): %w", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	for attempt := 0; attempt < 3; attempt++ {
		host, cmd, exited, err := startRegistry(bin, *dir, attempt)
		if err != nil {
			return err
		}
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if !waitRegistry(host, exited) {
			stop()
			fmt.Fprintf(os.Stderr, "benchdrv: docker-registry on %s did not come up (log: %s)\n", host, cmd.Stdout.(*os.File).Name())
			continue
		}
		if err := os.WriteFile(*hostFile, []byte(host+"\n"), 0o644); err != nil {
			stop()
			return err
		}
		select {
		case <-sigs:
			stop()
			return nil
		case <-exited:
			return errors.New("docker-registry exited early")
		}
	}
	return errors.New("docker-registry did not start")
}

// startRegistry starts docker-registry on a port that was free a moment ago.
func startRegistry(bin, dir string, attempt int) (string, *exec.Cmd, chan struct{}, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	host := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s/data}, delete: {enabled: true}}\nhttp: {addr: %s}\n", dir, host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return "", nil, nil, err
	}
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt)))
	if err != nil {
		return "", nil, nil, err
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", nil, nil, fmt.Errorf("starting docker-registry: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	return host, cmd, exited, nil
}

// waitRegistry waits up to 15 s for GET /v2/ to answer 200.
func waitRegistry(host string, exited chan struct{}) bool {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
