// Package helper finds launch's helper programs (launch-oci, launch-cdi, launch-sign):
// the programs that hold the libraries the start-up path of `launch exec`
// must not pay for. It owns the lookup only; it runs nothing.
package helper

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/launch-hpc/launch/internal/buildinfo"
)

// Find returns the path of the helper program name: next to this
// executable (a build tree or a relocated install), else in the install's
// libexec directory. The error says where it looked.
func Find(name string) (string, error) {
	var tried []string
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if isExecutable(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	p := buildinfo.LibexecFile(name)
	if isExecutable(p) {
		return p, nil
	}
	tried = append(tried, p)
	return "", errors.New("this command needs the helper program " + name +
		", which is not installed (looked at " + strings.Join(tried, ", ") + "); reinstall launch")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
