package container

import (
	"encoding/binary"
	"io"
	"path"
	"strings"
)

// ELF constants used by elfDeps (see elf(5)).
const (
	elfPTLoad    = 1
	elfPTDynamic = 2
	elfPTInterp  = 3

	elfDTNull    = 0
	elfDTNeeded  = 1
	elfDTStrtab  = 5
	elfDTStrsz   = 10
	elfDTRpath   = 15
	elfDTRunpath = 29
)

// elfInfo is what elfDeps finds in an ELF file.
type elfInfo struct {
	interp string   // PT_INTERP
	needed []string // DT_NEEDED
	search []string // DT_RPATH and DT_RUNPATH entries, $ORIGIN expanded
}

// elfDeps returns the ELF interpreter of f, the file at path file, the
// libraries it needs (DT_NEEDED) and its own library search directories
// (DT_RPATH, DT_RUNPATH, with $ORIGIN expanded); nothing for a file that is
// not a dynamically linked 64-bit ELF. It reads what the dynamic loader
// reads: the program headers, the dynamic segment and its string table, and
// no section headers, each within a bound (an image's file is hostile
// input). (debug/elf would do, but its code, and the package inits it
// brings along, cost about a millisecond of page faults on every start.)
func elfDeps(f io.ReaderAt, file string) (info elfInfo) {
	hdr := make([]byte, 64)
	if _, err := f.ReadAt(hdr, 0); err != nil || string(hdr[:4]) != "\x7fELF" || hdr[4] != 2 {
		return info // not ELF, or ELF32
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if hdr[5] == 2 {
		bo = binary.BigEndian
	}
	phoff, phentsize, phnum := bo.Uint64(hdr[32:]), int(bo.Uint16(hdr[54:])), int(bo.Uint16(hdr[56:]))
	if phentsize < 56 || phentsize > 1024 || phnum == 0 || phnum > 256 {
		return info
	}
	phs := readAt(f, phoff, uint64(phentsize*phnum), 256<<10)
	if phs == nil {
		return info
	}
	type segment struct{ off, vaddr, filesz uint64 }
	var loads []segment
	var dyn segment
	for i := 0; i < phnum; i++ {
		p := phs[i*phentsize:]
		s := segment{off: bo.Uint64(p[8:]), vaddr: bo.Uint64(p[16:]), filesz: bo.Uint64(p[32:])}
		switch bo.Uint32(p) {
		case elfPTLoad:
			loads = append(loads, s)
		case elfPTDynamic:
			dyn = s
		case elfPTInterp:
			if b := readAt(f, s.off, s.filesz, 4096); b != nil {
				info.interp = strings.TrimRight(string(b), "\x00")
			}
		}
	}
	entries := readAt(f, dyn.off, dyn.filesz, 64<<10)
	var strtab, strsz uint64
	var neededAt, pathsAt []uint64
	for i := 0; i+16 <= len(entries); i += 16 {
		tag, val := bo.Uint64(entries[i:]), bo.Uint64(entries[i+8:])
		switch tag {
		case elfDTNull:
			i = len(entries)
		case elfDTNeeded:
			neededAt = append(neededAt, val)
		case elfDTStrtab:
			strtab = val
		case elfDTStrsz:
			strsz = val
		case elfDTRpath, elfDTRunpath:
			pathsAt = append(pathsAt, val)
		}
	}
	var strs []byte
	for _, l := range loads { // the string table's address, as a file offset
		if strtab >= l.vaddr && strtab < l.vaddr+l.filesz {
			strs = readAt(f, l.off+(strtab-l.vaddr), strsz, 1<<20)
			break
		}
	}
	str := func(at uint64) string {
		if at >= uint64(len(strs)) {
			return ""
		}
		s := strs[at:]
		if n := strings.IndexByte(string(s), 0); n >= 0 {
			s = s[:n]
		}
		return string(s)
	}
	for _, at := range neededAt {
		if n := str(at); n != "" {
			info.needed = append(info.needed, n)
		}
	}
	for _, at := range pathsAt {
		for _, d := range strings.Split(str(at), ":") {
			d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", "$ORIGIN"), "$ORIGIN", path.Dir(file))
			if strings.HasPrefix(d, "/") {
				info.search = append(info.search, d)
			}
		}
	}
	return info
}

// readAt reads n bytes at off from f, or returns nil when n is 0, larger
// than max, or cannot be read whole.
func readAt(f io.ReaderAt, off, n, max uint64) []byte {
	if n == 0 || n > max {
		return nil
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, int64(off)); err != nil {
		return nil
	}
	return b
}
