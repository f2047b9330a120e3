package e2e

import (
	"strings"
	"testing"
)

// commandNames are launch's subcommands, as `launch --help` lists them.
var commandNames = []string{"build", "cache", "completion", "config", "exec", "help", "inspect", "pull", "run", "run-help", "shell", "sif", "test", "version"}

// TestCommandLine checks the command line around the commands: launch builds
// only the subcommand a command line names (internal/cli newRoot), and the
// whole tree for help, completion and unknown commands, so each of those
// paths is driven here.
func TestCommandLine(t *testing.T) {
	t.Run("help lists every command", func(t *testing.T) {
		for _, args := range [][]string{{"--help"}, {"help"}} {
			r := launch(t, args...)
			wantOK(t, r)
			for _, c := range commandNames {
				if !strings.Contains(r.Stdout, "\n  "+c+" ") {
					t.Errorf("launch %v does not list %q:\n%s", args, c, r.Stdout)
				}
			}
		}
	})
	t.Run("command help is the same both ways", func(t *testing.T) {
		// pull and cache are left out: their --help is the helper's.
		for _, c := range []string{"version", "build", "inspect", "sif", "exec", "run", "shell", "config", "test", "run-help"} {
			viaHelp := launch(t, "help", c)
			wantOK(t, viaHelp)
			viaFlag := launch(t, c, "--help")
			wantOK(t, viaFlag)
			if viaHelp.Stdout != viaFlag.Stdout || !strings.Contains(viaFlag.Stdout, "Usage:") {
				t.Errorf("launch help %s and launch %s --help differ:\n%s\n----\n%s", c, c, viaHelp.Stdout, viaFlag.Stdout)
			}
		}
		r := launch(t, "-q", "exec", "--help")
		wantOK(t, r)
		for _, w := range []string{"--bind", "--scratch", "--no-mount", "Global Flags:", "--quiet"} {
			if !strings.Contains(r.Stdout, w) {
				t.Errorf("launch -q exec --help does not mention %q:\n%s", w, r.Stdout)
			}
		}
	})
	t.Run("global flags before the command", func(t *testing.T) {
		for _, args := range [][]string{{"-q", "version"}, {"--verbose", "version"}, {"-qd", "version"}, {"--quiet=false", "version"}} {
			r := launch(t, args...)
			wantOK(t, r)
			if !strings.HasPrefix(r.Stdout, "launch version ") {
				t.Errorf("launch %v printed %q", args, r.Stdout)
			}
		}
		r := launch(t, "-v", "version")
		if !strings.Contains(r.Stdout, "config file: ") {
			t.Errorf("launch -v version does not name the config file: %q", r.Stdout)
		}
	})
	t.Run("unknown command", func(t *testing.T) {
		wantFatal(t, launch(t, "exce", "img", "true"), `unknown command "exce"`, "Did you mean this? exec")
		wantFatal(t, launch(t, "-q", "nosuchcommand"), `unknown command "nosuchcommand"`)
	})
	t.Run("completion", func(t *testing.T) {
		r := launch(t, "completion", "bash")
		wantOK(t, r)
		if !strings.Contains(r.Stdout, "bash completion") {
			t.Errorf("launch completion bash printed no bash completion script: %.200q", r.Stdout)
		}
		r = launch(t, "__complete", "ex")
		wantOK(t, r)
		if !strings.Contains(r.Stdout, "exec\t") {
			t.Errorf("completing 'ex' does not offer exec: %q", r.Stdout)
		}
		r = launch(t, "__complete", "exec", "--bi")
		wantOK(t, r)
		if !strings.Contains(r.Stdout, "--bind\t") {
			t.Errorf("completing 'exec --bi' does not offer --bind: %q", r.Stdout)
		}
	})
}
