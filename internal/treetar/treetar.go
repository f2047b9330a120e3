// Package treetar writes a directory tree as a tar stream in the form of an
// image layer. It serves the tests and benchmarks that make OCI images from
// real trees (the Debian image of the e2e suite and of make bench); launch
// itself never writes layers.
package treetar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write writes the tree root to w as a layer tar: paths relative to root,
// owners kept (no names), hard links as links; sockets and the like are
// skipped. Files and directories this user cannot read are left out and
// counted when skipUnreadable, and are an error otherwise.
func Write(w io.Writer, root string, skipUnreadable bool) (skipped int, err error) {
	tw := tar.NewWriter(w)
	inodes := map[uint64]string{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if skipUnreadable && errors.Is(err, fs.ErrPermission) {
				skipped++
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil // a socket or the like: not in a layer
		}
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", p)
		}
		h.Uid, h.Gid, h.Uname, h.Gname = int(st.Uid), int(st.Gid), "", ""
		var f *os.File
		if fi.Mode().IsRegular() {
			if prev, ok := inodes[st.Ino]; ok && st.Nlink > 1 {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, prev, 0
			} else {
				if f, err = os.Open(p); err != nil {
					if skipUnreadable && errors.Is(err, fs.ErrPermission) {
						skipped++
						return nil
					}
					return err
				}
				defer f.Close()
				inodes[st.Ino] = rel
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if f != nil {
			if _, err := io.Copy(tw, f); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return skipped, err
	}
	return skipped, tw.Close()
}
