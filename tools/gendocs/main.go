// Command gendocs writes launch's manual pages and shell completion scripts
// from its command tree (the same tree the launch and launch-oci binaries
// run, with the real pull and cache commands), for `make` to build and
// `make install` to install:
//
//	gendocs -version V OUTDIR
//
// writes OUTDIR/man1/launch.1, launch-exec.1, … and OUTDIR/completion/
// launch.bash, _launch (zsh) and launch.fish. It is a build tool, not
// installed.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra/doc"

	"github.com/launch-hpc/launch/internal/cli"
	"github.com/launch-hpc/launch/internal/ocicli"
)

func main() {
	version := flag.String("version", "", "version named in the pages' footer")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gendocs [-version V] OUTDIR")
		os.Exit(2)
	}
	if err := generate(flag.Arg(0), *version); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// generate writes the pages and scripts under out.
func generate(out, version string) error {
	root := cli.CommandTree(ocicli.Commands())
	man := filepath.Join(out, "man1")
	comp := filepath.Join(out, "completion")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	root.DisableAutoGenTag = true
	hdr := &doc.GenManHeader{Title: "LAUNCH", Section: "1", Source: "launch " + version, Manual: "launch manual"}
	if err := doc.GenManTree(root, hdr, man); err != nil {
		return fmt.Errorf("writing manual pages in %s: %w", man, err)
	}
	for _, s := range []struct {
		name string
		gen  func(string) error
	}{
		{"launch.bash", func(p string) error { return root.GenBashCompletionFileV2(p, true) }},
		{"_launch", root.GenZshCompletionFile},
		{"launch.fish", func(p string) error { return root.GenFishCompletionFile(p, true) }},
	} {
		if err := s.gen(filepath.Join(comp, s.name)); err != nil {
			return fmt.Errorf("writing completion %s: %w", s.name, err)
		}
	}
	return nil
}
