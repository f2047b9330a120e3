package ocicli

import (
	"errors"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/regauth"
)

// creds are the registry credentials of one pull, push or build: the
// ones given (--docker-username/--docker-password, their LAUNCH_,
// APPTAINER_ and SINGULARITY_ variables, or --docker-login's answers),
// else those stored by `launch registry login`.
type creds struct {
	user, pass string
	stored     func(registry string) (string, string, bool)
}

// credentials resolves the flags' credentials for a source named what (in
// --docker-login's prompt). The stored credentials file is read (as
// hostile: see internal/regauth) only when none were given.
func credentials(f *cliutil.OCIFlags, what string) (creds, error) {
	c := creds{user: f.DockerUser, pass: f.DockerPass}
	if c.pass != "" && c.user == "" {
		return creds{}, errors.New("a registry password was given without a user name (--docker-username or LAUNCH_DOCKER_USERNAME)")
	}
	if f.DockerLogin && (c.user == "" || c.pass == "") {
		cr, err := regauth.Prompt(what, c.user)
		if err != nil {
			return creds{}, err
		}
		c.user, c.pass = cr.Username, cr.Password
	}
	if c.user != "" {
		return c, nil
	}
	s, err := regauth.Open(f.AuthFile)
	if err != nil {
		return creds{}, err
	}
	look, err := s.Lookuper()
	if err != nil {
		return creds{}, err
	}
	c.stored = func(registry string) (string, string, bool) {
		cr, ok := look(registry)
		return cr.Username, cr.Password, ok
	}
	return c, nil
}
