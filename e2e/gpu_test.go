package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The GPU tests run on machines without a GPU: they build a fake NVIDIA
// driver (shared libraries with the driver's names, each returning a
// marker, a nvidia-smi linked against the fake NVML), an ld.so cache of it
// made by the real ldconfig, and a launch.conf whose gpu.ldconfig is a
// wrapper printing that cache. The image is a busybox tree with the host's
// dynamic loader and libc, and a program that dlopens libcuda.so.1.

// fakeDriver is a fake NVIDIA driver on the host.
type fakeDriver struct {
	dir  string   // everything lives here
	bin  string   // the driver's programs (nvidia-smi), for PATH
	env  []string // LAUNCH_CONF and PATH for a launch that finds the driver
	conf string   // the launch.conf
}

// cSources are the fake driver's and the test program's C sources.
var cSources = map[string]string{
	"cuda550.c": `const char *cuda_marker(void) { return "FAKE-CUDA-550"; }` + "\n",
	"cuda470.c": `const char *cuda_marker(void) { return "FAKE-CUDA-470"; }` + "\n",
	"nvml.c":    `const char *nvml_marker(void) { return "FAKE-NVML-550"; }` + "\n",
	"smi.c": `#include <stdio.h>
const char *nvml_marker(void);
int main(void) { printf("nvidia-smi: %s\n", nvml_marker()); return 0; }
`,
	"app.c": `#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
int main(void) {
	void *h = dlopen("libcuda.so.1", RTLD_NOW);
	if (!h) { printf("dlopen failed: %s\n", dlerror()); return 1; }
	const char *(*f)(void) = (const char *(*)(void))dlsym(h, "cuda_marker");
	if (!f) { printf("no cuda_marker\n"); return 1; }
	Dl_info info;
	if (!dladdr((void *)f, &info)) { printf("dladdr failed\n"); return 1; }
	printf("%s from %s\n", f(), info.dli_fname);
	return 0;
}
`,
}

