// Package config reads the site configuration, etc/launch/launch.conf
// (TOML), over built-in defaults, and remembers where every value came
// from so `launch config show` can say it. Unknown keys and malformed files
// are errors that name the file, the line and the key.
//
// The settings are site defaults and guard rails, not a security boundary:
// launch runs entirely as the calling user, so a user can always run another
// copy of it (or another tool) with other settings. docs/admin.md says which
// settings a user can still escape and which only protect against mistakes.
//
// It must not act on the settings itself (it only reads and reports them).
package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Config is the effective site configuration.
type Config struct {
	Mounts     Mounts     `toml:"mounts"`
	Binds      Binds      `toml:"binds"`
	Namespaces Namespaces `toml:"namespaces"`
	Images     Images     `toml:"images"`
	Tmpfs      Tmpfs      `toml:"tmpfs"`
	Env        Env        `toml:"env"`
	Tools      Tools      `toml:"tools"`
	Build      Build      `toml:"build"`
	GPU        GPU        `toml:"gpu"`
	CDI        CDI        `toml:"cdi"`
}

// Mounts are the default mounts every container gets, and the site's own
// binds.
type Mounts struct {
	// Proc, Sys, Dev, Tmp, Home, Cwd, Hosts, Localtime and Resolv switch
	// the default mounts named by their toml tags on or off (--no-mount
	// turns more off): the names are mountplan.Defaults', and Off reads
	// the switches by those tags, so a new switch is a field here and a
	// row there.
	Proc      bool `toml:"proc"`
	Sys       bool `toml:"sys"`
	Dev       bool `toml:"dev"`
	Tmp       bool `toml:"tmp"`
	Home      bool `toml:"home"`
	Cwd       bool `toml:"cwd"`
	Hosts     bool `toml:"hosts"`
	Localtime bool `toml:"localtime"`
	Resolv    bool `toml:"resolv"`
	// System are binds every container gets, in -B syntax
	// (SRC[:DST[:ro|rw]]). A missing source is skipped with a note under -v.
	System []string `toml:"system"`
}

// Off returns the names of the default mounts m switches off: the toml
// tags of its false boolean fields.
func (m Mounts) Off() []string {
	var off []string
	v, t := reflect.ValueOf(m), reflect.TypeOf(m)
	for i := 0; i < t.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Bool && !f.Bool() {
			off = append(off, t.Field(i).Tag.Get("toml"))
		}
	}
	return off
}

// Binds says what users may bind.
type Binds struct {
	// AllowUser allows -B/--bind/--mount/LAUNCH_BIND and -H.
	AllowUser bool `toml:"allow_user"`
	// AllowedPaths, when not empty, limits user bind sources to these host
	// directories and what is below them.
	AllowedPaths []string `toml:"allowed_paths"`
}

// Namespaces says which optional namespaces users may ask for.
type Namespaces struct {
	AllowPID bool `toml:"allow_pid"`
	AllowIPC bool `toml:"allow_ipc"`
	AllowNet bool `toml:"allow_net"`
	AllowUTS bool `toml:"allow_uts"`
}

// Images says which images may be run.
type Images struct {
	// Formats lists the allowed image formats: "sif", "squashfs", "sandbox".
	Formats []string `toml:"formats"`
	// AllowedPaths, when not empty, limits images to files below these
	// directories.
	AllowedPaths []string `toml:"allowed_paths"`
	// ShareMounts lets the launches one user runs at once from one image,
	// in one job step, share one squashfuse mount (internal/share).
	ShareMounts bool `toml:"share_mounts"`
	// KeepContainers lets the holder of a shared mount also keep its
	// launches' containers for later launches of the very same command
	// line (internal/warmroot).
	KeepContainers bool `toml:"keep_containers"`
	// Verify is the signature policy: "off", "warn" or "require" (a SIF
	// whose signatures do not verify against the trusted keys is run with
	// a warning, or refused). docs/signing.md.
	Verify string `toml:"verify"`
	// TrustedKeys are the OpenPGP fingerprints whose signatures count;
	// empty: any key of the user's or the site's public keyring.
	TrustedKeys []string `toml:"trusted_keys"`
	// TrustedRoots is a PEM file of the CA certificates that x509 signing
	// certificates must chain to, and TrustedCertificates the PEM file of
	// those signing certificates (DSSE signatures); "" for none.
	TrustedRoots        string `toml:"trusted_roots"`
	TrustedCertificates string `toml:"trusted_certificates"`
	// Linger is how long a shared image mount stays warm after the last
	// launch using it is done, for the next launch of the image to join
	// (ParseLinger; "0s" keeps none).
	Linger string `toml:"linger"`
}

// MaxLinger bounds images.linger and --linger: a kept mount always has a
// bound on its life.
const MaxLinger = time.Hour

// ParseLinger parses an images.linger or --linger value: a duration such
// as "10s" or "1m", from 0 to MaxLinger.
func ParseLinger(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxLinger {
		return 0, fmt.Errorf("%q is not a duration from 0s to %v (such as 10s or 1m; 0s keeps no mount warm)", s, MaxLinger)
	}
	return d, nil
}

// Tmpfs sets the sizes of the tmpfs mounts launch makes (tmpfs size=
// syntax: "512m", "2g", "50%").
type Tmpfs struct {
	// Contain is the size of the private /tmp, /var/tmp and home of
	// --contain.
	Contain string `toml:"contain"`
	// Writable is the size of the memory-backed writable layer of
	// --writable-tmpfs, and of each --scratch directory without --workdir.
	Writable string `toml:"writable"`
}

