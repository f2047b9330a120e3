package cli

import "strings"

// This file is the one place that says which environment variables set
// launch's options: LAUNCH_<OPTION> for every long option, and, while
// launch.conf keeps env.apptainer_compat on, the APPTAINER_ and
// SINGULARITY_ variables that Apptainer binds to its flags (its
// cmd/internal/cli flag definitions, EnvKeys), or to directories. For each
// option the first variable set, in the order LAUNCH_, APPTAINER_,
// SINGULARITY_ (and within a prefix the order of the keys), is the one
// used; the command line wins over all of them.

// Prefixes of option variables, highest precedence first. Only the first
// is read when env.apptainer_compat is off.
const (
	launchPrefix      = "LAUNCH_"
	apptainerPrefix   = "APPTAINER_"
	singularityPrefix = "SINGULARITY_"
)

// envPrefixes lists the prefixes in precedence order.
var envPrefixes = []string{launchPrefix, apptainerPrefix, singularityPrefix}

// noEnvFlag are the flags that LAUNCH_<OPTION> does not set: help and
// version make no sense as defaults, and binds have their own variables
// (LAUNCH_BIND, LAUNCH_BINDPATH) that add to --bind instead of replacing it.
var noEnvFlag = map[string]bool{"help": true, "version": true, "bind": true, instanceInitFlag: true}

// opposite names flags that contradict each other: a variable for one is
// not applied when the command line gave the other, so the command line
// wins (LAUNCH_NO_HOME=1 with -H DIR binds DIR).
var opposite = map[string]string{"home": "no-home", "no-home": "home"}

// Command groups: the commands an Apptainer flag is defined on.
const (
	groupAction = "exec run shell"
	groupShell  = "shell"
	groupBuild  = "build"
	groupPull   = "pull"
	groupOCI    = "pull build push"
	groupLogin  = "login"
	groupAll    = "*"
)

// compatKey is one Apptainer flag (or directory setting) and the variable
// keys Apptainer reads for it, without their prefix.
type compatKey struct {
	// flag is Apptainer's long option. When the launch command has an
	// option of that name (or an alias pflag normalises to it, --cwd),
	// the variables set it; otherwise, when the command belongs to
	// group, a set variable is reported as having no effect.
	flag string
	// group lists the launch commands (space separated) Apptainer defines
	// the flag on; groupAll for every command.
	group string
	// keys are the variable names after the prefix, in Apptainer's order.
	keys []string
	// dirVar, when set, makes this a directory setting with no launch
	// flag: the value is handed on as this LAUNCH_ variable (which
	// internal/cache and the builders read).
	dirVar string
	// quiet marks a flag whose absence changes nothing for launch (it
	// already behaves so: --userns, --no-privs): launch accepts it on the
	// command line and in its variables, hidden, with only a debug line
	// (registerAlready).
	quiet bool
	// short is Apptainer's one-letter form of a quiet flag (-u, -U).
	short string
}

// bindKeys are the variables of --bind, lowest precedence first within a
// prefix: every one that is set adds binds (userBinds), before the flags.
var bindKeys = []string{"BINDPATH", "BIND"}