// gcc runs the C compiler in dir.
func gcc(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("gcc", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newFakeDriver builds the fake driver: libcuda.so.1 in two versions in two
// directories (470 listed first in the cache's configuration, 550 must win),
// libnvidia-ml.so.1, nvidia-smi, the ld.so cache and the launch.conf. extra
// is appended to the launch.conf.
func newFakeDriver(t *testing.T, extra string) *fakeDriver {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the fake GPU driver (scripts/install-deps installs it)")
	}
	ldconfig := "/sbin/ldconfig"
	if _, err := os.Stat(ldconfig); err != nil {
		t.Skipf("no %s to make the fake driver's ld.so cache", ldconfig)
	}
	d := &fakeDriver{dir: t.TempDir()}
	d.bin = filepath.Join(d.dir, "bin")
	src := filepath.Join(d.dir, "src")
	for _, dir := range []string{d.bin, src, filepath.Join(d.dir, "old"), filepath.Join(d.dir, "lib")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range cSources {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gcc(t, src, "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", "../old/libcuda.so.470.10", "cuda470.c")
	gcc(t, src, "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", "../lib/libcuda.so.550.54.14", "cuda550.c")
	gcc(t, src, "-shared", "-fPIC", "-Wl,-soname,libnvidia-ml.so.1", "-o", "../lib/libnvidia-ml.so.550.54.14", "nvml.c")
	gcc(t, src, "-o", "../bin/nvidia-smi", "smi.c", "../lib/libnvidia-ml.so.550.54.14")
	gcc(t, src, "-o", "app", "app.c")
	for link, target := range map[string]string{"old/libcuda.so.1": "libcuda.so.470.10", "lib/libcuda.so.1": "libcuda.so.550.54.14",
		"lib/libnvidia-ml.so.1": "libnvidia-ml.so.550.54.14"} {
		if err := os.Symlink(target, filepath.Join(d.dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(d.dir, "ld.so.conf")
	cache := filepath.Join(d.dir, "ld.so.cache")
	write(t, conf, filepath.Join(d.dir, "old")+"\n"+filepath.Join(d.dir, "lib")+"\n", 0o644)
	if out, err := exec.Command(ldconfig, "-X", "-C", cache, "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("ldconfig: %v\n%s", err, out)
	}
	wrapper := filepath.Join(d.dir, "ldconfig")
	write(t, wrapper, fmt.Sprintf("#!/bin/sh\nexec %s -C %s \"$@\"\n", ldconfig, cache), 0o755)
	list := filepath.Join(d.dir, "nvliblist.conf")
	write(t, list, "# test list\nnvidia-smi\nnvidia-debugdump\nlibcuda.so\nlibnvidia-ml.so\nlibnvidia-nosuchlib.so\n", 0o644)
	d.conf = filepath.Join(d.dir, "launch.conf")
	write(t, d.conf, fmt.Sprintf("[gpu]\nnvliblist = %q\nldconfig = %q\n%s", list, wrapper, extra), 0o644)
	d.env = []string{"LAUNCH_CONF=" + d.conf, "PATH=" + d.bin + ":" + os.Getenv("PATH")}
	return d
}

// write writes a file or fails the test.
func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// glibcTree is a busybox tree with the host's dynamic loader and C library,
// and the fake driver's test program as /usr/bin/gpuapp.
func glibcTree(t *testing.T, d *fakeDriver) string {
	t.Helper()
	tree := busyboxTree(t)
	for _, lib := range []string{"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"} {
		data, err := os.ReadFile(lib)
		if err != nil {
			t.Skipf("the GPU tests need the host's glibc at %s: %v", lib, err)
		}
		p := filepath.Join(tree, lib)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(d.dir, "src", "app"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(tree, "usr", "bin", "gpuapp"), string(data), 0o755)
	return tree
}

func TestGPUNV(t *testing.T) {
	d := newFakeDriver(t, "")
	tree := glibcTree(t, d)
	run := func(t *testing.T, env []string, args ...string) result {
		t.Helper()
		return launchWith(t, runOpts{Env: env}, args...)
	}
	t.Run("LibraryFromLibsDir", func(t *testing.T) {
		// The 550 build wins over the 470 one the cache lists first.
		r := run(t, d.env, "exec", "--nv", tree, "gpuapp")
		wantOK(t, r)
		if want := "FAKE-CUDA-550 from /.singularity.d/libs/libcuda.so.1\n"; r.Stdout != want {
			t.Errorf("stdout %q, want %q", r.Stdout, want)
		}
		if r.Stderr != "" {
			t.Errorf("stderr %q, want nothing (a missing listed library is said only under -v)", r.Stderr)
		}
	})
	t.Run("NvidiaSmi", func(t *testing.T) {
		r := run(t, d.env, "exec", "--nv", tree, "sh", "-c", "command -v nvidia-smi; nvidia-smi; echo $LD_LIBRARY_PATH")
		wantOK(t, r)
		if want := "/usr/bin/nvidia-smi\nnvidia-smi: FAKE-NVML-550\n/.singularity.d/libs\n"; r.Stdout != want {
			t.Errorf("stdout %q, want %q", r.Stdout, want)
		}
	})
	t.Run("WithoutNV", func(t *testing.T) {
		r := run(t, d.env, "exec", tree, "sh", "-c", "gpuapp; ls /.singularity.d/libs 2>&1; command -v nvidia-smi")
		if r.Code == 0 || !strings.Contains(r.Stdout, "dlopen failed") || strings.Contains(r.Stdout, "/usr/bin/nvidia-smi") {
			t.Errorf("without --nv the driver must not be there: %d %q %q", r.Code, r.Stdout, r.Stderr)
		}
	})
	t.Run("EnvVariables", func(t *testing.T) {
		for _, v := range []string{"LAUNCH_NV=1", "APPTAINER_NV=true"} {
			r := run(t, append(append([]string{}, d.env...), v), "exec", tree, "gpuapp")
			wantOK(t, r)
			if !strings.Contains(r.Stdout, "FAKE-CUDA-550") {
				t.Errorf("%s: stdout %q", v, r.Stdout)
			}
		}
	})
	t.Run("AlwaysNV", func(t *testing.T) {
		write(t, d.conf+".always", fmt.Sprintf("[gpu]\nnvliblist = %q\nldconfig = %q\nalways_nv = true\n",
			filepath.Join(d.dir, "nvliblist.conf"), filepath.Join(d.dir, "ldconfig")), 0o644)
		r := run(t, []string{"LAUNCH_CONF=" + d.conf + ".always", d.env[1]}, "exec", tree, "gpuapp")
		wantOK(t, r)
		if !strings.Contains(r.Stdout, "FAKE-CUDA-550") {
			t.Errorf("stdout %q", r.Stdout)
		}
	})
	t.Run("VerboseNamesMissing", func(t *testing.T) {
		r := run(t, d.env, "-v", "exec", "--nv", tree, "true")
		wantOK(t, r)
		if !strings.Contains(r.Stderr, "libnvidia-nosuchlib.so") || !strings.Contains(r.Stderr, "nvidia-debugdump") {
			t.Errorf("-v should name the listed library and program the host lacks: %q", r.Stderr)
		}
	})
	t.Run("CleanenvPassesVisibleDevices", func(t *testing.T) {
		env := append(append([]string{}, d.env...), "CUDA_VISIBLE_DEVICES=1,3", "NVIDIA_VISIBLE_DEVICES=all", "OTHER_VAR=x")
		r := run(t, env, "exec", "--nv", "--cleanenv", tree, "sh", "-c", "echo $CUDA_VISIBLE_DEVICES/$NVIDIA_VISIBLE_DEVICES/$OTHER_VAR")
		wantOK(t, r)
		if r.Stdout != "1,3/all/\n" {
			t.Errorf("stdout %q, want %q", r.Stdout, "1,3/all/\n")
		}
	})
	t.Run("ImageProgramWins", func(t *testing.T) {
		own := glibcTree(t, d)
		write(t, filepath.Join(own, "usr", "bin", "nvidia-smi"), "#!/bin/sh\necho image-smi\n", 0o755)
		r := run(t, d.env, "exec", "--nv", own, "nvidia-smi")
		wantOK(t, r)
		if r.Stdout != "image-smi\n" {
			t.Errorf("stdout %q: the image's own /usr/bin/nvidia-smi must stay", r.Stdout)
		}
	})
	t.Run("SIFWithBaseEnv", func(t *testing.T) {
		// A built image has Apptainer's 99-base.sh: LibsDir once.
		sif := buildSIF(t, tree)
		r := run(t, d.env, "exec", "--nv", sif, "sh", "-c", "gpuapp; echo $LD_LIBRARY_PATH")
		wantOK(t, r)
		if want := "FAKE-CUDA-550 from /.singularity.d/libs/libcuda.so.1\n/.singularity.d/libs\n"; r.Stdout != want {
			t.Errorf("stdout %q, want %q", r.Stdout, want)
		}
	})
	t.Run("Contain", func(t *testing.T) {
		r := run(t, d.env, "exec", "--nv", "--contain", tree, "gpuapp")
		wantOK(t, r)
		if !strings.Contains(r.Stdout, "FAKE-CUDA-550") {
			t.Errorf("stdout %q", r.Stdout)
		}
	})
	t.Run("NoDriverWarns", func(t *testing.T) {
		empty := filepath.Join(d.dir, "empty-ldconfig")
		write(t, empty, "#!/bin/sh\necho '0 libs found in cache'\n", 0o755)
		write(t, d.conf+".none", fmt.Sprintf("[gpu]\nnvliblist = %q\nldconfig = %q\n", filepath.Join(d.dir, "nvliblist.conf"), empty), 0o644)
		r := run(t, []string{"LAUNCH_CONF=" + d.conf + ".none"}, "exec", "--nv", tree, "echo", "ran")
		wantOK(t, r)
		if r.Stdout != "ran\n" || !strings.Contains(r.Stderr, "WARNING") || !strings.Contains(r.Stderr, "no NVIDIA driver") ||
			!strings.Contains(r.Stderr, "libcuda.so") {
			t.Errorf("want a warning naming the missing driver and the container run: %q %q", r.Stdout, r.Stderr)
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		write(t, d.conf+".nocli", fmt.Sprintf("[gpu]\nldconfig = %q\nnvidia_container_cli = \"/no/such/nvidia-container-cli\"\n",
			filepath.Join(d.dir, "ldconfig")), 0o644)
		wantFatal(t, run(t, []string{"LAUNCH_CONF=" + d.conf + ".nocli"}, "exec", "--nvccli", tree, "true"),
			"--nvccli needs nvidia-container-cli", "not installed")
		write(t, d.conf+".nolist", "[gpu]\nnvliblist = \"/no/such/nvliblist.conf\"\n", 0o644)
		wantFatal(t, run(t, []string{"LAUNCH_CONF=" + d.conf + ".nolist"}, "exec", "--nv", tree, "true"), "/no/such/nvliblist.conf")
		bad := filepath.Join(d.dir, "bad.conf")
		write(t, bad, "lib/libcuda.so\n", 0o644)
		write(t, d.conf+".badlist", fmt.Sprintf("[gpu]\nnvliblist = %q\nldconfig = %q\n", bad, filepath.Join(d.dir, "ldconfig")), 0o644)
		wantFatal(t, run(t, []string{"LAUNCH_CONF=" + d.conf + ".badlist"}, "exec", "--nv", tree, "true"), bad+":1")
		write(t, d.conf+".noldconfig", "[gpu]\nldconfig = \"/no/such/ldconfig\"\n", 0o644)
		wantFatal(t, run(t, []string{"LAUNCH_CONF=" + d.conf + ".noldconfig"}, "exec", "--nv", tree, "true"), "gpu.ldconfig", "/no/such/ldconfig")
	})
	t.Run("ConfigShow", func(t *testing.T) {
		r := run(t, d.env, "config", "show")
		wantOK(t, r)
		for _, k := range []string{"[gpu]", "nvliblist = ", "rocmliblist = ", "ldconfig = ", "always_nv = false", "nv_prefer_cdi = false", "[cdi]", `spec_dirs = ["/etc/cdi", "/var/run/cdi"]`} {
			if !strings.Contains(r.Stdout, k) {
				t.Errorf("config show lacks %q", k)
			}
		}
	})
}

// cdiSpec writes a CDI spec into a new directory and returns the directory.
func cdiSpec(t *testing.T, name, spec string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, name), spec, 0o644)
	return dir
}

func TestGPUCDI(t *testing.T) {
	tree := busyboxTree(t)
	share := t.TempDir()
	write(t, filepath.Join(share, "hello.txt"), "from the spec\n", 0o644)
	spec := fmt.Sprintf(`{"cdiVersion": "0.6.0", "kind": "example.com/fakegpu",
 "devices": [{"name": "gpu0", "containerEdits": {"deviceNodes": [{"path": "/dev/fakegpu0", "hostPath": "/dev/null"}],
   "env": ["FAKEGPU_DEVICE=gpu0"]}}],
 "containerEdits": {"env": ["FAKEGPU_VISIBLE=yes"], "mounts": [{"hostPath": %q, "containerPath": "/opt/fakegpu", "options": ["ro", "bind"]}]}}`, share)
	dir := cdiSpec(t, "fake.json", spec)
	inside := "test -c /dev/fakegpu0 && echo chardev; cat /opt/fakegpu/hello.txt; echo $FAKEGPU_VISIBLE $FAKEGPU_DEVICE; touch /opt/fakegpu/x 2>/dev/null || echo ro"
	t.Run("DeviceMountEnv", func(t *testing.T) {
		r := launch(t, "exec", "--contain", "--cdi-dirs", dir, "--device", "example.com/fakegpu=gpu0", tree, "sh", "-c", inside)
		wantOK(t, r)
		if want := "chardev\nfrom the spec\nyes gpu0\nro\n"; r.Stdout != want {
			t.Errorf("stdout %q, want %q", r.Stdout, want)
		}
	})
	t.Run("SpecDirsFromConfig", func(t *testing.T) {
		conf := filepath.Join(t.TempDir(), "launch.conf")
		write(t, conf, fmt.Sprintf("[cdi]\nspec_dirs = [%q]\n", dir), 0o644)
		r := launchWith(t, runOpts{Env: []string{"LAUNCH_CONF=" + conf}}, "exec", "-c", "--device", "example.com/fakegpu=gpu0", tree, "sh", "-c", inside)
		wantOK(t, r)
		if !strings.Contains(r.Stdout, "from the spec") {
			t.Errorf("stdout %q", r.Stdout)
		}
	})
	t.Run("UserEnvWins", func(t *testing.T) {
		r := launch(t, "exec", "-c", "--cdi-dirs", dir, "--device", "example.com/fakegpu=gpu0", "--env", "FAKEGPU_VISIBLE=mine", tree, "sh", "-c", "echo $FAKEGPU_VISIBLE")
		wantOK(t, r)
		if r.Stdout != "mine\n" {
			t.Errorf("stdout %q, want the --env value", r.Stdout)
		}
	})
	t.Run("NVPrefersCDI", func(t *testing.T) {
		nv := cdiSpec(t, "nvidia.yaml", "cdiVersion: 0.6.0\nkind: nvidia.com/gpu\ndevices:\n- name: all\n  containerEdits:\n    env: [FROM_NVIDIA_CDI=1]\n")
		conf := filepath.Join(t.TempDir(), "launch.conf")
		write(t, conf, fmt.Sprintf("[gpu]\nnv_prefer_cdi = true\n[cdi]\nspec_dirs = [%q]\n", nv), 0o644)
		r := launchWith(t, runOpts{Env: []string{"LAUNCH_CONF=" + conf}}, "exec", "--nv", tree, "sh", "-c", "echo $FROM_NVIDIA_CDI")
		wantOK(t, r)
		if r.Stdout != "1\n" {
			t.Errorf("stdout %q, want the CDI spec's variable", r.Stdout)
		}
	})
	t.Run("UpdateLdcacheHook", func(t *testing.T) {
		hooked := cdiSpec(t, "hooked.json", `{"cdiVersion": "0.6.0", "kind": "nvidia.com/gpu", "devices": [{"name": "0",
 "containerEdits": {"env": ["X=1"], "hooks": [{"hookName": "createContainer", "path": "/usr/bin/nvidia-ctk",
   "args": ["nvidia-ctk", "hook", "update-ldcache", "--folder", "/usr/lib/x86_64-linux-gnu"]}]}}]}`)
		r := launch(t, "exec", "--cdi-dirs", hooked, "--device", "nvidia.com/gpu=0", tree, "sh", "-c", "echo $LD_LIBRARY_PATH")
		wantOK(t, r)
		if r.Stdout != "/usr/lib/x86_64-linux-gnu\n" {
			t.Errorf("stdout %q: update-ldcache's folder should be on LD_LIBRARY_PATH", r.Stdout)
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		wantFatal(t, launch(t, "exec", "-c", "--cdi-dirs", dir, "--device", "example.com/fakegpu=gpu9", tree, "true"),
			"example.com/fakegpu=gpu9", "not defined", "example.com/fakegpu=gpu0")
		wantFatal(t, launch(t, "exec", "--device", "gpu0", tree, "true"), `--device "gpu0"`)
		bad := cdiSpec(t, "bad.json", `{"cdiVersion": "0.6.0", "kind": "example.com/bad", "devices": [`)
		wantFatal(t, launch(t, "exec", "-c", "--cdi-dirs", bad, "--device", "example.com/bad=x", tree, "true"), "bad.json")
		noname := cdiSpec(t, "noname.json", `{"cdiVersion": "0.6.0", "kind": "example.com/bad", "devices": [{"name": "", "containerEdits": {"env": ["A=1"]}}]}`)
		wantFatal(t, launch(t, "exec", "-c", "--cdi-dirs", noname, "--device", "example.com/bad=x", tree, "true"), "noname.json")
		hook := cdiSpec(t, "hook.json", `{"cdiVersion": "0.6.0", "kind": "example.com/hook", "devices": [{"name": "x",
 "containerEdits": {"hooks": [{"hookName": "createRuntime", "path": "/usr/local/bin/setup-device", "args": ["setup-device"]}]}}]}`)
		wantFatal(t, launch(t, "exec", "-c", "--cdi-dirs", hook, "--device", "example.com/hook=x", tree, "true"),
			"example.com/hook=x", "/usr/local/bin/setup-device", "hook")
		wantFatal(t, launch(t, "exec", "--cdi-dirs", dir, "--device", "example.com/fakegpu=gpu0", tree, "true"),
			"/dev/fakegpu0", "--contain")
		gone := cdiSpec(t, "gone.json", `{"cdiVersion": "0.6.0", "kind": "example.com/gone", "devices": [{"name": "x",
 "containerEdits": {"mounts": [{"hostPath": "/no/such/dir", "containerPath": "/opt/x"}]}}]}`)
		wantFatal(t, launch(t, "exec", "--cdi-dirs", gone, "--device", "example.com/gone=x", tree, "true"), "/no/such/dir")
		// A device node of a user's spec is the node itself, never a link
		// to one, and is a source like any bind's (binds.allowed_paths).
		links := t.TempDir()
		if err := os.Symlink("/dev/null", filepath.Join(links, "null")); err != nil {
			t.Fatal(err)
		}
		linked := cdiSpec(t, "linked.json", fmt.Sprintf(`{"cdiVersion": "0.6.0", "kind": "example.com/linked", "devices": [{"name": "x",
 "containerEdits": {"deviceNodes": [{"path": "/dev/linked0", "hostPath": %q}]}}]}`, filepath.Join(links, "null")))
		wantFatal(t, launch(t, "exec", "-c", "--cdi-dirs", linked, "--device", "example.com/linked=x", tree, "true"),
			"example.com/linked=x", filepath.Join(links, "null"), "not a device node", "symbolic link")
		conf := filepath.Join(t.TempDir(), "launch.conf")
		write(t, conf, fmt.Sprintf("[binds]\nallowed_paths = [%q]\n", share), 0o644)
		wantFatal(t, launchWith(t, runOpts{Env: []string{"LAUNCH_CONF=" + conf}}, "exec", "-c", "--cdi-dirs", dir, "--device", "example.com/fakegpu=gpu0", tree, "true"),
			"example.com/fakegpu=gpu0", "--cdi-dirs", "/dev/null", "allowed_paths")
	})
}