// Env sets environment rules.
type Env struct {
	// CleanenvKeep lists the host variables that --cleanenv keeps; a name
	// ending in * keeps every variable with that prefix.
	CleanenvKeep []string `toml:"cleanenv_keep"`
	// Apptainer honours APPTAINERENV_/SINGULARITYENV_ and
	// APPTAINER_BIND/SINGULARITY_BIND (below their LAUNCH counterparts).
	Apptainer bool `toml:"apptainer_compat"`
}

// Tools names the helper programs launch runs: a name is looked up in
// PATH, a path is used as it is.
type Tools struct {
	Squashfuse []string `toml:"squashfuse"`
	Mksquashfs string   `toml:"mksquashfs"`
	Unsquashfs string   `toml:"unsquashfs"`
	// Tar2sqfs (squashfs-tools-ng) packs `launch pull`'s layers into
	// SquashFS as a stream, with no temporary tree; without it the layers
	// are extracted to a tree that mksquashfs packs.
	Tar2sqfs string `toml:"tar2sqfs"`
	// FuseOverlayfs serves writable layers for users other than root
	// (--writable-tmpfs, --overlay DIR), where kernel overlayfs cannot copy
	// up the image's root-owned files.
	FuseOverlayfs string `toml:"fuse_overlayfs"`
	// NewUIDMap and NewGIDMap are the setuid helpers of --fakeroot with
	// subordinate ranges (package uidmap).
	NewUIDMap string `toml:"newuidmap"`
	NewGIDMap string `toml:"newgidmap"`
}

// Build says how launch build and launch pull make images.
type Build struct {
	// Compression is the SquashFS compression of new images (mksquashfs
	// -comp): one of Compressions.
	Compression string `toml:"compression"`
	// MaxUnpackedSize bounds what the layers of one OCI image may unpack
	// to (file content, sparse files at their full size), against
	// decompression bombs: a size such as "64g" (k, m, g, t: powers of
	// 1024), "0" for no limit.
	MaxUnpackedSize string `toml:"max_unpacked_size"`
}

// MaxUnpackedBytes is MaxUnpackedSize in bytes (0: no limit).
func (b Build) MaxUnpackedBytes() int64 {
	n, _ := ParseSize(b.MaxUnpackedSize) // checked when the file was read
	return n
}

// ParseSize reads a size of digits with an optional unit k, m, g or t
// (either case; powers of 1024).
func ParseSize(s string) (int64, error) {
	digits, mult := s, int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			digits = s[:n-1]
		}
	}
	n, err := strconv.ParseUint(digits, 10, 63)
	if err != nil || digits == "" || digits[0] == '+' || int64(n) > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size (such as 512m, 64g or 0)", s)
	}
	return int64(n) * mult, nil
}

// Compressions are the SquashFS compressions launch can make: gzip is what
// Apptainer makes and every squashfuse and kernel reads; lz4 and zstd start
// programs faster (docs/performance.md) but need squashfuse or a kernel
// built with them.
func Compressions() []string { return []string{"gzip", "zstd", "lz4", "xz", "lzo"} }

// CheckCompression returns an error unless name is one of Compressions.
func CheckCompression(name string) error {
	for _, c := range Compressions() {
		if name == c {
			return nil
		}
	}
	return fmt.Errorf("unknown compression %q (known: %s)", name, strings.Join(Compressions(), ", "))
}

// Defaults returns the built-in configuration, used where the file is silent.
func Defaults() Config {
	return Config{
		Mounts: Mounts{Proc: true, Sys: true, Dev: true, Tmp: true, Home: true, Cwd: true,
			Hosts: true, Localtime: true, Resolv: true, System: []string{}},
		Binds:      Binds{AllowUser: true, AllowedPaths: []string{}},
		Namespaces: Namespaces{AllowPID: true, AllowIPC: true, AllowNet: true, AllowUTS: true},
		Images:     Images{Formats: []string{"sif", "squashfs", "sandbox"}, AllowedPaths: []string{}, ShareMounts: true, KeepContainers: true, Verify: "off", TrustedKeys: []string{}, Linger: "10s"},
		Tmpfs:      Tmpfs{Contain: "50%", Writable: "50%"},
		Env: Env{
			CleanenvKeep: []string{"HOME", "USER", "LOGNAME", "TERM", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "ftp_proxy", "FTP_PROXY", "TZ", "SLURM_*", "SLURMD_NODENAME", "PMI_*", "PMIX_*", "OMPI_*", "OPAL_*", "ORTE_*", "PRTE_*", "PRRTE_*", "HYDRA_*", "MPI_LOCALNRANKS", "MPI_LOCALRANKID", "I_MPI_*", "UCX_*", "FI_*"},
			Apptainer:    true,
		},
		Tools: Tools{
			Squashfuse: []string{"launch-squashfs", "squashfuse_ll", "squashfuse", "/usr/bin/squashfuse_ll", "/usr/bin/squashfuse",
				"/usr/local/bin/squashfuse_ll", "/usr/local/bin/squashfuse"},
			Mksquashfs:    "mksquashfs",
			Unsquashfs:    "unsquashfs",
			Tar2sqfs:      "tar2sqfs",
			FuseOverlayfs: "fuse-overlayfs",
			NewUIDMap:     "newuidmap",
			NewGIDMap:     "newgidmap",
		},
		Build: Build{Compression: "gzip", MaxUnpackedSize: "64g"},
		GPU:   defaultGPU(),
		CDI:   defaultCDI(),
	}
}
