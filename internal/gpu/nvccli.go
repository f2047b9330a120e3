package gpu

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/launch-hpc/launch/internal/capwriter"
	"github.com/launch-hpc/launch/internal/subproc"
)

// nvccliList runs `nvidia-container-cli list --binaries --libraries` and
// sorts the absolute paths it prints into programs and libraries.
// Only listing is used: launch binds what it lists itself, through its own
// mount plan (nvidia-container-cli configure, which writes into the
// container's root, is not run).
func nvccliList(prog, path string) (List, error) {
	bin, err := findProgram(prog, path)
	if err != nil {
		return List{}, fmt.Errorf("--nvccli needs nvidia-container-cli, which is not installed: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ldconfigTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "list", "--binaries", "--libraries")
	out, errb := capwriter.Buffer{Max: maxLdconfigOutput}, capwriter.Buffer{Max: 4096}
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := subproc.Run(cmd); err != nil {
		return List{}, fmt.Errorf("running %s list: %w: %s", bin, err, firstLine(strings.TrimSpace(errb.String())))
	}
	var l List
	for _, line := range strings.Split(out.String(), "\n") {
		p := strings.TrimSpace(line)
		if !filepath.IsAbs(p) {
			continue
		}
		if strings.Contains(filepath.Base(p), ".so") {
			l.Libraries = append(l.Libraries, p)
		} else {
			l.Binaries = append(l.Binaries, p)
		}
	}
	return l, nil
}

// libsOfPaths names the library files paths (as nvidia-container-cli lists
// them: the versioned files) by the cache names that resolve to them
// (libcuda.so.535.104.05 is bound as libcuda.so.1), or by their own name
// when the cache has none. Files that are not 64-bit builds for this
// machine are left out.
func libsOfPaths(paths []string, cache []CacheEntry) []Lib {
	// The cache's names by the file they resolve to, in the cache's order:
	// each entry is resolved once, not once per listed library.
	byReal := map[string][]string{}
	for _, e := range cache {
		if r, err := filepath.EvalSymlinks(e.Path); err == nil {
			byReal[r] = append(byReal[r], e.Name)
		}
	}
	var libs []Lib
	taken := map[string]bool{}
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil || !nativeELF(real) {
			continue
		}
		named := false
		for _, name := range byReal[real] {
			if !taken[name] {
				taken[name], named = true, true
				libs = append(libs, Lib{Name: name, Path: real})
			}
		}
		if !named && !taken[filepath.Base(real)] {
			taken[filepath.Base(real)] = true
			libs = append(libs, Lib{Name: filepath.Base(real), Path: real})
		}
	}
	return libs
}
