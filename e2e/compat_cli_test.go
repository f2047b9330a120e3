package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompatCliCwd: --cwd is Apptainer's name for --pwd.
func TestCompatCliCwd(t *testing.T) {
	image := busyboxImage(t, nil)
	r := launch(t, "exec", "--cwd", "/etc", image, "pwd")
	wantOK(t, r)
	if got := strings.TrimSpace(r.Stdout); got != "/etc" {
		t.Errorf("--cwd /etc: pwd %q", got)
	}
}

// TestCompatCliAlreadyFlags: Apptainer's options that launch already
// behaves as run as without them (-d says so), and -s before the command
// is --silent: the warning of --nv on a host without the driver is not
// printed.
func TestCompatCliAlreadyFlags(t *testing.T) {
	image := busyboxImage(t, nil)
	r := launch(t, "-d", "exec", "-u", "--userns", "--no-init", "--unsquash", "--no-privs", "--no-nv", "--no-rocm",
		"--ignore-subuid", "--ignore-userns", "--ignore-fakeroot-command", "--disable-cache", image, "echo", "ok")
	wantOK(t, r)
	if r.Stdout != "ok\n" {
		t.Errorf("stdout %q, want ok", r.Stdout)
	}
	for _, fl := range []string{"--userns", "--no-init", "--unsquash", "--disable-cache"} {
		if !strings.Contains(r.Stderr, fl+": launch already behaves so") {
			t.Errorf("-d does not say %s changes nothing:\n%s", fl, r.Stderr)
		}
	}
	e := launchWith(t, runOpts{Env: []string{"APPTAINER_NOSHIMINIT=1"}}, "-d", "exec", image, "true")
	wantOK(t, e)
	if !strings.Contains(e.Stderr, "APPTAINER_NOSHIMINIT: launch has no use for --no-init") {
		t.Errorf("-d does not say APPTAINER_NOSHIMINIT changes nothing:\n%s", e.Stderr)
	}
	// A variable for an option launch lacks is a warning, which -s and
	// --silent (and APPTAINER_SILENT) leave out, as -q does.
	warn := []string{"APPTAINER_COMPAT32=1"}
	loud := launchWith(t, runOpts{Env: warn}, "exec", image, "true")
	wantOK(t, loud)
	if !strings.Contains(loud.Stderr, "WARNING") {
		t.Fatalf("APPTAINER_COMPAT32=1 warns of nothing (stderr %q): the -s check below cannot fail", loud.Stderr)
	}
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{warn, []string{"-s", "exec"}},
		{warn, []string{"--silent", "exec"}},
		{warn, []string{"-q", "exec"}},
		{append([]string{"APPTAINER_SILENT=1"}, warn...), []string{"exec"}},
	} {
		r := launchWith(t, runOpts{Env: tc.env}, append(tc.args, image, "true")...)
		wantOK(t, r)
		if r.Stderr != "" {
			t.Errorf("%s launch %s: stderr %q, want nothing", tc.env, strings.Join(tc.args, " "), r.Stderr)
		}
	}
}

// TestCompatCliVersion: `launch --version` prints what `launch version`
// prints.
func TestCompatCliVersion(t *testing.T) {
	v := launch(t, "version")
	wantOK(t, v)
	f := launch(t, "--version")
	wantOK(t, f)
	if f.Stdout != v.Stdout || !strings.HasPrefix(f.Stdout, "launch version ") {
		t.Errorf("--version %q, version %q", f.Stdout, v.Stdout)
	}
}

// TestCompatCliHelp: `launch help CMD` prints what `launch CMD --help`
// prints, for the commands launch runs itself and for those the helper
// program runs (pull, cache).
func TestCompatCliHelp(t *testing.T) {
	for _, cmd := range [][]string{{"pull"}, {"cache"}, {"cache", "clean"}, {"exec"}, {"build"}, {"inspect"}} {
		t.Run(strings.Join(cmd, " "), func(t *testing.T) {
			h := launch(t, append([]string{"help"}, cmd...)...)
			wantOK(t, h)
			f := launch(t, append(cmd, "--help")...)
			wantOK(t, f)
			if h.Stdout != f.Stdout || !strings.Contains(h.Stdout, "Usage:") {
				t.Errorf("help %s:\n%s\n--help:\n%s", cmd, h.Stdout, f.Stdout)
			}
		})
	}
}

// TestCompatCliBindOptions: -B takes Apptainer's option lists, and refuses
// image-src=/id= by name in one line.
func TestCompatCliBindOptions(t *testing.T) {
	image := busyboxImage(t, nil)
	a := hostDir(t, "a", "A")
	c := hostDir(t, "c", "C")
	r := launch(t, "exec", "-B", a+":/mnt/a:rw,ro,"+c+":/mnt/c", image, "sh", "-c",
		"cat /mnt/a/file /mnt/c/file; touch /mnt/a/new 2>/dev/null && echo writable || echo readonly; touch /mnt/c/new && echo writable")
	wantOK(t, r)
	if got := strings.TrimSpace(r.Stdout); got != "ACreadonly\nwritable" {
		t.Errorf("got %q, want %q", got, "ACreadonly\nwritable")
	}
	wantFatal(t, launch(t, "exec", "-B", a+":/mnt:image-src=/x", image, "true"), "image-src=", "not supported")
	wantFatal(t, launchWith(t, runOpts{Env: []string{"APPTAINER_BIND=" + a + ":/mnt:ro,id=2"}}, "exec", image, "true"), "APPTAINER_BIND", "id=", "not supported")
}

