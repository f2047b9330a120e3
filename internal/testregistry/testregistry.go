// Package testregistry starts OCI registries for launch's own tests and
// benchmarks (e2e, scripts/bench.d): Debian's docker-registry, the real
// distribution server, on a free loopback port, or go-containerregistry's
// in-memory registry where a test needs no real one. It owns those servers'
// lives and nothing else; launch itself never imports it.
package testregistry

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is a running registry on 127.0.0.1.
type Registry struct {
	// Host is HOST:PORT, to put before a repository name.
	Host string
	// Log is the real registry's log file ("" for the in-memory one).
	Log    string
	exited chan struct{}
	stop   func()
}

// Exited is closed when a real registry's process ends (never for the
// in-memory one, until Stop).
func (r *Registry) Exited() <-chan struct{} { return r.exited }

// Stop ends the registry and waits for it (at most 5 s, then SIGKILL).
func (r *Registry) Stop() { r.stop() }

// InMemory starts go-containerregistry's in-memory registry on a loopback
// port, served over plain HTTP.
func InMemory() *Registry {
	srv := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	done := make(chan struct{})
	return &Registry{
		Host:   srv.Listener.Addr().String(),
		exited: done,
		stop:   func() { srv.Close(); closeOnce(done) },
	}
}

// Real starts docker-registry with its configuration, storage and log under
// dir, on a port that was free a moment ago (three tries), and returns once
// it answers GET /v2/. The registry gets SIGKILL when its starter's thread
// dies (parent-death signal).
func Real(dir string) (*Registry, error) { return realWith(dir, "") }

// realWith is Real with extra top-level lines in the registry's
// configuration (auth).
func realWith(dir, extra string) (*Registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("docker-registry is not installed (Debian package docker-registry; scripts/install-deps installs it as root): %w", err)
	}
	var logs string
	for attempt := 0; attempt < 3; attempt++ {
		r, err := startReal(bin, dir, attempt, extra)
		if err != nil {
			return nil, err
		}
		if answers(r.Host, r.exited, 15*time.Second) {
			return r, nil
		}
		r.Stop()
		b, _ := os.ReadFile(r.Log)
		logs += fmt.Sprintf("\n%s: %s", r.Host, b)
	}
	return nil, fmt.Errorf("docker-registry did not start:%s", logs)
}

// startReal starts one docker-registry process.
func startReal(bin, dir string, attempt int, extra string) (*Registry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	host := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s/data}, delete: {enabled: true}}\nhttp: {addr: %s}\n%s", dir, host, extra)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting docker-registry: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	return &Registry{Host: host, Log: logPath, exited: exited, stop: stop}, nil
}

// answers waits up to d for GET /v2/ on host to answer 200, giving up
// early when the process exits.
func answers(host string, exited <-chan struct{}, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// ErrExited is what a caller waiting on a registry reports when it ended early.
var ErrExited = errors.New("docker-registry exited early")

// nopLogger discards the in-memory registry's request log.
func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// closeOnce closes c unless it is closed already.
func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}
