package gpu

import (
	"os"
)

// Request says what to look for on the host.
type Request struct {
	// ListFile is the library list (nvliblist.conf, rocmliblist.conf).
	ListFile string
	// Ldconfig is the ldconfig program (launch.conf gpu.ldconfig).
	Ldconfig string
	// Path is the host PATH the programs are looked up in.
	Path string
	// Dev is the host's device directory ("/dev") and DevPatterns the
	// globs of the device nodes below it (NvidiaDevices, ROCmDevices).
	Dev         string
	DevPatterns []string
	// NVCCLI, when set, is nvidia-container-cli (a name looked up in Path
	// or a path): the libraries and programs are the ones it lists, not
	// the list file's.
	NVCCLI string
}

// Found is what Find found on the host.
type Found struct {
	Libs     []Lib
	Binaries []string
	Files    []string
	Devices  []string
	// Missing names what the list asked for that the host lacks.
	Missing []string
}

// Empty reports whether nothing at all was found (no driver).
func (f Found) Empty() bool {
	return len(f.Libs) == 0 && len(f.Binaries) == 0 && len(f.Files) == 0 && len(f.Devices) == 0
}

// Find looks on the host for what r asks for. A library, program or file
// the host lacks is not an error (it is in Missing); an unreadable list, a
// malformed one or an ldconfig that cannot run is.
func Find(r Request) (Found, error) {
	var f Found
	cache, err := ReadCache(r.Ldconfig, r.Path)
	if err != nil {
		return Found{}, err
	}
	if r.NVCCLI != "" {
		l, err := nvccliList(r.NVCCLI, r.Path)
		if err != nil {
			return Found{}, err
		}
		f.Libs = libsOfPaths(l.Libraries, cache)
		f.Binaries = l.Binaries
	} else {
		l, err := ReadList(r.ListFile)
		if err != nil {
			return Found{}, err
		}
		var missing []string
		f.Libs, missing = SelectLibs(l.Libraries, cache)
		f.Missing = append(f.Missing, missing...)
		f.Binaries, missing = FindBinaries(l.Binaries, r.Path)
		f.Missing = append(f.Missing, missing...)
		for _, p := range l.Files {
			if _, err := os.Stat(p); err != nil {
				f.Missing = append(f.Missing, p)
				continue
			}
			f.Files = append(f.Files, p)
		}
	}
	f.Devices = DeviceNodes(r.Dev, r.DevPatterns)
	return f, nil
}