// TestCompatCliCacheClean: cache clean --days N removes only what was not
// used for N days, and --dry-run removes nothing but names it.
func TestCompatCliCacheClean(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	env := []string{"LAUNCH_CACHEDIR=" + dir}
	wantOK(t, launchWith(t, runOpts{Env: env}, "cache", "list")) // makes the cache
	blobs := filepath.Join(dir, "blobs", "sha256")
	oldHex, newHex := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, h := range []string{oldHex, newHex} {
		if err := os.WriteFile(filepath.Join(blobs, h), []byte("blob"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().AddDate(0, 0, -10)
	if err := os.Chtimes(filepath.Join(blobs, oldHex), old, old); err != nil {
		t.Fatal(err)
	}
	r := launchWith(t, runOpts{Env: env}, "cache", "clean", "--days", "5", "--dry-run")
	wantOK(t, r)
	if !strings.Contains(r.Stdout, "would remove blob sha256:"+oldHex) || strings.Contains(r.Stdout, newHex) {
		t.Errorf("dry run: %q", r.Stdout)
	}
	for _, h := range []string{oldHex, newHex} {
		if _, err := os.Stat(filepath.Join(blobs, h)); err != nil {
			t.Errorf("--dry-run removed %s", h)
		}
	}
	wantOK(t, launchWith(t, runOpts{Env: env}, "cache", "clean", "-D", "5"))
	if _, err := os.Stat(filepath.Join(blobs, oldHex)); err == nil {
		t.Error("the entry unused for 10 days is still there")
	}
	if _, err := os.Stat(filepath.Join(blobs, newHex)); err != nil {
		t.Error("the recent entry was removed")
	}
	wantFatal(t, launchWith(t, runOpts{Env: env}, "cache", "clean", "--days", "-1"), "--days")
	wantFatal(t, launchWith(t, runOpts{Env: env}, "cache", "clean", "--days", "x"), "--days")
}

// TestCompatCliCacheTypes: cache list and clean take Apptainer's type names
// and comma lists: oci is the converted SIFs, oras and blobs the blobs, and
// library or shub (which launch never caches) name nothing.
func TestCompatCliCacheTypes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	env := runOpts{Env: []string{"LAUNCH_CACHEDIR=" + dir}}
	wantOK(t, launchWith(t, env, "cache", "list")) // makes the cache
	blob := filepath.Join(dir, "blobs", "sha256", strings.Repeat("c", 64))
	if err := os.WriteFile(blob, []byte("blob"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		types string
		shown bool
	}{
		{"oci", false}, {"library,shub", false}, {"blobs", true}, {"oci,blob", true}, {"oras", true}, {"all", true},
	} {
		r := launchWith(t, env, "cache", "list", "-T", tc.types)
		wantOK(t, r)
		if got := strings.Contains(r.Stdout, strings.Repeat("c", 64)); got != tc.shown {
			t.Errorf("cache list -T %s shows the blob: %v, want %v\n%s", tc.types, got, tc.shown, r.Stdout)
		}
	}
	for _, types := range []string{"library", "oci", "library,", ","} {
		wantOK(t, launchWith(t, env, "cache", "clean", "-T", types))
		if _, err := os.Stat(blob); err != nil {
			t.Fatalf("cache clean -T %s removed a blob: %v", types, err)
		}
	}
	wantOK(t, launchWith(t, env, "cache", "clean", "-T", "oras"))
	if _, err := os.Stat(blob); err == nil {
		t.Error("cache clean -T oras left the blob")
	}
	wantFatal(t, launchWith(t, env, "cache", "list", "-T", "nope"), `"nope"`)
}

// TestCompatCliUnknownSubcommand: a command that only groups others says
// so in one line naming the word it did not know (Apptainer's instance
// stats, a typo), and alone prints its help.
func TestCompatCliUnknownSubcommand(t *testing.T) {
	for _, args := range [][]string{{"instance", "stats", "web"}, {"sif", "bogus", "1", "x.sif"}, {"overlay", "bogus"},
		{"config", "global"}, {"cache", "bogus"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			wantFatal(t, launch(t, args...), "launch "+args[0]+": unknown command "+`"`+args[1]+`"`, "known:")
			h := launch(t, args[0])
			if wantOK(t, h); !strings.Contains(h.Stdout, "Usage:") {
				t.Errorf("launch %s alone: %q, want its help", args[0], h.Stdout)
			}
		})
	}
}
