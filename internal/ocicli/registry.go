package ocicli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/oras"
	"github.com/launch-hpc/launch/internal/regauth"
	"github.com/launch-hpc/launch/internal/transport"
)

// NewRegistryCmd is `launch registry login|logout|list`.
func NewRegistryCmd(g cliutil.Globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "registry login|logout|list",
		Short: "Log in to or out of OCI registries (docker://, oras://), or list the logins",
		Long: `registry keeps your credentials for OCI registries in ~/.launch/` + regauth.FileName + `
(a Docker-style config.json, mode 0600; Apptainer keeps its own in
~/.apptainer/docker-config.json). pull, push and build use them for docker://
and oras:// sources of that registry unless credentials are given on the
command line (--docker-username/--docker-password, --docker-login) or in
LAUNCH_DOCKER_USERNAME/LAUNCH_DOCKER_PASSWORD. A registry with no login here
is tried with ~/.docker/config.json.`,
	}
	c.AddCommand(newLoginCmd(g), newLogoutCmd(g), newRegistryListCmd(g))
	return c
}

// registryHost checks a login URI (docker://HOST, oras://HOST or HOST) and
// returns its host.
func registryHost(uri string) (string, error) {
	if m, ok := transport.Unsupported(uri); ok {
		return "", errors.New(m)
	}
	if name, _, ok := transport.Split(uri); ok && strings.Contains(uri, "://") {
		switch name {
		case transport.Docker, transport.Oras:
		case "http", "https":
			return "", fmt.Errorf("%s: keyserver logins are not supported by launch (its keys live in local keyrings: launch key import); log in to registries as docker://HOST or oras://HOST", uri)
		default:
			return "", fmt.Errorf("%s: log in to a registry as docker://HOST[:PORT] or oras://HOST[:PORT]", uri)
		}
	}
	k, err := regauth.Key(uri)
	if err != nil {
		return "", err
	}
	if k == "https://index.docker.io/v1/" {
		return "registry-1.docker.io", nil
	}
	return k, nil
}

func newLoginCmd(g cliutil.Globals) *cobra.Command {
	var user, pass, authFile string
	var passStdin, noHTTPS bool
	c := &cobra.Command{
		Use:   "login [--username USER] [--password PASS | --password-stdin] URI",
		Short: "Log in to an OCI registry and keep the credentials",
		Long: `login checks USER and the password (asked on the terminal unless --password
or --password-stdin gives it) against the registry URI (docker://HOST[:PORT]
or oras://HOST[:PORT]; the same login serves both) and, when the registry
accepts them, stores them in ~/.launch/` + regauth.FileName + `.`,
		Example: `  launch registry login --username alice docker://registry.example.org
  echo "$TOKEN" | launch registry login -u alice --password-stdin oras://registry.example.org`,
		Args: cliutil.ExactArgs(1, "the registry URI"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, err := registryHost(args[0])
			if err != nil {
				return err
			}
			if passStdin && pass != "" {
				return errors.New("--password and --password-stdin: give one")
			}
			if passStdin {
				if pass, err = regauth.ReadSecret(os.Stdin); err != nil {
					return err
				}
			}
			if user == "" || pass == "" {
				cr, err := regauth.Prompt(args[0], user)
				if err != nil {
					return fmt.Errorf("%w (or give --username and --password-stdin)", err)
				}
				user, pass = cr.Username, cr.Password
			}
			s, err := regauth.Open(authFile)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := oras.Ping(ctx, host, oras.Options{Username: user, Password: pass, PlainHTTP: noHTTPS}); err != nil {
				return err
			}
			if err := s.Set(host, regauth.Credential{Username: user, Password: pass}); err != nil {
				return err
			}
			g.Log().Infof("Token stored in %s", s.Path)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&user, "username", "u", "", "user name to log in with")
	fl.StringVarP(&pass, "password", "p", "", "password or token (visible to other users in ps: prefer --password-stdin)")
	fl.BoolVar(&passStdin, "password-stdin", false, "read the password or token from standard input")
	fl.BoolVar(&noHTTPS, "nohttps", false, "talk plain HTTP to the registry (a local test registry)")
	authFileFlag(c, &authFile)
	return c
}

func newLogoutCmd(g cliutil.Globals) *cobra.Command {
	var authFile string
	c := &cobra.Command{
		Use:   "logout URI",
		Short: "Forget the stored credentials of a registry",
		Args:  cliutil.ExactArgs(1, "the registry URI"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, err := registryHost(args[0])
			if err != nil {
				return err
			}
			s, err := regauth.Open(authFile)
			if err != nil {
				return err
			}
			if err := s.Remove(host); err != nil {
				if errors.Is(err, regauth.ErrNotLoggedIn) {
					g.Log().Warnf("There is no stored login to %s.", host)
					return nil
				}
				return err
			}
			g.Log().Infof("Token removed from %s", s.Path)
			return nil
		},
	}
	authFileFlag(c, &authFile)
	return c
}

func newRegistryListCmd(g cliutil.Globals) *cobra.Command {
	var authFile string
	c := &cobra.Command{
		Use:   "list",
		Short: "List the registries you are logged in to",
		Args:  cliutil.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := regauth.Open(authFile)
			if err != nil {
				return err
			}
			ents, err := s.List()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.Stdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REGISTRY\tUSER\tFOR")
			for _, e := range ents {
				fmt.Fprintf(tw, "%s\t%s\tdocker://, oras://\n", e.Registry, e.Username)
			}
			return tw.Flush()
		},
	}
	authFileFlag(c, &authFile)
	return c
}

// authFileFlag registers --authfile: the credentials file to use in place
// of ~/.launch's.
func authFileFlag(c *cobra.Command, p *string) {
	c.Flags().StringVar(p, "authfile", "", "credentials file (Docker config.json form) to use in place of ~/.launch/"+regauth.FileName)
}
