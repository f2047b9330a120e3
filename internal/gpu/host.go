package gpu

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// executable returns nil if p is an executable regular file (links
// followed).
func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return unwrap(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return errNotExecutable
	}
	return nil
}

// FindBinaries looks up each name in the colon-separated path (only
// absolute directories), returning the paths found in the order of names,
// duplicates dropped, and the names not found.
func FindBinaries(names []string, path string) (found, missing []string) {
	seen := map[string]bool{}
	for _, n := range names {
		p, err := findProgram(n, path)
		if err != nil {
			missing = append(missing, n)
			continue
		}
		if !seen[p] {
			seen[p] = true
			found = append(found, p)
		}
	}
	return found, missing
}

// elfMachine is the ELF e_machine value of the 64-bit architecture arch
// (a GOARCH), for the check that a library is built for this machine (a
// switch, not a map: nothing is built at program start).
func elfMachine(arch string) (uint16, bool) {
	switch arch {
	case "amd64":
		return 62, true
	case "arm64":
		return 183, true
	case "ppc64le", "ppc64":
		return 21, true
	case "riscv64":
		return 243, true
	case "s390x":
		return 22, true
	case "loong64":
		return 258, true
	}
	return 0, false
}

// nativeELF reports whether the file at p is a 64-bit ELF object for this
// machine (its header alone is read; debug/elf is not linked for this).
func nativeELF(p string) bool {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	var h [20]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return false
	}
	if string(h[:4]) != "\x7fELF" || h[4] != 2 { // ELFCLASS64
		return false
	}
	var order binary.ByteOrder = binary.LittleEndian
	if h[5] == 2 {
		order = binary.BigEndian
	}
	want, ok := elfMachine(runtime.GOARCH)
	return ok && order.Uint16(h[18:20]) == want
}

// DeviceNodes returns the device nodes and directories below dev that
// match the glob patterns (relative to dev), in order, duplicates
// dropped. Only character devices, and directories named without a
// wildcard, count.
func DeviceNodes(dev string, patterns []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, pat := range patterns {
		m, _ := filepath.Glob(filepath.Join(dev, pat))
		for _, p := range m {
			fi, err := os.Lstat(p)
			if err != nil || seen[p] {
				continue
			}
			// A directory counts when named (/dev/dri), not when globbed
			// (/dev/nvidia-caps: its nodes are matched one by one).
			if fi.Mode()&os.ModeCharDevice != 0 || fi.IsDir() && !strings.ContainsAny(pat, "*?[") {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// NvidiaDevices returns the patterns of the NVIDIA device nodes below /dev.
func NvidiaDevices() []string { return []string{"nvidia*", "nvidia-caps/*"} }

// ROCmDevices returns the patterns of the AMD ROCm device nodes below /dev.
func ROCmDevices() []string { return []string{"kfd", "dri"} }

// hasPrefixName reports whether the cache name n is the list name l or
// a versioned form of it (Apptainer's prefix match).
func hasPrefixName(n, l string) bool { return strings.HasPrefix(n, l) }
