package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/preinit"
	"github.com/launch-hpc/launch/internal/runspec"
	"github.com/launch-hpc/launch/internal/share"
)

// sharensWait is how long a launch waits for the holder of the shared
// namespaces (which serves once its own payload has started).
const sharensWait = 10 * time.Second

// runShared runs a --sharens launch (docs/instances.md): the first launch
// of the image by this user in this kill domain with this mount plan binds
// the rendezvous, here on the host side, and runs as always (its stage
// re-executed: the constructor leaves --sharens alone), serving its
// stage's pidfd once its payload has started and lingering after it until
// no launch that joined is left; the next ones join its user and mount
// namespaces as `exec instance://` joins an instance. Where it cannot
// share, the launch runs alone, as without --sharens.
func runShared(spec *runspec.Spec, cfg *Config, pre preinit.Result) (int, error) {
	switch {
	case pre.Done:
		return 0, errors.New("--sharens: this launch already runs in namespaces of its own")
	case cfg.Namespaces.Extra(), cfg.Fakeroot != nil, cfg.Layers != nil, cfg.Writable:
		return 0, errors.New("--sharens cannot be used with --pid, --ipc, --net, --uts, --hostname, --fakeroot, " +
			"--overlay, --writable-tmpfs or --writable")
	}
	log := msg.Stderr(msg.Level(cfg.LogLevel))
	key, secret, err := sharensKey(cfg)
	if err != nil {
		log.Debugf("--sharens: not sharing: %v", err)
		return runStage(cfg, pre)
	}
	for gen := 0; gen < share.Generations; gen++ {
		name := share.NSName(cfg.User.UID, secret, key, gen)
		lfd, err := share.ListenNS(name)
		if err == nil {
			log.Debugf("--sharens: holding the namespaces for this user's other launches (%s)", name)
			c := *cfg
			c.ShareNS = &ShareNS{Key: key, ListenFD: lfd}
			return runStage(&c, pre) // which closes lfd once the stage has it
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			log.Debugf("--sharens: not sharing: %v", err)
			break
		}
		j, err := share.DialNS(name, key, cfg.User.UID, sharensWait)
		if errors.Is(err, share.ErrNSTaken) {
			continue
		}
		if err != nil {
			log.Debugf("--sharens: not sharing: %v", err)
			break
		}
		log.Debugf("--sharens: joining the namespaces of %s", name)
		defer unix.Close(j.PidFD)
		return execJoin(spec, j.Join, j.PidFD, unix.CLONE_NEWUSER|unix.CLONE_NEWNS, SharensScheme+cfg.Image.Path, int(j.Conn.Fd()))
	}
	return runStage(cfg, pre)
}

// sharensKey is the rendezvous key of cfg's shared namespaces (the image,
// the user, the kill domain, the mount plan), and the user's secret.
func sharensKey(cfg *Config) (string, []byte, error) {
	var st unix.Stat_t
	if err := unix.Stat(cfg.Image.Path, &st); err != nil {
		return "", nil, fmt.Errorf("stat %s: %w", cfg.Image.Path, err)
	}
	cg, err := readFile("/proc/self/cgroup")
	if err != nil {
		return "", nil, fmt.Errorf("reading this launch's cgroup (its kill domain): %w", err)
	}
	// Without the user's secret anyone could compute the rendezvous name
	// and bind it first: no sharing then.
	secret, err := share.UserKey(cfg.User.UID, cfg.User.Home, os.Getenv)
	if err != nil {
		return "", nil, fmt.Errorf("the user's share secret: %w", err)
	}
	id := share.Identity{
		UID: cfg.User.UID, GID: cfg.User.GID,
		Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano(),
		Offset: cfg.Image.Offset, Scope: share.Scope(string(cg), os.Getenv),
	}
	plan, err := json.Marshal(struct {
		Plan any
		User User
		Cwd  string
	}{cfg.Plan, cfg.User, cfg.Cwd})
	if err != nil {
		return "", nil, fmt.Errorf("encoding the mount plan for the rendezvous key: %w", err)
	}
	return share.NSKey(id, string(plan)), secret, nil
}

// sharensRole is the payloadRole of a --sharens holder's stage: the
// payload as always; once it has started, the stage serves its namespaces,
// and once it has ended, lingers until no joined launch is left.
type sharensRole struct{}

func (sharensRole) command(sv *supervisor, cfg *Config) (string, []string, []string, error) {
	return payloadCommand(cfg, readEnvScripts(), sv.log)
}

func (sharensRole) wait(sv *supervisor, cfg *Config) int {
	join, err := joinConfig(cfg)
	var h *share.NSHolder
	if err == nil {
		h, err = share.ServeNS(os.NewFile(uintptr(cfg.ShareNS.ListenFD), "sharens"), cfg.ShareNS.Key, join)
	}
	if err != nil {
		sv.log.Warnf("--sharens: %v: the next launches run alone", err)
	}
	code := sv.wait()
	if h == nil {
		return code
	}
	done := make(chan struct{})
	go func() {
		h.Linger()
		close(done)
	}()
	for {
		select {
		case <-done:
			return code
		case ev := <-sv.reaper.Exits():
			sv.res.server.Exited(ev)
		case <-sv.gone:
			return code
		}
	}
}
