package e2e

// Attacks on the host's files through what launch creates or writes for a
// container: the directories of --workdir, and the generated /etc/passwd
// and /etc/group (issue 14, items 1 and 3). Each test performs the attack
// and checks that the victim's files are untouched.

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// attackerUID is the uid that plays another user in the root run: the
// unprivileged test user (LAUNCH_E2E_USER, set by scripts/test), else nobody.
func attackerUID(t *testing.T) int {
	t.Helper()
	if name := os.Getenv("LAUNCH_E2E_USER"); name != "" {
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatalf("LAUNCH_E2E_USER=%s: %v", name, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		return uid
	}
	return 65534
}

// modeOf returns the permission and special bits of p (not following a
// final symlink when lstat).
func modeOf(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode() & (os.ModePerm | os.ModeSticky | os.ModeSetuid | os.ModeSetgid)
}

// TestAttackWorkdirSymlink plants, in the directory the victim gives as
// --workdir, a symbolic link where launch makes tmp, var_tmp or scratch,
// pointing at a directory standing for the victim's ~/.ssh. As root the
// attacker is the test user, owning the shared sticky directory and the
// link; as the test user the link sits in the user's own workdir. launch
// must refuse with one FATAL line naming the link and leave the target's
// mode and content alone.
func TestAttackWorkdirSymlink(t *testing.T) {
	img := busyboxImage(t, nil)
	cases := []struct {
		name  string   // the entry of the workdir that is planted
		plant string   // "link" (to the victim's directory), "file", "foreign" (another user's directory)
		flags []string // what makes launch create it
	}{
		{"tmp", "link", []string{"--contain"}},
		{"var_tmp", "link", []string{"--contain"}},
		{"scratch", "link", []string{"--scratch", "/out"}},
		{"tmp", "file", []string{"--contain"}},
		{"tmp", "foreign", []string{"--contain"}},
		{"scratch", "foreign", []string{"--scratch", "/out"}},
	}
	for _, c := range cases {
		t.Run(c.name+"-"+c.plant, func(t *testing.T) {
			if c.plant == "foreign" && !isRoot() {
				t.Skip("a directory of another user can only be made by root")
			}
			base := t.TempDir()
			victim := filepath.Join(base, "victim-ssh")
			if err := os.Mkdir(victim, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(victim, "authorized_keys"), []byte("ssh-ed25519 AAAA victim\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			wd := filepath.Join(base, "shared")
			if err := os.Mkdir(wd, 0o755); err != nil {
				t.Fatal(err)
			}
			planted := filepath.Join(wd, c.name)
			switch c.plant {
			case "link":
				if err := os.Symlink(victim, planted); err != nil {
					t.Fatal(err)
				}
			case "file":
				if err := os.WriteFile(planted, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			case "foreign":
				if err := os.Mkdir(planted, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(planted, 0o777); err != nil {
					t.Fatal(err)
				}
			}
			if isRoot() {
				// A sticky directory every user can write, owned by the
				// attacker, with the attacker's entry in it (so the kernel's
				// protected_symlinks would let root follow the link).
				a := attackerUID(t)
				for _, p := range []string{planted, wd} {
					if err := os.Lchown(p, a, a); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Chmod(wd, 0o777|os.ModeSticky); err != nil {
					t.Fatal(err)
				}
			}
			before := modeOf(t, victim)
			args := append(append([]string{"exec", "-W", wd}, c.flags...), img, "true")
			r := launch(t, args...)
			wantFatal(t, r, planted)
			if got := modeOf(t, victim); got != before {
				t.Errorf("the victim's directory went from mode %v to %v", before, got)
			}
			entries, err := os.ReadDir(victim)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("the victim's directory holds %v, want only authorized_keys", names)
			}
			if c.plant == "foreign" {
				if got := modeOf(t, planted); got != 0o777 {
					t.Errorf("another user's %s went from mode 0777 to %v", c.name, got)
				}
			}
		})
	}
}

// TestWorkdirModes checks the directories made under --workdir: /tmp and
// /var/tmp world-writable with the sticky bit, as on a host, scratch
// directories private, on the host and as the container sees them.
func TestWorkdirModes(t *testing.T) {
	img := busyboxImage(t, nil)
	wd := t.TempDir()
	r := launch(t, "exec", "-W", wd, "--contain", "--scratch", "/out/run", img, "stat", "-c", "%a", "/tmp", "/var/tmp", "/out/run")
	wantOK(t, r)
	if r.Stdout != "1777\n1777\n700\n" {
		t.Errorf("inside, modes of /tmp /var/tmp /out/run: %q, want 1777 1777 700", r.Stdout)
	}
	for p, want := range map[string]os.FileMode{
		"tmp": 0o777 | os.ModeSticky, "var_tmp": 0o777 | os.ModeSticky, "scratch/out_run": 0o700,
	} {
		if got := modeOf(t, filepath.Join(wd, p)); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	// A second run finds them and keeps them so; one whose mode was changed
	// gets it back.
	if err := os.Chmod(filepath.Join(wd, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	wantOK(t, launch(t, "exec", "-W", wd, "--contain", img, "true"))
	if got := modeOf(t, filepath.Join(wd, "tmp")); got != 0o777|os.ModeSticky {
		t.Errorf("tmp after a second run: mode %v", got)
	}
}

// TestAttackGeneratedPasswdThroughImageSymlink runs an image whose /tmp (or
// /var/tmp) is a symbolic link to "/": the host's /tmp (/var/tmp) would be
// bound over the container's root, and the generated /etc/passwd and
// /etc/group written through it into files another user prepared on the
// host. launch must refuse with one FATAL line and leave the host files as
// they were, creating nothing there.
func TestAttackGeneratedPasswdThroughImageSymlink(t *testing.T) {
	for _, c := range []struct {
		link string // the image's entry that is a symlink to /
		host string // the host directory bound there
		more []string
	}{
		{"var/tmp", "/var/tmp", nil},
		// ensure needs /tmp/var/tmp to exist there to get as far as the
		// generated files.
		{"tmp", "/tmp", []string{"var/tmp"}},
	} {
		t.Run(strings.ReplaceAll(c.link, "/", "_"), func(t *testing.T) {
			tree := busyboxTree(t)
			if err := os.RemoveAll(filepath.Join(tree, c.link)); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/", filepath.Join(tree, c.link)); err != nil {
				t.Fatal(err)
			}
			img := squashImage(t, tree)

			// The prepared host files, HOST/etc/passwd and HOST/etc/group,
			// writable by everyone (so the victim can be made to write them
			// also as root, whose capabilities do not reach another user's
			// files from launch's user namespace).
			etc := filepath.Join(c.host, "etc")
			var made []string // directories made on the host, removed afterwards
			t.Cleanup(func() {
				for i := len(made) - 1; i >= 0; i-- {
					os.RemoveAll(made[i])
				}
			})
			for _, rel := range append([]string{"etc"}, c.more...) {
				p := c.host
				for _, comp := range strings.Split(rel, "/") {
					p = filepath.Join(p, comp)
					if err := os.Mkdir(p, 0o777); err != nil {
						if errors.Is(err, os.ErrExist) {
							t.Skipf("%s exists already (someone else's): the attack needs to make it", p)
						}
						t.Fatal(err)
					}
					made = append(made, p)
				}
			}
			const content = "prepared by another user\n"
			files := []string{filepath.Join(etc, "passwd"), filepath.Join(etc, "group")}
			for _, f := range files {
				if err := os.WriteFile(f, []byte(content), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range append(append([]string{}, made...), files...) {
				mode := os.FileMode(0o777)
				if strings.HasPrefix(p, etc+"/") {
					mode = 0o666
				}
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
				if isRoot() {
					if err := os.Chown(p, attackerUID(t), attackerUID(t)); err != nil {
						t.Fatal(err)
					}
				}
			}
			r := launch(t, "exec", img, "cat", "/etc/passwd")
			wantFatal(t, r, "/"+c.link)
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil || string(b) != content {
					t.Errorf("host file %s now holds %q (%v), want it unchanged", f, b, err)
				}
			}
			entries, err := os.ReadDir(etc)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 2 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("%s holds %v after the run: launch created files on the host", etc, names)
			}
		})
	}
}

// TestBindOverUnderlayStaysWritable binds a writable host directory over
// /etc, where launch first made an underlay (for /etc/hosts, and here for a
// bound file the image lacks): what the container then sees at /etc is the
// host directory, not the underlay, so it must not be made read-only with
// the underlays (a stale record of the covered underlay once did).
func TestBindOverUnderlayStaysWritable(t *testing.T) {
	img := busyboxImage(t, nil)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(t.TempDir(), "extra")
	if err := os.WriteFile(extra, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := launch(t, "exec", "-B", extra+":/etc/launch-extra", "-B", host+":/etc", img, "sh", "-c", `cat /etc/f && echo new > /etc/new`)
	wantOK(t, r)
	if b, err := os.ReadFile(filepath.Join(host, "new")); err != nil || string(b) != "new\n" {
		t.Errorf("a file written into the bound /etc: %q, %v", b, err)
	}
}
