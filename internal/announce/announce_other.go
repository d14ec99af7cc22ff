//go:build !linux

package announce

import "errors"

// SendIn needs Linux's packet sockets and namespaces.
func SendIn(nsPath, ifname string, frames ...[]byte) error {
	return errors.New("announce: packet sockets in namespaces need Linux")
}