// compatKeys is Apptainer's table (1.4/1.5, cmd/internal/cli). --bind is
// not here: its variables add to the flag rather than set it (bindKeys).
var compatKeys = []compatKey{
	// Directories (no flag in launch).
	{flag: "cachedir", group: groupAll, keys: []string{"CACHEDIR"}, dirVar: "LAUNCH_CACHEDIR"},
	{flag: "tmpdir", group: groupAll, keys: []string{"TMPDIR"}, dirVar: "LAUNCH_TMPDIR"},

	// Global options.
	{flag: "debug", group: groupAll, keys: []string{"DEBUG"}},
	{flag: "quiet", group: groupAll, keys: []string{"QUIET"}},
	{flag: "verbose", group: groupAll, keys: []string{"VERBOSE"}},
	{flag: "silent", group: groupAll, keys: []string{"SILENT"}},
	{flag: "nocolor", group: groupAll, keys: []string{"NOCOLOR"}, quiet: true},

	// exec, run, shell: what launch has.
	{flag: "cleanenv", group: groupAction, keys: []string{"CLEANENV"}},
	{flag: "contain", group: groupAction, keys: []string{"CONTAIN"}},
	{flag: "containall", group: groupAction, keys: []string{"CONTAINALL"}},
	{flag: "cwd", group: groupAction, keys: []string{"CWD", "TARGET_CWD"}},
	{flag: "pwd", group: groupAction, keys: []string{"PWD", "TARGET_PWD"}},
	{flag: "env-file", group: groupAction, keys: []string{"ENV_FILE"}},
	{flag: "home", group: groupAction, keys: []string{"HOME"}},
	{flag: "no-home", group: groupAction, keys: []string{"NO_HOME"}},
	{flag: "no-mount", group: groupAction, keys: []string{"NO_MOUNT"}},
	{flag: "hostname", group: groupAction, keys: []string{"HOSTNAME"}},
	{flag: "pid", group: groupAction, keys: []string{"PID", "UNSHARE_PID"}},
	{flag: "ipc", group: groupAction, keys: []string{"IPC", "UNSHARE_IPC"}},
	{flag: "net", group: groupAction, keys: []string{"NET", "UNSHARE_NET"}},
	{flag: "network", group: groupAction, keys: []string{"NETWORK"}},
	{flag: "uts", group: groupAction, keys: []string{"UTS", "UNSHARE_UTS"}},
	{flag: "mount", group: groupAction, keys: []string{"MOUNT"}},
	{flag: "overlay", group: groupAction, keys: []string{"OVERLAY", "OVERLAYIMAGE"}},
	{flag: "scratch", group: groupAction, keys: []string{"SCRATCH", "SCRATCHDIR"}},
	{flag: "workdir", group: groupAction, keys: []string{"WORKDIR"}},
	{flag: "writable", group: groupAction, keys: []string{"WRITABLE"}},
	{flag: "writable-tmpfs", group: groupAction, keys: []string{"WRITABLE_TMPFS"}},
	{flag: "shell", group: groupShell, keys: []string{"SHELL"}},
	{flag: "fakeroot", group: groupAction, keys: []string{"FAKEROOT"}},
	{flag: "nv", group: groupAction, keys: []string{"NV"}},
	{flag: "nvccli", group: groupAction, keys: []string{"NVCCLI"}},
	{flag: "rocm", group: groupAction, keys: []string{"ROCM"}},
	{flag: "nohttps", group: groupAction, keys: []string{"NOHTTPS", "NO_HTTPS"}},
	{flag: "docker-username", group: groupAction, keys: []string{"DOCKER_USERNAME"}},
	{flag: "docker-password", group: groupAction, keys: []string{"DOCKER_PASSWORD"}},
	{flag: "authfile", group: groupAction, keys: []string{"AUTH_FILE"}},

	{flag: "app", group: groupAction, keys: []string{"APP", "APPNAME"}},
	{flag: "sharens", group: groupAction, keys: []string{"SHARENS"}},

	// exec, run, shell: what launch already does without the flag.
	{flag: "userns", group: groupAction, keys: []string{"USERNS", "UNSHARE_USERNS"}, quiet: true, short: "u"},
	{flag: "no-privs", group: groupAction, keys: []string{"NO_PRIVS"}, quiet: true},
	{flag: "no-init", group: groupAction, keys: []string{"NOSHIMINIT"}, quiet: true},
	{flag: "unsquash", group: groupAction, keys: []string{"UNSQUASH"}, quiet: true},
	{flag: "no-nv", group: groupAction, keys: []string{"NV_OFF", "NO_NV"}, quiet: true},
	{flag: "no-rocm", group: groupAction, keys: []string{"ROCM_OFF", "NO_ROCM"}, quiet: true},
	{flag: "ignore-subuid", group: groupAction, keys: []string{"IGNORE_SUBUID"}, quiet: true},
	{flag: "ignore-fakeroot-command", group: groupAction, keys: []string{"IGNORE_FAKEROOT_COMMAND"}, quiet: true},
	{flag: "ignore-userns", group: groupAction, keys: []string{"IGNORE_USERNS"}, quiet: true},
	{flag: "disable-cache", group: groupAction, keys: []string{"DISABLE_CACHE"}, quiet: true},

	// exec, run, shell: what launch does not have (a warning).
	{flag: "intel-hpu", group: groupAction, keys: []string{"INTEL_HPU"}},
	{flag: "compat32", group: groupAction, keys: []string{"COMPAT32"}},
	{flag: "compat", group: groupAction, keys: []string{"COMPAT"}},
	{flag: "keep-privs", group: groupAction, keys: []string{"KEEP_PRIVS"}},
	{flag: "add-caps", group: groupAction, keys: []string{"ADD_CAPS"}},
	{flag: "drop-caps", group: groupAction, keys: []string{"DROP_CAPS"}},
	{flag: "allow-setuid", group: groupAction, keys: []string{"ALLOW_SETUID"}},
	{flag: "security", group: groupAction, keys: []string{"SECURITY"}},
	{flag: "no-pid", group: groupAction, keys: []string{"NO_PID"}},
	{flag: "network-args", group: groupAction, keys: []string{"NETWORK_ARGS"}},
	{flag: "netns-path", group: groupAction, keys: []string{"NETNS_PATH"}},
	{flag: "dns", group: groupAction, keys: []string{"DNS"}},
	{flag: "boot", group: groupAction, keys: []string{"BOOT"}},
	{flag: "containlibs", group: groupAction, keys: []string{"CONTAINLIBS"}},
	{flag: "fusemount", group: groupAction, keys: []string{"FUSESPEC"}},
	{flag: "no-env", group: groupAction, keys: []string{"NOENV"}},
	{flag: "no-umask", group: groupAction, keys: []string{"NO_UMASK"}},
	{flag: "no-eval", group: groupAction, keys: []string{"NO_EVAL"}},
	{flag: "underlay", group: groupAction, keys: []string{"UNDERLAY"}},
	{flag: "runscript-timeout", group: groupAction, keys: []string{"RUNSCRIPT_TIMEOUT"}},
	{flag: "dmtcp-launch", group: groupAction, keys: []string{"DMTCP_LAUNCH"}},
	{flag: "dmtcp-restart", group: groupAction, keys: []string{"DMTCP_RESTART"}},
	{flag: "apply-cgroups", group: groupAction, keys: []string{"APPLY_CGROUPS"}},
	{flag: "blkio-weight", group: groupAction, keys: []string{"BLKIO_WEIGHT"}},
	{flag: "blkio-weight-device", group: groupAction, keys: []string{"BLKIO_WEIGHT_DEVICE"}},
	{flag: "cpu-shares", group: groupAction, keys: []string{"CPU_SHARES"}},
	{flag: "cpuset-cpus", group: groupAction, keys: []string{"CPUSET_CPUS"}},
	{flag: "cpuset-mems", group: groupAction, keys: []string{"CPUSET_MEMS"}},
	{flag: "memory", group: groupAction, keys: []string{"MEMORY"}},
	{flag: "memory-reservation", group: groupAction, keys: []string{"MEMORY_RESERVATION"}},
	{flag: "memory-swap", group: groupAction, keys: []string{"MEMORY_SWAP"}},
	{flag: "oom-kill-disable", group: groupAction, keys: []string{"OOM_KILL_DISABLE"}},
	{flag: "pids-limit", group: groupAction, keys: []string{"PIDS_LIMIT"}},

	// pull and build.
	{flag: "docker-username", group: groupOCI, keys: []string{"DOCKER_USERNAME"}},
	{flag: "docker-password", group: groupOCI, keys: []string{"DOCKER_PASSWORD"}},
	{flag: "nohttps", group: groupOCI, keys: []string{"NOHTTPS", "NO_HTTPS"}},
	{flag: "disable-cache", group: groupOCI, keys: []string{"DISABLE_CACHE"}},
	{flag: "force", group: groupOCI, keys: []string{"FORCE"}},
	{flag: "sandbox", group: groupOCI, keys: []string{"SANDBOX"}},
	{flag: "docker-login", group: groupOCI, keys: []string{"DOCKER_LOGIN"}},
	{flag: "docker-host", group: groupOCI, keys: []string{"DOCKER_HOST"}},
	{flag: "authfile", group: groupOCI, keys: []string{"AUTH_FILE"}},
	{flag: "library", group: groupOCI, keys: []string{"LIBRARY"}},
	{flag: "reproducible", group: groupOCI, keys: []string{"REPRODUCIBLE"}},
	{flag: "arch", group: groupPull, keys: []string{"PULL_ARCH"}},
	{flag: "arch-variant", group: groupPull, keys: []string{"PULL_ARCH_VARIANT"}},
	{flag: "dir", group: groupPull, keys: []string{"PULLDIR", "PULLFOLDER"}},
	{flag: "name", group: groupPull, keys: []string{"PULL_NAME"}},
	{flag: "allow-unsigned", group: groupPull, keys: []string{"ALLOW_UNSIGNED"}, quiet: true, short: "U"},
	{flag: "arch", group: groupBuild, keys: []string{"BUILD_ARCH"}},
	{flag: "arch-variant", group: groupBuild, keys: []string{"BUILD_ARCH_VARIANT"}},
	{flag: "fakeroot", group: groupBuild, keys: []string{"FAKEROOT"}, quiet: true},
	{flag: "notest", group: groupBuild, keys: []string{"NOTEST"}},
	{flag: "section", group: groupBuild, keys: []string{"SECTION"}},
	{flag: "json", group: groupBuild, keys: []string{"JSON"}},
	{flag: "update", group: groupBuild, keys: []string{"UPDATE"}},
	{flag: "no-cleanup", group: groupBuild, keys: []string{"NO_CLEANUP"}},
	{flag: "fix-perms", group: groupBuild, keys: []string{"FIXPERMS"}},
	{flag: "mksquashfs-args", group: groupBuild, keys: []string{"MKSQUASHFS_ARGS"}},
	{flag: "buildkit-host", group: groupBuild, keys: []string{"BUILDKIT_HOST"}},
	{flag: "userns", group: groupBuild, keys: []string{"USERNS"}, quiet: true, short: "u"},

	// registry login.
	{flag: "username", group: groupLogin, keys: []string{"LOGIN_USERNAME"}},
	{flag: "password", group: groupLogin, keys: []string{"LOGIN_PASSWORD"}},
}

// inGroup reports whether the command named cmd is one of group's.
func inGroup(group, cmd string) bool {
	return group == groupAll || strings.Contains(" "+group+" ", " "+cmd+" ")
}

// BindEnvNames are the variables that add binds, lowest precedence first:
// all of them apply, before --bind. compat adds the Apptainer and
// Singularity ones (below launch's).
func BindEnvNames(compat bool) []string {
	var names []string
	for i := len(envPrefixes) - 1; i >= 0; i-- {
		if envPrefixes[i] != launchPrefix && !compat {
			continue
		}
		for _, k := range bindKeys {
			names = append(names, envPrefixes[i]+k)
		}
	}
	return names
}

// hasCompatVar reports whether environ holds any APPTAINER_ or
// SINGULARITY_ variable with a value: only then does launch need the site
// config to decide whether they count.
func hasCompatVar(environ []string) bool {
	for _, kv := range environ {
		if (strings.HasPrefix(kv, apptainerPrefix) || strings.HasPrefix(kv, singularityPrefix)) &&
			!strings.HasSuffix(kv, "=") {
			return true
		}
	}
	return false
}
