// Command launch-squashfs serves a SquashFS image (or the SquashFS inside a
// SIF, at an offset) over FUSE: launch's own server for container images,
// in place of squashfuse_ll, with parallel requests, a block cache and
// libdeflate's zlib. It takes squashfuse_ll's command line, as launch runs
// it:
//
//	launch-squashfs -f -o offset=N IMAGE MOUNTPOINT
//
// where IMAGE may be /dev/fd/N (an open descriptor) and MOUNTPOINT is
// /dev/fd/N, a /dev/fuse descriptor already mounted by the caller (or a
// directory, mounted with fusermount3). It serves until the mount goes away.
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/sqfsfuse"
	"github.com/launch-hpc/launch/internal/squashfs"
)

// exitFailure is the exit status of every failure, as launch's own.
const exitFailure = 255

// memoryLimit bounds the Go heap (runtime/debug.SetMemoryLimit) for an
// image of the given block size: go-fuse's buffers of the requests in
// flight (4 MiB when busiest: a heap profile of reading every file of a
// Debian image) and the caches of options (their blocks, and as many
// again being filled or waiting for reuse), so that the collector runs
// before the heap doubles past it; 16 MiB for 128 KiB blocks. With too low
// a limit it runs without end (8 MiB: reading every file of that image
// took 8 s instead of 1.7; 16 MiB and 1 MiB blocks, 3.5 times as long).
func memoryLimit(blockSize uint32) int64 {
	return 8<<20 + 2*int64(options.CacheBlocks)*int64(blockSize) + int64(options.MetaBlocks)*8192
}

// options are the image's caches and read-ahead: 16 data blocks (fragments
// and a read-around window straddle two blocks), 128 metadata blocks, and
// the next 2 blocks of a file decompressed while the kernel copies one.
var options = squashfs.Options{CacheBlocks: 16, MetaBlocks: 128, ReadAhead: 2}

// ignored are the signals a job step or a terminal sends to all its
// processes. launch starts its FUSE servers with them blocked, but the Go
// runtime unblocks those it would die of (SIGHUP, SIGINT, SIGTERM, SIGQUIT)
// in every thread it makes: they are ignored instead, so that the mount
// outlives them as long as the payload does.
var ignored = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGPIPE}

// init runs before main, on the main thread: the signals first, then the
// name. launch executes the server through /proc/self/fd/N, which leaves
// the number as its name (comm, what ps and the kernel's messages show).
func init() {
	signal.Ignore(ignored...)
	name := []byte("launch-squashfs\x00")
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// args is the command line.
type args struct {
	image, mountpoint string
	offset            int64
	debug             bool
	fallback          string // the server to exec for an image this one cannot read
}

// usage is the one line printed for a bad command line.
const usage = "usage: launch-squashfs [-f] [-d] [-o offset=N] [--fallback PROGRAM] IMAGE MOUNTPOINT"

// parseArgs reads the command line. Options squashfuse takes and that
// mean nothing here (ro, allow_other and the like, which the caller's
// mount decides) are accepted and ignored.
func parseArgs(argv []string) (args, error) {
	var a args
	var pos []string
	for i := 0; i < len(argv); i++ {
		switch s := argv[i]; {
		case s == "-f" || s == "-s":
		case s == "-d":
			a.debug = true
		case s == "-o":
			if i+1 == len(argv) {
				return a, errors.New("-o needs a value")
			}
			i++
			for _, o := range strings.Split(argv[i], ",") {
				if v, ok := strings.CutPrefix(o, "offset="); ok {
					n, err := strconv.ParseInt(v, 10, 64)
					if err != nil || n < 0 {
						return a, fmt.Errorf("bad offset %q", v)
					}
					a.offset = n
				}
			}
		case s == "--fallback":
			if i+1 == len(argv) {
				return a, errors.New("--fallback needs a program")
			}
			i++
			a.fallback = argv[i]
		case strings.HasPrefix(s, "-"):
			return a, fmt.Errorf("unknown option %s", s)
		default:
			pos = append(pos, s)
		}
	}
	if len(pos) != 2 {
		return a, errors.New(usage)
	}
	a.image, a.mountpoint = pos[0], pos[1]
	return a, nil
}

func run(argv []string, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "launch-squashfs: %v\n", err)
		return exitFailure
	}
	a, err := parseArgs(argv)
	if err != nil {
		return fail(err)
	}
	img, err := openImage(a.image)
	if err != nil {
		return fail(err)
	}
	defer img.Close()
	fi, err := img.Stat()
	if err != nil {
		return fail(fmt.Errorf("reading %s: %w", a.image, err))
	}
	if a.offset >= fi.Size() {
		return fail(fmt.Errorf("%s: offset %d is past its end (%d bytes)", a.image, a.offset, fi.Size()))
	}
	im, err := squashfs.Open(img, a.offset, fi.Size()-a.offset, options)
	if errors.Is(err, squashfs.ErrUnsupported) && a.fallback != "" {
		// Another server reads it: the same descriptors, in this process.
		argv := []string{a.fallback, "-f", "-o", "offset=" + strconv.FormatInt(a.offset, 10), a.image, a.mountpoint}
		err = fmt.Errorf("%w; and running %s in its place: %w", err, a.fallback, syscall.Exec(a.fallback, argv, os.Environ()))
	}
	if err != nil {
		return fail(fmt.Errorf("%s: %s", a.image, sqfsfuse.Diagnose(err)))
	}
	debug.SetMemoryLimit(memoryLimit(im.BlockSize()))
	fsys, err := sqfsfuse.New(im, stderr)
	if err != nil {
		return fail(fmt.Errorf("%s: %s", a.image, sqfsfuse.Diagnose(err)))
	}
	srv, err := fuse.NewServer(fsys, a.mountpoint, &fuse.MountOptions{
		FsName:               "squashfuse",
		Name:                 "squashfuse",
		Options:              []string{"ro"},
		MaxBackground:        64,
		EnableSymlinkCaching: true,
		Debug:                a.debug,
		Logger:               log.New(stderr, "launch-squashfs: ", 0),
	})
	if err != nil {
		return fail(fmt.Errorf("serving %s on %s: %w", a.image, a.mountpoint, err))
	}
	srv.Serve()
	return 0
}

// openImage opens the image: /dev/fd/N is the descriptor N, anything else
// a path (opened without following a last-component link, non-blocking).
// It must be a regular file.
func openImage(p string) (*os.File, error) {
	var f *os.File
	if v, ok := strings.CutPrefix(p, "/dev/fd/"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad descriptor %s", p)
		}
		f = os.NewFile(uintptr(n), p)
	} else {
		fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", p, err)
		}
		f = os.NewFile(uintptr(fd), p)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return f, nil
}
