package imagetrust

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"

	"github.com/launch-hpc/launch/internal/share"
)

// Verdict records are authenticated, where the user has a secret that no
// container of theirs sees: the share key in $XDG_RUNTIME_DIR (a local
// tmpfs that launch does not bind into containers; internal/share makes
// it). A payload runs as the user with home bound read-write, so without
// that it could write an "ok" verdict into the cache under home for any
// image. The share key kept in ~/.launch (where no runtime directory is) is
// not used: a payload could read it as well as write the verdict.

// verdictSecret returns the key verdicts are authenticated with, or nil
// when the user has none outside home.
func verdictSecret() []byte {
	k, err := share.UserKey(os.Geteuid(), "", os.Getenv)
	if err != nil {
		return nil
	}
	return k
}

// mac authenticates the record body of the verdict name.
func mac(secret []byte, name string, body []byte) string {
	h := hmac.New(sha256.New, secret)
	io.WriteString(h, name+"\n") //nolint:errcheck
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// record is the verdict file for the verdict line of name: the version
// line, the verdict line and, with a secret, "mac HEX".
func record(name, line string, secret []byte) []byte {
	b := []byte(recordVersion + line + "\n")
	if secret != nil {
		b = append(b, "mac "+mac(secret, name, b)+"\n"...)
	}
	return b
}

// parse reads the record b of the verdict name. With a secret it must
// carry the right mac; without, a mac line is ignored.
func parse(b []byte, name string, secret []byte) (Verdict, error) {
	rest, ok := bytes.CutPrefix(b, []byte(recordVersion))
	line, tail, nl := bytes.Cut(rest, []byte("\n"))
	if !ok || !nl {
		return Verdict{}, errors.New("malformed verdict")
	}
	body := b[:len(b)-len(tail)]
	switch {
	case secret != nil:
		want := []byte("mac " + mac(secret, name, body) + "\n")
		if !hmac.Equal(tail, want) {
			return Verdict{}, errors.New("verdict not authenticated")
		}
	case len(tail) > 0 && !bytes.HasPrefix(tail, []byte("mac ")):
		return Verdict{}, errors.New("malformed verdict")
	}
	return parseLine(line)
}
