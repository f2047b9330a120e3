package container

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/timeline"
)

// stagePipeFD is the descriptor on which the stage receives its Config and
// then watches for the launcher's death.
const stagePipeFD = 3

// StageMain is the container stage, run as "launch __launch_stage" inside the
// new namespaces. It returns the exit status for the stage process.
func StageMain(_ []string) int {
	// Never unlocked: the payload's and the FUSE server's parent-death
	// signal, and the privileges dropped before the payload starts, belong
	// to this one thread.
	runtime.LockOSThread()
	tl := timeline.FromEnv("stage")
	tl.Mark("main")

	pipe := os.NewFile(stagePipeFD, "stage-pipe")
	syscall.CloseOnExec(stagePipeFD)
	cfg, err := readConfig(pipe)
	if err != nil {
		msg.Fatal(os.Stderr, err)
		return 255
	}
	log := msg.Stderr(msg.Level(cfg.LogLevel))
	tl.Mark("config-read")

	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, forwarded...)
	rp := newReaper()
	gone := make(chan struct{})
	go watchLauncher(pipe, gone)

	if !cfg.Namespaces.PID {
		// Orphans of the payload come to us, so none can escape the cleanup.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			msg.Fatal(os.Stderr, fmt.Errorf("becoming child subreaper: %w", err))
			return 255
		}
	}

	sv := &supervisor{reaper: rp, sigs: sigs, gone: gone, log: log, tl: tl}
	code, err := sv.run(cfg)
	if err != nil {
		msg.Fatal(os.Stderr, err)
		code = 255
	}
	sv.cleanup()
	tl.Mark("exit")
	return code
}

// readConfig reads the length-prefixed JSON Config from the launcher.
func readConfig(r io.Reader) (*Config, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("reading container config: %w (run launch exec, not the stage directly)", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 16<<20 {
		return nil, errors.New("reading container config: too large")
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading container config: %w", err)
	}
	cfg := &Config{}
	if err := json.Unmarshal(buf, cfg); err != nil {
		return nil, fmt.Errorf("decoding container config: %w", err)
	}
	return cfg, nil
}

// watchLauncher closes gone when the launcher's end of the pipe closes,
// which happens only when the launcher process is gone.
func watchLauncher(pipe *os.File, gone chan<- struct{}) {
	buf := make([]byte, 64)
	for {
		if _, err := pipe.Read(buf); err != nil {
			close(gone)
			return
		}
	}
}
