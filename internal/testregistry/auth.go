package testregistry

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"
)

// RealAuth is Real with HTTP basic authentication: the registry accepts
// only user with password (distribution's htpasswd auth, bcrypt).
func RealAuth(dir, user, password string) (*Registry, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	pw := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(pw, []byte(user+":"+string(h)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return realWith(dir, fmt.Sprintf("auth: {htpasswd: {realm: launch-test, path: %s}}\n", pw))
}
