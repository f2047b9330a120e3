package ocicli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/progress"
	"github.com/launch-hpc/launch/internal/tmptree"
	"github.com/launch-hpc/launch/internal/transport"
)

// httpTimeout bounds the connection, the TLS handshake and the wait for
// the response's headers of an http(s):// pull; the body may take as long
// as it takes (a SIF of gigabytes), but no longer between reads than this.
const httpTimeout = 60 * time.Second

// parseHTTPSource checks an http(s):// source: a URL with a host.
func parseHTTPSource(source string) (*url.URL, error) {
	u, err := url.Parse(source)
	if err != nil {
		return nil, fmt.Errorf("%s: not a URL: %w", source, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: the URL names no host", source)
	}
	return u, nil
}

// httpOutName is the file a pull of u writes without OUT: the last part of
// its path, as Apptainer names it ("image.sif" when the path has none).
func httpOutName(u *url.URL, sandbox bool) string {
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		name = "image.sif"
	}
	if sandbox {
		return trimSIF(name)
	}
	return name
}

// trimSIF is name without a .sif suffix: the directory a --sandbox pull
// of it makes.
func trimSIF(name string) string {
	if n := len(name) - len(".sif"); n > 0 && name[n:] == ".sif" {
		return name[:n]
	}
	return name
}

// httpPull fetches the SIF file at source into out: into a private
// temporary file first, no larger than the site's build.max_unpacked_size,
// checked to be a SIF, then installed as out (or, with --sandbox,
// unpacked there). A failed or interrupted pull leaves nothing.
func httpPull(ctx context.Context, g cliutil.Globals, f *cliutil.OCIFlags, source, out string, force bool) error {
	u, err := parseHTTPSource(source)
	if err != nil {
		return err
	}
	shown := u.Redacted() // no password in what is printed
	if err := build.CheckOut(out, force, f.Sandbox); err != nil {
		return err
	}
	conf, err := config.LoadSite()
	if err != nil {
		return err
	}
	log := g.Log()
	pr := orasProgress(g)
	tmpDir := build.TmpDir()
	build.SweepStale(tmpDir, out, log)
	tmp, err := tmptree.MkdirTemp(tmpDir, tmptree.KindBuild)
	if err != nil {
		return fmt.Errorf("%w (set LAUNCH_TMPDIR)", err)
	}
	defer tmp.Remove()
	sifPath := filepath.Join(tmp.Path, "image.sif")
	sif, err := os.OpenFile(sifPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer sif.Close()
	pr.Step("Downloading %s", shown)
	if err := download(ctx, u, sif, conf.Build.MaxUnpackedBytes(), pr.Bar("Downloading", -1)); err != nil {
		return err
	}
	if err := checkSIFHead(sif, shown); err != nil {
		return fmt.Errorf("%s: not a SIF file", shown)
	}
	if _, err := sif.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return installPulled(ctx, g, f, conf, pr, sif, sifPath, out, force)
}

// maxRedirects is how many redirects a download follows, as Go's client.
const maxRedirects = 10

// download writes the body of a GET of u to w: status 200 only, at most
// max bytes (0: no limit), redirects followed (at most maxRedirects, to
// http or https only, and never from https to http), proxies from the
// environment, TLS verified. Errors name u without its password.
func download(ctx context.Context, u *url.URL, w io.Writer, max int64, bar *progress.Bar) error {
	source := u.Redacted()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: httpTimeout}).DialContext
	tr.TLSHandshakeTimeout = httpTimeout
	tr.ResponseHeaderTimeout = httpTimeout
	client := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		switch {
		case len(via) >= maxRedirects:
			return fmt.Errorf("more than %d redirects", maxRedirects)
		case req.URL.Scheme != transport.HTTP && req.URL.Scheme != transport.HTTPS:
			return fmt.Errorf("redirected to %s, which is not http or https", req.URL.Redacted())
		case via[0].URL.Scheme == transport.HTTPS && req.URL.Scheme != transport.HTTPS:
			return fmt.Errorf("redirected from https to %s, without TLS", req.URL.Redacted())
		}
		return nil
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", source, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s: the server answered %s", source, resp.Status)
	}
	if max > 0 && resp.ContentLength > max {
		return fmt.Errorf("downloading %s: %d bytes, more than build.max_unpacked_size (%d bytes) allows", source, resp.ContentLength, max)
	}
	defer bar.Done()
	body := io.Reader(resp.Body)
	if max > 0 {
		body = io.LimitReader(body, max+1)
	}
	idle := newIdleReader(resp.Body, body)
	defer idle.stop()
	n, err := io.Copy(w, bar.Reader(idle))
	switch {
	case err != nil:
		return fmt.Errorf("downloading %s: %w", source, err)
	case max > 0 && n > max:
		return fmt.Errorf("downloading %s: more than build.max_unpacked_size (%d bytes) allows", source, max)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return fmt.Errorf("downloading %s: got %d bytes, the server said %d (cut short)", source, n, resp.ContentLength)
	}
	return nil
}

// idleReader fails a body that sends nothing for httpTimeout: a timer,
// pushed back by every read, closes the body, which ends the read that
// waits.
type idleReader struct {
	body  io.Reader
	timer *time.Timer
	idle  atomic.Bool
}

func newIdleReader(body io.ReadCloser, r io.Reader) *idleReader {
	ir := &idleReader{body: r}
	ir.timer = time.AfterFunc(httpTimeout, func() {
		ir.idle.Store(true)
		body.Close()
	})
	return ir
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if r.idle.Load() {
		return n, errors.New("the server sent nothing for a minute")
	}
	r.timer.Reset(httpTimeout)
	return n, err
}

// stop ends the timer.
func (r *idleReader) stop() { r.timer.Stop() }
