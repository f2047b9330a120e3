package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/launch-hpc/launch/internal/testregistry"
)

// authRealRegistry starts docker-registry requiring user u, password p
// (htpasswd, bcrypt), and makes a SIF to push to it.
func authRealRegistry(t *testing.T) (host, sif string) {
	t.Helper()
	r, err := testregistry.RealAuth(t.TempDir(), "u", "p")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r.Host, markedSIF(t, "auth marker\n")
}

// loginEnv is an environment with its own HOME (where the credentials
// go), cache and TMPDIR, and no Docker config.
func loginEnv(t *testing.T) (ociEnv, []string, string) {
	t.Helper()
	e := newOCIEnv(t)
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	return e, e.env("HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker")), home
}

// TestRegistryLogin: against a real registry that requires a password,
// launch push, pull and build of docker:// and oras:// fail with one FATAL
// line and leave nothing (output, cache, temporary files) without
// credentials or with refused ones; `launch registry login` refuses a wrong
// password (storing nothing) and stores a right one in
// ~/.launch/docker-config.json (0600), which pull, push and build then use;
// list shows it, the command line and APPTAINER_DOCKER_* still win, and
// logout forgets it.
func TestRegistryLogin(t *testing.T) {
	host, sif := authRealRegistry(t)
	e, env, home := loginEnv(t)
	src := busyboxOCI(t)
	gref, err := name.ParseReference(host+"/test/busybox:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(gref, src, remote.WithAuth(&authn.Basic{Username: "u", Password: "p"})); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) result {
		t.Helper()
		return launchWith(t, runOpts{Env: env, Stdin: stdin}, args...)
	}
	oref := "oras://" + host + "/test/app:v1"
	dref := "docker://" + host + "/test/busybox:v1"
	out := filepath.Join(t.TempDir(), "out.sif")
	nothingLeft := func(what string) {
		t.Helper()
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s left %s", what, out)
		}
		if r := run("", "cache", "list"); !strings.Contains(r.Stdout, "0 entries") {
			t.Errorf("%s left cache entries: %s", what, r.Stdout)
		}
		noTempLeft(t, e.tmp)
	}

	// No credentials at all.
	wantFatal(t, run("", "push", "-q", sif, oref), "authentication", host)
	wantFatal(t, run("", "pull", "-q", out, oref), "authentication", host)
	wantFatal(t, run("", "pull", "-q", out, dref), "authentication", host)
	nothingLeft("a pull without credentials")
	// Refused credentials, on the command line and in APPTAINER_DOCKER_*.
	wantFatal(t, run("", "push", "-q", "--docker-username", "u", "--docker-password", "wrong", sif, oref), "authentication")
	wantFatal(t, launchWith(t, runOpts{Env: append(env, "APPTAINER_DOCKER_USERNAME=u", "APPTAINER_DOCKER_PASSWORD=wrong")},
		"pull", "-q", out, oref), "authentication")
	nothingLeft("a pull with a refused password")
	// Right ones on the command line: push works (and stores nothing).
	wantOK(t, run("", "push", "-q", "--docker-username", "u", "--docker-password", "p", sif, oref))
	// and APPTAINER_DOCKER_USERNAME/PASSWORD are honoured.
	wantOK(t, launchWith(t, runOpts{Env: append(env, "APPTAINER_DOCKER_USERNAME=u", "APPTAINER_DOCKER_PASSWORD=p")},
		"push", "-q", sif, oref))
	cfg := filepath.Join(home, ".launch", "docker-config.json")
	if _, err := os.Stat(cfg); err == nil {
		t.Fatalf("a push with flags wrote %s", cfg)
	}
	// --authfile: a login kept in a file of the user's choosing, used by
	// pull with --authfile or APPTAINER_AUTH_FILE, and by nothing else.
	af := filepath.Join(t.TempDir(), "auth.json")
	wantOK(t, run("p\n", "registry", "login", "--authfile", af, "-u", "u", "--password-stdin", "docker://"+host))
	if fi, err := os.Stat(af); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("--authfile %s: %v %v, want mode 0600", af, fi, err)
	}
	if _, err := os.Stat(cfg); err == nil {
		t.Fatalf("a login with --authfile wrote %s", cfg)
	}
	if r := run("", "registry", "list", "--authfile", af); !strings.Contains(r.Stdout, host) {
		t.Errorf("registry list --authfile: %q", r.Stdout)
	}
	af1 := filepath.Join(t.TempDir(), "af1.sif")
	wantOK(t, run("", "pull", "-q", "--disable-cache", "--authfile", af, af1, oref))
	af2 := filepath.Join(t.TempDir(), "af2.sif")
	wantOK(t, launchWith(t, runOpts{Env: append(env, "APPTAINER_AUTH_FILE="+af)}, "pull", "-q", "--disable-cache", af2, oref))
	wantFatal(t, run("", "pull", "-q", "--disable-cache", filepath.Join(t.TempDir(), "no.sif"), oref), "authentication", host)
	wantOK(t, run("", "registry", "logout", "--authfile", af, "docker://"+host))

	// login: a wrong password is refused and nothing is stored.
	wantFatal(t, run("wrong\n", "registry", "login", "-u", "u", "--password-stdin", "oras://"+host), "authentication", host)
	if _, err := os.Stat(cfg); err == nil {
		t.Fatalf("a refused login wrote %s", cfg)
	}
	wantFatal(t, run("", "registry", "login", "-u", "u", "-p", "p", "library://cloud.sylabs.io"), "not supported")
	// The right one is stored, mode 0600, in a 0700 directory.
	r := run("p\n", "registry", "login", "-u", "u", "--password-stdin", "docker://"+host)
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "Token stored in "+cfg) {
		t.Errorf("login: %s", r.Stderr)
	}
	if fi, err := os.Stat(cfg); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v, want mode 0600", cfg, fi, err)
	}
	if di, _ := os.Stat(filepath.Dir(cfg)); di.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want 0700", filepath.Dir(cfg), di.Mode())
	}
	r = run("", "registry", "list")
	if wantOK(t, r); !strings.Contains(r.Stdout, host) || !strings.Contains(r.Stdout, " u ") {
		t.Errorf("registry list: %q", r.Stdout)
	}
	// APPTAINER_LOGIN_USERNAME/PASSWORD stand for -u/-p, as in Apptainer.
	wantFatal(t, launchWith(t, runOpts{Env: append(env, "APPTAINER_LOGIN_USERNAME=u", "APPTAINER_LOGIN_PASSWORD=wrong")},
		"registry", "login", "oras://"+host), "authentication", host)
	wantOK(t, launchWith(t, runOpts{Env: append(env, "APPTAINER_LOGIN_USERNAME=u", "APPTAINER_LOGIN_PASSWORD=p")},
		"registry", "login", "oras://"+host))
	// pull, push and build of both kinds use it (without the cache, which
	// is checked to stay empty after the failures).
	wantOK(t, run("", "push", "-q", sif, oref))
	got := filepath.Join(t.TempDir(), "got.sif")
	wantOK(t, run("", "pull", "-q", "--disable-cache", got, oref))
	r = launchWith(t, runOpts{Env: env}, "exec", got, "cat", "/etc/marker")
	if wantOK(t, r); r.Stdout != "auth marker\n" {
		t.Errorf("exec of the SIF pulled with stored credentials: %q", r.Stdout)
	}
	wantOK(t, run("", "build", "-q", "--disable-cache", "--sandbox", filepath.Join(t.TempDir(), "sb"), oref))
	bb := filepath.Join(t.TempDir(), "bb.sif")
	wantOK(t, run("", "build", "-q", "--disable-cache", bb, dref))
	checkBusybox(t, bb, src)
	// The command line wins over the stored login.
	wantFatal(t, run("", "pull", "-q", "--docker-username", "u", "--docker-password", "wrong", out, oref), "authentication")
	nothingLeft("a pull whose flags override a good login")

	// A credentials file another user could have written is refused.
	if err := os.Chmod(cfg, 0o622); err != nil {
		t.Fatal(err)
	}
	wantFatal(t, run("", "pull", "-q", out, oref), cfg, "writable by other users")
	os.Chmod(cfg, 0o600)

	// logout forgets it: pulls fail again; a second logout only warns.
	wantOK(t, run("", "registry", "logout", "oras://"+host))
	wantFatal(t, run("", "pull", "-q", out, oref), "authentication")
	r = run("", "registry", "logout", "oras://"+host)
	if wantOK(t, r); !strings.Contains(r.Stderr, "no stored login") {
		t.Errorf("second logout: %q", r.Stderr)
	}
	nothingLeft("the pulls after logout")
}
