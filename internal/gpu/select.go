package gpu

import (
	"path/filepath"
	"strconv"
	"strings"
)

// Lib is one library to bind: Name is its name in the container's library
// directory (the cache's name, libcuda.so.1), Path the host file it is
// bound from, with every symbolic link resolved.
type Lib struct {
	Name, Path string
}

// SelectLibs picks, for each library name of the list, the cache entries
// whose names begin with it, as Apptainer does. Of several entries under
// one name (the same library in two directories), the one whose resolved
// file has the highest version wins (libcuda.so.550.54 over
// libcuda.so.535.104), the cache's order deciding a tie. Entries whose file
// is missing or not a 64-bit build for this machine are left out (32-bit
// builds share the names). It returns the libraries in list order, and the
// list names that matched nothing.
func SelectLibs(names []string, cache []CacheEntry) (libs []Lib, missing []string) {
	taken := map[string]bool{}
	for _, l := range names {
		found := false
		for _, e := range cache {
			if !hasPrefixName(e.Name, l) || taken[e.Name] {
				continue
			}
			if best, ok := bestEntry(e.Name, cache); ok {
				taken[e.Name] = true
				libs = append(libs, best)
				found = true
			}
		}
		if !found {
			missing = append(missing, l)
		}
	}
	return libs, missing
}

// bestEntry chooses among the entries named name (see SelectLibs).
func bestEntry(name string, cache []CacheEntry) (Lib, bool) {
	var best Lib
	var bestV []int
	ok := false
	for _, e := range cache {
		if e.Name != name {
			continue
		}
		real, err := filepath.EvalSymlinks(e.Path)
		if err != nil || !nativeELF(real) {
			continue
		}
		v := soVersion(real)
		if !ok || newer(v, bestV) {
			best, bestV, ok = Lib{Name: name, Path: real}, v, true
		}
	}
	return best, ok
}

// soVersion is the version after ".so." in a library's file name, as
// numbers (libcuda.so.535.104.05 → 535 104 5); nil when there is none or a
// part is not a number.
func soVersion(p string) []int {
	base := filepath.Base(p)
	i := strings.LastIndex(base, ".so.")
	if i < 0 {
		return nil
	}
	var v []int
	for _, part := range strings.Split(base[i+4:], ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil
		}
		v = append(v, n)
	}
	return v
}

// newer reports whether version a is higher than b (a longer version with
// the same start is higher: 1.2.1 > 1.2).
func newer(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}
